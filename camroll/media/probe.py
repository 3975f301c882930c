"""Facts read from the decoder's own view of a file, where container headers can lie.

ExifTool reports a QuickTime track header's fixed-point size, which for tiny or hostile videos
is absurd (a 2x2 clip reads as 131072x131072); the codec's coded size is what plays.
"""

from __future__ import annotations

from pathlib import Path


def video_size(path: Path) -> tuple[int, int] | None:
    """The first video stream's coded (width, height), before any rotation; None if unknown."""
    import av  # PyAV: only for videos

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            streams = container.streams.video
            if not streams:
                return None
            ctx = streams[0].codec_context
            width, height = int(ctx.width or 0), int(ctx.height or 0)
    except Exception:  # av.error.* and friends: no verdict, keep ExifTool's answer
        return None
    return (width, height) if width > 0 and height > 0 else None
