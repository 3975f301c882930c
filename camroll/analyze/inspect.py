"""`camroll inspect --analyze`: the analysers on local files, with no server or database.

Each file is analysed as the server would: from its upright preview (video: sampled frames for
faces, the poster frame for tags), with every analyser on (no consent applies to your own
files on your own machine).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from camroll.media.inspect import inspect_paths
from camroll.media.previews import render_previews
from camroll.media.validate import Quarantined, classify


def _fractions(box: tuple[int, int, int, int], size: tuple[int, int]) -> dict[str, float]:
    w, h = size
    x, y, bw, bh = box
    return {"x": x / w, "y": y / h, "w": bw / w, "h": bh / h}


def _face_dict(face: Any, size: tuple[int, int], at: float | None = None) -> dict[str, Any]:
    w, h = size
    d = face.to_dict()
    d["box_px"] = list(face.box)
    d["box"] = _fractions(face.box, size)
    d["landmarks"] = [[round(px / w, 5), round(py / h, 5)] for px, py in face.landmarks]
    if at is not None:
        d["at_seconds"] = at
    return d


def inspect_and_analyze(paths: list[Path]) -> list[dict[str, Any]]:
    """Metadata for each path (one ExifTool process), then faces, tags, place and quality."""
    results = inspect_paths(paths)
    for path, r in zip(paths, results, strict=True):
        if not r.get("error"):  # unreadable or missing: ExifTool already said why
            r.update(analyze_file(path, r))
    return results


def analyze_file(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """faces, tags, place and quality for one file; `analysis_error` when it cannot be read."""
    from camroll.analyze import faces as fa
    from camroll.analyze import quality as qa
    from camroll.analyze import tags as ta
    from camroll.places.geocode import reverse_geocode

    out: dict[str, Any] = {}
    try:
        kind = classify(path, meta.get("mime"), decode=False)
        renditions = render_previews(path, kind, meta.get("orientation"))
    except Quarantined as q:
        return {"analysis_error": {"reason": q.reason, "detail": q.detail}}
    image = Image.open(io.BytesIO(renditions.preview)).convert("RGB")
    if kind == "video":
        out["faces"] = [
            _face_dict(v.face, v.frame_size, v.at_seconds) for v in fa.analyze_video_faces(path)
        ]
    else:
        out["faces"] = [_face_dict(f, image.size) for f in fa.analyze_faces(image)]
    hints = ta.TagHints(
        has_camera_exif=bool(meta.get("make") or meta.get("model")),
        width=meta.get("width"),
        height=meta.get("height"),
    )
    out["tags"] = [t.to_dict() for t in ta.tag_image(image, faces=len(out["faces"]), hints=hints)]
    lat, lon = meta.get("latitude"), meta.get("longitude")
    place = reverse_geocode([(lat, lon)])[0] if lat is not None and lon is not None else None
    out["place"] = place.to_dict() if place else None
    q = qa.assess(image)
    from camroll.analyze.similar import phash

    out["quality"] = {
        "sharpness": q.sharpness,
        "exposure": q.exposure,
        "score": q.score,
        "phash": phash(image),
    }
    return out
