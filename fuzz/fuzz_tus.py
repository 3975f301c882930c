"""atheris target: tus header parsing (Upload-Length/Offset and Upload-Metadata).

Integers must be plain ASCII digits or refused; metadata must decode or answer a 400, never
raise anything else.

    .venv/bin/python fuzz/fuzz_tus.py -atheris_runs=1000000 fuzz/corpus/tus
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["camroll"]):
    from fastapi import HTTPException

    from camroll.api.tus_headers import tus_int
    from camroll.api.uploads import _metadata


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(64)
    n = tus_int(text)
    if n is not None:
        assert text.isascii() and text.isdigit() and str(n).lstrip("0") == text.lstrip("0")
    try:
        _metadata(fdp.ConsumeUnicodeNoSurrogates(256))
    except HTTPException as e:
        assert e.status_code == 400


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
