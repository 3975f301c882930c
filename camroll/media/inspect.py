"""`camroll inspect`: metadata for local files with no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camroll.media.metadata import read_metadata


def inspect_paths(paths: list[Path], analyze: bool = False) -> list[dict[str, Any]]:
    """One dict per path, in order; every file goes through one ExifTool process. With
    `analyze`, each also gets faces, tags, place and quality (camroll.analyze.inspect)."""
    results = [m.to_dict() for m in read_metadata(paths)]
    if analyze:
        from camroll.analyze.inspect import analyze_file

        for path, r in zip(paths, results, strict=True):
            if not r.get("error"):  # unreadable or missing: ExifTool already said why
                r.update(analyze_file(path, r))
    return results
