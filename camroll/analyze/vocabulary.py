"""The camroll tag vocabulary and how ImageNet-1k classes map onto it.

ImageNet's 1000 classes are too fine (118 dog breeds) and too odd ("maillot", "hen-of-the-woods")
to show to people, so each class that means something in a camera roll maps to one or more
camroll tags with a weight. A tag's score is the weighted probability mass of its classes.

`data/imagenet_classes.txt` holds the 1000 class names in the standard index order (the first
WordNet lemma of each synset). It was built from `timm/data/_info/imagenet_synsets.txt` and
`imagenet_synset_to_lemma.txt` in timm 1.0.31 (Apache-2.0, (c) Ross Wightman); the synset list
and lemmas themselves come from ImageNet / WordNet. Two names repeat ("crane" the bird at 134
and the machine at 517, "maillot" at 638 and 639), so those are mapped by index.

Some tags have no ImageNet class at all (person, night, sunset, screenshot, forest, river); they
come from face counts and pixel statistics in `tags.py`, and several mappings below are weak
proxies. Each is marked WEAK where it is.
"""

from __future__ import annotations

from importlib import resources

# Bump when the mapping changes: it is part of the tags' provenance version.
VOCABULARY_VERSION = "1"


def _load_classes() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("data/imagenet_classes.txt").read_text("utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_classes.txt has {len(names)} names, expected 1000")
    return names


IMAGENET_CLASSES: tuple[str, ...] = _load_classes()
_INDEX: dict[str, int] = {}
for _i, _name in enumerate(IMAGENET_CLASSES):
    _INDEX.setdefault(_name, _i)


def _r(first: int, last: int) -> list[int]:
    return list(range(first, last + 1))


# A rule target is a class name, an index, or an inclusive index range (as a list).
_Target = str | int | list[int]

