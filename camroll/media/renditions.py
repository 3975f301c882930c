"""What rendering a photo's previews gives back, whichever decoder made it (Pillow in
`previews`, libvips in `vips_renditions`): its own module, so neither imports the other back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Renditions:
    thumbnail: bytes  # WebP, longest side <= thumbnail_px
    preview: bytes  # progressive JPEG, longest side <= preview_px
    width: int  # of the preview
    height: int
    poster: bool  # True when made from a video frame
