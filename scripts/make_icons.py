"""Draw camroll's app icons (PNG) for the web app manifest: a film-roll lens on the accent colour.

Run `.venv/bin/python scripts/make_icons.py`; the PNGs are committed under
camroll/web/static/icons/.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "camroll" / "web" / "static" / "icons"
ACCENT = (47, 111, 94)
LIGHT = (246, 245, 242)


def draw(size: int, maskable: bool) -> Image.Image:
    scale = 4  # draw large, then downsample: smooth edges without an anti-aliasing library
    n = size * scale
    img = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if maskable:  # full bleed: the launcher cuts its own shape out of it
        d.rectangle((0, 0, n, n), fill=ACCENT)
        inner = 0.62
    else:
        d.rounded_rectangle((0, 0, n - 1, n - 1), radius=int(n * 0.22), fill=ACCENT)
        inner = 0.78
    c, r = n / 2, n * inner / 2
    d.ellipse((c - r, c - r, c + r, c + r), outline=LIGHT, width=int(n * 0.055))
    r2 = r * 0.52
    d.ellipse((c - r2, c - r2, c + r2, c + r2), fill=LIGHT)
    r3 = r2 * 0.35
    d.ellipse(
        (c - r3 + r2 * 0.25, c - r3 - r2 * 0.25, c + r3 + r2 * 0.25, c + r3 - r2 * 0.25),
        fill=ACCENT,
    )
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        draw(size, maskable=False).save(OUT / f"icon-{size}.png", optimize=True)
    draw(512, maskable=True).save(OUT / "icon-maskable-512.png", optimize=True)
    draw(180, maskable=True).convert("RGB").save(OUT / "apple-touch-icon.png", optimize=True)


if __name__ == "__main__":
    main()
