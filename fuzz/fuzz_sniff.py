"""atheris target: the type sniffer and the header budgets that run before any decoder
(camroll.media.validate.sniff, camroll.media.budget.check_costs).

Any exception other than `Quarantined` is a bug: bytes from a stranger must get a verdict.

    .venv/bin/python fuzz/fuzz_sniff.py -atheris_runs=1000000 fuzz/corpus/sniff
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["camroll"]):
    from camroll.media.budget import check_costs
    from camroll.media.validate import Quarantined, sniff

_fd, _name = tempfile.mkstemp(
    prefix="camroll-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
)
os.close(_fd)
PATH = Path(_name)


def one_input(data: bytes) -> None:
    PATH.write_bytes(data)
    sniff(PATH)
    try:
        check_costs(PATH)
    except Quarantined as q:
        assert q.reason == "too_costly", q.reason


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    try:
        atheris.Fuzz()
    finally:
        PATH.unlink(missing_ok=True)
