"""`camroll inspect`: metadata for local files with no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camroll.media.metadata import read_metadata


def inspect_paths(paths: list[Path]) -> list[dict[str, Any]]:
    """One dict per path, in order; every file goes through one ExifTool process.
    (`--analyze` adds the analysers: camroll.analyze.inspect.inspect_and_analyze.)"""
    return [m.to_dict() for m in read_metadata(paths)]