# tag -> [(targets, weight)]. Weights below 1 mark classes that only hint at the tag.
_RULES: dict[str, list[tuple[list[_Target], float]]] = {
    "dog": [([_r(151, 268)], 1.0)],
    # 281-285 are domestic cats; 286-293 (cougar, lion, ...) are big cats, not pets.
    "cat": [([_r(281, 285)], 1.0)],
    "bird": [([_r(7, 24), _r(80, 100), _r(127, 146)], 1.0)],
    # WEAK: ImageNet has no horse class; "sorrel" is a chestnut horse, the rest are horse-drawn.
    "horse": [(["sorrel"], 1.0), (["horse cart", "oxcart"], 0.5)],
    "animal": [([_r(0, 397)], 1.0)],
    "food": [
        ([_r(923, 965)], 1.0),
        (["hot pot", "frying pan", "wok", "Dutch oven", "soup bowl", "mixing bowl"], 0.6),
        (["bakery", "butcher shop", "confectionery", "restaurant", "dining table"], 0.4),
    ],
    # WEAK: no "cake" class; trifle and chocolate sauce are what cakes get called.
    "cake": [(["trifle"], 1.0), (["chocolate sauce", "bakery", "confectionery"], 0.4)],
    "drink": [
        ([_r(966, 969), "beer glass", "beer bottle", "wine bottle", "goblet"], 1.0),
        (["cocktail shaker", "coffee mug", "espresso maker", "whiskey jug", "pop bottle"], 0.7),
    ],
    "beach": [
        (["seashore", "sandbar"], 1.0),
        # Swimwear is also what bare-shouldered portraits get called.
        (["bikini", 638, 639, "swimming trunks", "sarong"], 0.25),
    ],
    "sea": [
        (["seashore", "sandbar", "coral reef", "scuba diver", "snorkel"], 1.0),
        (["promontory", "breakwater", "liner", "grey whale", "killer whale"], 0.6),
        (["catamaran", "trimaran", "schooner", "yawl", "container ship"], 0.4),
    ],
    "lake": [(["lakeside"], 1.0), (["boathouse"], 0.5)],
    # WEAK: no river class; dams and canoes are the nearest hints.
    "river": [(["dam"], 0.6), (["canoe", "paddle"], 0.4)],
    "mountain": [
        (["alp", "volcano"], 1.0),
        (["valley", "cliff"], 0.7),
        (["mountain tent", "ski", "bighorn", "ibex"], 0.4),
    ],
    # WEAK: snow shows only through winter things; an alp is usually snow-capped.
    "snow": [
        (["ski", "snowmobile", "snowplow", "dogsled", "bobsled"], 1.0),
        (["alp", "ice bear", "Eskimo dog"], 0.2),
    ],
    # WEAK: no forest class; fungi and forest animals stand in (see also the green-cover cue).
    "forest": [
        ([_r(991, 997)], 0.6),
        (["wood rabbit", "fox squirrel", "American black bear", "timber wolf"], 0.3),
    ],
    "flowers": [
        (["daisy", "yellow lady's slipper", "rapeseed"], 1.0),
        # 738 is "pot, flowerpot"; bees and butterflies are mostly photographed on flowers.
        (["pot", "vase", "hip", "bee", "cabbage butterfly", "monarch", "sulphur butterfly"], 0.5),
        (["admiral", "ringlet", "lycaenid"], 0.4),
    ],
    "garden": [
        (["patio", "greenhouse", "lawn mower", "birdhouse"], 0.8),
        (["picket fence", "pot", "swing", "rain barrel", "barrow", "worm fence"], 0.5),
    ],
    "city": [
        (["street sign", "traffic light", "cab", "trolleybus", "streetcar", "parking meter"], 1.0),
        (["manhole cover", "pay-phone", "police van", "school bus", "fire engine"], 0.6),
        (["cinema", "restaurant", "tobacco shop", "bookshop", "barbershop", "shoe shop"], 0.6),
        (["toyshop", "grocery store", "bakery", "butcher shop", "confectionery"], 0.5),
        (["steel arch bridge", "suspension bridge", "viaduct", "triumphal arch", "obelisk"], 0.4),
    ],
    "building": [
        (["church", "castle", "palace", "monastery", "mosque", "bell cote", "dome"], 1.0),
        (["barn", "prison", "library", "planetarium", "cinema", "boathouse", "stupa"], 1.0),
        (["triumphal arch", "water tower", "beacon", "cliff dwelling", "mobile home"], 0.8),
        (["greenhouse", "thatch", "tile roof", "restaurant", "bakery", "tobacco shop"], 0.6),
        (["yurt", "obelisk", "bookshop", "toyshop", "shoe shop", "grocery store"], 0.5),
    ],
    "church": [(["church", "bell cote", "altar"], 1.0), (["monastery", "vault", "organ"], 0.5)],
    "castle": [(["castle"], 1.0), (["palace"], 0.5)],
    "car": [
        (["sports car", "convertible", "minivan", "beach wagon", "cab", "limousine"], 1.0),
        (["jeep", "Model T", "racer", "car wheel", "grille", "pickup", "police van"], 1.0),
        (["car mirror", "ambulance", "recreational vehicle", "moving van", "go-kart"], 0.7),
    ],
    "boat": [
        (["canoe", "catamaran", "container ship", "fireboat", "gondola", "lifeboat"], 1.0),
        (["liner", "schooner", "speedboat", "trimaran", "yawl", "paddlewheel", "submarine"], 1.0),
        (["aircraft carrier", "wreck", "paddle", "dock"], 0.6),
    ],
    "airplane": [(["airliner", "warplane", "wing", "airship"], 1.0)],
    # "passenger car" is a railway coach in ImageNet.
    "train": [
        (["bullet train", "electric locomotive", "steam locomotive", "freight car"], 1.0),
        (["passenger car", "streetcar"], 0.8),
    ],
    "bicycle": [(["mountain bike", "bicycle-built-for-two", "tricycle", "unicycle"], 1.0)],
    "sport": [
        (["ballplayer", "balance beam", "horizontal bar", "parallel bars", "scoreboard"], 1.0),
        (["basketball", "baseball", "rugby ball", "soccer ball", "volleyball", "puck"], 1.0),
        (["tennis ball", "golf ball", "croquet ball", "ping-pong ball", "racket"], 0.8),
        (["football helmet", "barbell", "dumbbell", "punching bag", "golfcart", "ski"], 0.6),
    ],
    # WEAK: balloons and candles are the only party things ImageNet knows; see infer_scenes.
    "party": [(["balloon"], 0.6), (["candle", "feather boa"], 0.3)],
    "graduation": [(["mortarboard"], 0.8), (["academic gown"], 0.6)],
    # WEAK: ImageNet has stockings but no Christmas tree; infer_scenes adds the rest.
    "christmas": [(["Christmas stocking"], 1.0)],
    "halloween": [(["jack-o'-lantern"], 1.0), (["mask"], 0.2)],
    # WEAK: a groom class exists, a bride class does not; gowns and hoopskirts stand in.
    # "groom" is what ImageNet calls any man in a dark suit, so it counts for little alone.
    "wedding": [(["hoopskirt"], 0.7), (["gown", "overskirt"], 0.5), (["groom"], 0.3)],
    "document": [
        (["envelope", "menu", "book jacket", "comic book", "crossword puzzle"], 1.0),
        (["binder", "rule", "web site"], 0.5),
    ],
    "screenshot": [(["web site"], 0.5)],
    # A worn garment or a held instrument almost always means a person in a camera roll.
    "person": [
        (["groom", "scuba diver", "ballplayer"], 1.0),
        (["suit", "jersey", "military uniform", "academic gown", "abaya", "kimono"], 0.7),
        (["sweatshirt", "cardigan", "lab coat", "trench coat", "fur coat", "bikini"], 0.6),
        (["wig", "sunglasses", "sunglass", "bow tie", "Windsor tie", "mortarboard"], 0.5),
    ],
    # WEAK: only baby things; tags.py boosts them when a face is present.
    "baby": [(["diaper", "bassinet", "crib", "cradle", "bib", "nipple"], 1.0)],
}

