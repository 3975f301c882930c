"""Front-end packages from npm, served from `node_modules` (installed by `npm ci` in setup).

Only the files named here are reachable: the rest of node_modules stays private.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"

# URL name -> file inside node_modules; pinned by package-lock.json.
FILES: dict[str, str] = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "tus.min.js": "tus-js-client/dist/tus.min.js",
    "justified-layout.min.js": "justified-layout/dist/justified-layout.min.js",
    "photoswipe.esm.min.js": "photoswipe/dist/photoswipe.esm.min.js",
    "photoswipe-lightbox.esm.min.js": "photoswipe/dist/photoswipe-lightbox.esm.min.js",
    "photoswipe.css": "photoswipe/dist/photoswipe.css",
}

router = APIRouter(include_in_schema=False)


@router.get("/vendor/{name}")
def vendor_file(name: str) -> FileResponse:
    rel = FILES.get(name)
    if rel is None:
        raise HTTPException(404, "no such front-end file")
    path = NODE_MODULES / rel
    if not path.is_file():
        raise HTTPException(503, "front-end packages are not installed: run scripts/setup (npm ci)")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