# Tags that no ImageNet class feeds, only pixel statistics or other signals in tags.py.
DERIVED_ONLY: tuple[str, ...] = ("night", "sunset", "birthday")

VOCABULARY: tuple[str, ...] = tuple(_RULES) + DERIVED_ONLY


def _resolve(target: _Target) -> list[int]:
    if isinstance(target, list):
        return target
    if isinstance(target, int):
        return [target]
    if target not in _INDEX:
        raise KeyError(f"unknown ImageNet class {target!r} in the vocabulary")
    return [_INDEX[target]]


def _build() -> dict[int, tuple[tuple[str, float], ...]]:
    table: dict[int, dict[str, float]] = {}
    for tag, rules in _RULES.items():
        for targets, weight in rules:
            for target in targets:
                for idx in _resolve(target):
                    # A class listed twice for one tag keeps its strongest weight.
                    slot = table.setdefault(idx, {})
                    slot[tag] = max(weight, slot.get(tag, 0.0))
    return {idx: tuple(tags.items()) for idx, tags in table.items()}


# class index -> ((tag, weight), ...)
CLASS_TAGS: dict[int, tuple[tuple[str, float], ...]] = _build()


def tags_from_top_classes(top: list[tuple[int, float]]) -> dict[str, tuple[float, list[str]]]:
    """Weighted probability mass per tag from the model's top classes, with the class names
    that contributed (strongest first)."""
    out: dict[str, tuple[float, list[str]]] = {}
    for idx, prob in top:
        for tag, weight in CLASS_TAGS.get(idx, ()):
            score, sources = out.get(tag, (0.0, []))
            out[tag] = (score + weight * prob, [*sources, IMAGENET_CLASSES[idx]])
    return out
