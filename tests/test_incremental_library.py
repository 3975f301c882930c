"""The library refresh and ideas after a batch are incremental, and give what a full pass gives.

Near-duplicates on real photos (re-encoded copies, a pair stored twice, a real burst, unrelated
shots): a library refreshed in full, then a batch joined incrementally through the owner's hash
index, groups exactly as a full refresh of the whole does, naming the same best shots. Ideas: the
suggestions the batch pass makes are the full pass's, and every idea the batch changed is among
them.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import make_user
from tests.test_quality import BIG_BEN, BURST, DATA, OBAMA, OPERA, UNRELATED, load

# Library first, then the batch: the batch holds copies of library photos, a new pair, the end
# of a burst that began in the library, and unrelated shots.
JPEGS = [u for u in UNRELATED if u.endswith(".jpg")]  # HEIC decodes cost seconds
LIBRARY = [OBAMA[0], OBAMA[1], BIG_BEN[0], *JPEGS[:4]]
BATCH = [OBAMA[2], OBAMA[3], BIG_BEN[1], *OPERA, *JPEGS[4:]]


@pytest.fixture(scope="module")
def hashes() -> dict[str, tuple[str, float]]:
    """Each photo's pHash and quality score, as analysis computes them."""
    from PIL import Image

    from camroll.analyze.quality import assess
    from camroll.analyze.similar import phash

    images = {rel: load(rel) for rel in LIBRARY + BATCH}
    with Image.open(DATA / BURST) as im:
        for i in range(im.n_frames):
            im.seek(i)
            images[f"burst-{i}"] = im.convert("RGB")
    return {k: (phash(im), round(float(assess(im).score), 4)) for k, im in images.items()}


def _user(email: str, scopes: dict[str, bool]) -> str:
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.models import User

    make_user(email)
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.email == email)).one()
        set_scopes(s, user_id, scopes, client="test")
    return user_id


def _asset(s, user_id: str, name: str, at: datetime):  # type: ignore[no-untyped-def]
    from camroll.db.models import Asset, AssetMetadata

    asset = Asset(
        user_id=user_id,
        checksum=f"{random.getrandbits(256):064x}",
        size=1,
        filename=name,
        mime="image/jpeg",
        kind="image",
        status="ready",
        sort_at=at,
    )
    s.add(asset)
    s.flush()
    s.add(
        AssetMetadata(
            user_id=user_id,
            asset_id=asset.id,
            scope="cloud_processing",
            model="test",
            model_version="1",
            width=1600,
            height=1200,
            taken_at_local=at.replace(tzinfo=None).isoformat(),
            taken_at_utc=at,
        )
    )
    return asset


def _quality(s, asset, h: str, score: float) -> None:  # type: ignore[no-untyped-def]
    from camroll.db.models import AssetQuality

    s.add(
        AssetQuality(
            user_id=asset.user_id,
            asset_id=asset.id,
            scope="content",
            model="test",
            model_version="1",
            sharpness=score,
            exposure=score,
            score=score,
            phash=h,
        )
    )


def _analysed(user_id: str, ids: list[str]) -> None:
    from camroll import job_runs

    for asset_id in ids:
        job_runs.mark("analyze", asset_id, user_id, "done")


def _groups(user_id: str) -> tuple[set[frozenset[str]], set[str]]:
    """The groups (as sets of file names) and the best shot of each."""
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, AssetQuality

    with session_scope() as s:
        rows = s.execute(
            select(Asset.filename, AssetQuality.duplicate_group, AssetQuality.is_best)
            .join(AssetQuality, AssetQuality.asset_id == Asset.id)
            .where(Asset.user_id == user_id)
        ).all()
    by_group: dict[str, set[str]] = {}
    for name, group, _ in rows:
        if group:
            by_group.setdefault(group, set()).add(name)
    best = {name for name, group, is_best in rows if group and is_best}
    return {frozenset(g) for g in by_group.values()}, best


def test_a_batch_joins_the_duplicate_groups_a_full_refresh_finds(
    env: dict, hashes: dict[str, tuple[str, float]]
) -> None:
    from camroll.analyze.library import refresh_library
    from camroll.db.engine import session_scope

    user_id = _user("dups@example.org", {"content": True})
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def add(names: list[str], start: int) -> list[str]:
        ids = []
        with session_scope() as s:
            for n, name in enumerate(names):
                # Burst frames are a second apart; everything else days apart.
                at = (
                    t0 + timedelta(seconds=int(name.split("-")[1]))
                    if name.startswith("burst-")
                    else t0 + timedelta(days=start + n + 1)
                )
                asset = _asset(s, user_id, name, at)
                _quality(s, asset, *hashes[name])
                ids.append(asset.id)
        _analysed(user_id, ids)
        return ids

    add([*LIBRARY, "burst-0", "burst-1"], 0)
    assert refresh_library(user_id, full=True) == "full"
    before, _ = _groups(user_id)
    assert frozenset(OBAMA[:2]) in before and frozenset({"burst-0", "burst-1"}) in before

    add([*BATCH, "burst-2", "burst-3"], 100)
    assert refresh_library(user_id, full=False) == "batch"
    incremental = _groups(user_id)
    assert refresh_library(user_id, full=True) == "full"
    full = _groups(user_id)

    assert incremental == full
    groups, best = full
    assert frozenset(OBAMA) in groups  # the library's two copies joined by the batch's two
    assert frozenset(BIG_BEN) in groups and frozenset(OPERA) in groups
    assert frozenset(f"burst-{i}" for i in range(4)) in groups
    assert len(groups) == 4  # unrelated photos stay apart
    assert OBAMA[0] not in best  # never the 240p copy
    assert len(best) == 4


def _rows_for_ideas(s, user_id: str, name: str, at: datetime, tags: dict[str, float], q: float):  # type: ignore[no-untyped-def]
    from camroll.db.models import AssetTag

    asset = _asset(s, user_id, name, at)
    _quality(s, asset, f"{random.getrandbits(64):016x}", q)
    for label, score in tags.items():
        s.add(
            AssetTag(
                user_id=user_id,
                asset_id=asset.id,
                scope="content",
                model="test",
                model_version="1",
                label=label,
                score=score,
                sources="[]",
            )
        )
    return asset


def _face(s, asset, person_id: str, smile: float) -> None:  # type: ignore[no-untyped-def]
    from camroll.db.models import Face, FaceExpression, new_id

    face = Face(
        id=new_id(),
        user_id=asset.user_id,
        asset_id=asset.id,
        scope="faces",
        model="test",
        model_version="1",
        box_x=0.4,
        box_y=0.3,
        box_w=0.2,
        box_h=0.3,
        landmarks="[]",
        score=0.99,
        sharpness=0.8,
        usable=True,
        person_id=person_id,
    )
    s.add(face)
    s.flush()
    s.add(
        FaceExpression(
            user_id=asset.user_id,
            asset_id=asset.id,
            face_id=face.id,
            scope="faces",
            model="test",
            model_version="1",
            expression="happy",
            smile=smile,
            scores="{}",
        )
    )


def _maya(s, user_id: str):  # type: ignore[no-untyped-def]
    """A named person with a birthday (June 14), as the owner set them."""
    from camroll.db.models import Person

    maya = Person(
        user_id=user_id,
        scope="faces",
        model="test",
        model_version="1",
        name="Maya",
        birthday="2019-06-14",
        face_count=0,
    )
    s.add(maya)
    s.flush()
    return maya


def _by_fingerprint(found) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    return {
        s.fingerprint: (s.title, s.reason, sorted(a.id for a in s.assets), sorted(s.drew_on))
        for s in found
    }


def test_batch_ideas_are_the_full_pass_ideas_the_batch_touched(env: dict) -> None:
    from camroll.db.engine import session_scope
    from camroll.ideas.generate import batch_suggestions, suggestions

    user_id = _user("ideas@example.org", {"content": True, "faces": True, "creations": True})
    rng = random.Random(3)
    today = date(2025, 6, 14)
    with session_scope() as s:
        maya = _maya(s, user_id)
        maya_id = maya.id
        for n in range(60):  # two years of a library: dogs, the beach, Maya
            at = datetime(2023, 1, 1, 10, tzinfo=UTC) + timedelta(days=11 * n)
            tags = {"dog": 0.8} if n % 3 == 0 else {"beach": 0.7} if n % 3 == 1 else {}
            a = _rows_for_ideas(s, user_id, f"old-{n}", at, tags, rng.uniform(0.3, 0.9))
            if n % 4 == 0:
                _face(s, a, maya_id, rng.uniform(0.5, 0.95))
    with session_scope() as s:
        before = _by_fingerprint(suggestions(s, user_id, today, faces=True))
    assert "theme:dog" in before and "theme:beach" in before

    with session_scope() as s:  # the batch: dogs and Maya on her birthday, smiling
        batch = []
        for n in range(6):
            at = datetime(2025, 6, 14, 9 + n, tzinfo=UTC)
            a = _rows_for_ideas(s, user_id, f"new-{n}", at, {"dog": 0.9}, 0.95)
            _face(s, a, maya_id, 0.97)
            batch.append(a.id)
    with session_scope() as s:
        _, found = batch_suggestions(s, user_id, batch, today, faces=True)
        scoped = _by_fingerprint(found)
        after = _by_fingerprint(suggestions(s, user_id, today, faces=True))

    changed = {f for f, v in after.items() if before.get(f) != v}
    assert changed, "the batch changed some ideas"
    assert changed <= set(scoped)  # every idea the batch changed is made again
    for f, v in scoped.items():
        assert after[f] == v  # ... exactly as the full pass makes it
    assert "theme:beach" not in scoped  # untouched themes are left alone
    assert {"theme:dog", "smiles", f"birthday:{maya_id}:2025"} <= set(scoped)


def test_on_this_day_gathers_todays_date_in_past_years_and_counts_in_words(env: dict) -> None:
    """One idea per past year with photos taken on today's date (not the day after, not this
    year), its reason counting them as a person would: "1 photo", "3 photos"; batch = full."""
    from camroll.db.engine import session_scope
    from camroll.ideas.generate import batch_suggestions, suggestions

    user_id = _user("on-this-day@example.org", {"content": True, "creations": True})
    today = date(2025, 6, 14)
    with session_scope() as s:
        ids = {}
        for name, at in [
            ("2024-a", datetime(2024, 6, 14, 9, tzinfo=UTC)),
            *((f"2022-{i}", datetime(2022, 6, 14, 9 + i, tzinfo=UTC)) for i in range(3)),
            ("day-after", datetime(2024, 6, 15, 9, tzinfo=UTC)),
            ("this-year", datetime(2025, 6, 14, 8, tzinfo=UTC)),
        ]:
            ids[name] = _rows_for_ideas(s, user_id, name, at, {}, 0.5).id
    with session_scope() as s:
        found = suggestions(s, user_id, today, faces=False)
        _, batch = batch_suggestions(s, user_id, [ids["2024-a"]], today, faces=False)
        full = {x.title: (x.reason, {a.id for a in x.assets}) for x in found}
        days = {t: v for t, v in full.items() if t.startswith("On this day")}
        assert days == {
            "On this day, 1 year ago": ("1 photo from 14 June 2024", {ids["2024-a"]}),
            "On this day, 3 years ago": (
                "3 photos from 14 June 2022",
                {ids[f"2022-{i}"] for i in range(3)},
            ),
        }
        assert {x.title: (x.reason, {a.id for a in x.assets}) for x in batch}.items() >= {
            "On this day, 1 year ago": days["On this day, 1 year ago"]
        }.items()


def test_ideas_read_no_faces_rows_unless_faces_may_be_used(env: dict) -> None:
    """Face rows left behind (a revocation interrupted before its delete) are not read when
    the ideas step may not use faces: no birthday, smiles or people ideas, no restyle choice by
    faces, on the full pass and on a batch."""
    from camroll.db.engine import session_scope
    from camroll.ideas.generate import batch_suggestions, suggestions

    user_id = _user("nofaces@example.org", {"content": True, "faces": True, "creations": True})
    rng = random.Random(5)
    today = date(2025, 6, 14)
    with session_scope() as s:
        maya = _maya(s, user_id)
        batch = []
        for n in range(12):  # Maya smiling on her birthdays and in between, over three years
            at = datetime(2023 + n % 3, 6, 14 if n < 6 else 1 + n, 10, tzinfo=UTC)
            a = _rows_for_ideas(s, user_id, f"maya-{n}", at, {"dog": 0.9}, rng.uniform(0.5, 0.9))
            _face(s, a, maya.id, 0.97)
            batch.append(a.id)
    with session_scope() as s:
        allowed = suggestions(s, user_id, today, faces=True)
        _, allowed_batch = batch_suggestions(s, user_id, batch, today, faces=True)
        denied = suggestions(s, user_id, today, faces=False)
        _, denied_batch = batch_suggestions(s, user_id, batch, today, faces=False)

    def faces_ideas(found) -> set[str]:  # type: ignore[no-untyped-def]
        return {x.fingerprint for x in found if "faces" in x.drew_on}

    # The same rows give people and smiles ideas when faces may be used ...
    assert {"smiles", f"years:{maya.id}"} <= faces_ideas(allowed)
    assert any(f.startswith(f"birthday:{maya.id}:") for f in faces_ideas(allowed_batch))
    # ... and nothing drawn from faces when they may not.
    assert faces_ideas(denied) == set() and faces_ideas(denied_batch) == set()
    assert "theme:dog" in {x.fingerprint for x in denied}  # the rest of the ideas still come


def test_a_large_theme_and_the_smiles_are_read_from_their_best_and_match_the_full_pass(
    env: dict,
) -> None:
    """A theme and the smiles too large to read whole (THEME_CANDIDATES): the batch walks their
    best rows down an index; the collage, its photos and the counts in the reason are still the
    full pass's, with the trash left out and a photo without a quality score counted."""
    from sqlalchemy import delete

    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, AssetQuality, Person
    from camroll.ideas.generate import THEME_CANDIDATES, batch_suggestions, suggestions
    from camroll.trash import trash_asset

    user_id = _user("large@example.org", {"content": True, "faces": True, "creations": True})
    rng = random.Random(11)
    today = date(2025, 6, 20)
    n = THEME_CANDIDATES + 30
    with session_scope() as s:
        kim = Person(user_id=user_id, scope="faces", model="test", model_version="1", face_count=0)
        s.add(kim)
        s.flush()
        trashed, unscored = [], None
        for k in range(n):
            at = datetime(2024, 1, 1, 10, tzinfo=UTC) + timedelta(days=3 * k)
            best = k < 3  # the three best photos of the library go to the trash
            q = 0.99 if best else rng.uniform(0.55, 0.95)  # the walk stops above 0.5
            a = _rows_for_ideas(s, user_id, f"dog-{k}", at, {"dog": 0.8}, q)
            _face(s, a, kim.id, 0.99 if best else rng.uniform(0.86, 0.98))
            if best:
                trashed.append(a.id)
            if k == n - 1:
                unscored = a.id
        s.flush()
        s.execute(delete(AssetQuality).where(AssetQuality.asset_id == unscored))
    with session_scope() as s:
        for asset_id in trashed:
            trash_asset(s, s.get(Asset, asset_id))
    with session_scope() as s:
        batch = []
        for k in range(3):
            at = datetime(2025, 6, 19, 9 + k, tzinfo=UTC)
            a = _rows_for_ideas(s, user_id, f"new-{k}", at, {"dog": 0.9}, 0.97)
            _face(s, a, kim.id, 0.97)
            batch.append(a.id)
    with session_scope() as s:
        _, found = batch_suggestions(s, user_id, batch, today, faces=True)
        scoped = _by_fingerprint(found)
        full = _by_fingerprint(suggestions(s, user_id, today, faces=True))

    for key in ("theme:dog", "smiles"):
        assert scoped[key] == full[key]
        assert not set(trashed) & set(scoped[key][2])
    ready = n - len(trashed) + len(batch)
    assert scoped["theme:dog"][1] == f"{ready} photos with dogs"
    assert scoped["smiles"][1].endswith(f"of {ready} photos with a big smile")
    assert set(batch) <= set(scoped["theme:dog"][2])  # the batch's 0.97 shots are the best


def test_a_named_persons_best_of_each_year_is_walked_from_the_best_and_matches_the_full_pass(
    env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the years and birthdays of a person with many photos: each year's best is walked
    down the quality index (on SQLite; here from 4 rows, doubling), a year it cannot settle (photos
    without a quality score, a year thin in the library) is read by its dates or from all the
    person's photos, and the batch's ideas are still the full pass's: ties kept, the trashed
    best left out, birthdays found by date."""
    from sqlalchemy import delete, update

    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, AssetQuality, Face, Person
    from camroll.ideas import generate
    from camroll.trash import trash_asset

    monkeypatch.setattr(generate, "PERSON_WALK_MIN", 1)  # 40 faces: walk, as at 500 and up
    monkeypatch.setattr(generate, "_WALK_FIRST", 4)
    user_id = _user("years@example.org", {"content": True, "faces": True, "creations": True})
    rng = random.Random(13)
    today = date(2025, 8, 1)
    with session_scope() as s:
        maya_id = _maya(s, user_id).id
        tie, unscored, trashed = [], [], None
        for n in range(150):  # 2022 (two photos, no scores) to 2025, Maya in every third
            at = datetime(2022, 12, 30, 10, tzinfo=UTC) + timedelta(days=6 * n)
            if n % 40 == 7:
                at = at.replace(month=6, day=14)  # her birthday
            a = _rows_for_ideas(s, user_id, f"p-{n}", at, {}, round(rng.uniform(0.2, 0.9), 3))
            if n % 3 == 0 or n < 2:
                _face(s, a, maya_id, 0.3)
            if n < 2:
                unscored.append(a.id)
            elif n in (30, 33):  # 2023: two of hers tied for the best
                tie.append(a.id)
            elif n == 90:  # 2024: her best, about to go to the trash
                trashed = a.id
        s.flush()
        s.execute(delete(AssetQuality).where(AssetQuality.asset_id.in_(unscored)))
        s.execute(update(AssetQuality).where(AssetQuality.asset_id.in_(tie)).values(score=0.97))
        s.execute(update(AssetQuality).where(AssetQuality.asset_id == trashed).values(score=0.99))
    with session_scope() as s:
        trash_asset(s, s.get(Asset, trashed))
    with session_scope() as s:  # the batch: Maya on her birthday 2025, one her best of 2025
        batch = []
        for k in range(3):
            at = datetime(2025, 6, 14, 9 + k, tzinfo=UTC)
            a = _rows_for_ideas(s, user_id, f"new-{k}", at, {}, 0.95 if k == 0 else 0.4)
            _face(s, a, maya_id, 0.3)
            batch.append(a.id)
        faces = s.scalar(select(func.count()).where(Face.person_id == maya_id))
        s.execute(update(Person).where(Person.id == maya_id).values(face_count=faces))
    with session_scope() as s:
        years = generate._library_years(s, user_id)
        best, unknown = generate._walk_best(s, user_id, maya_id, years, faces)
        _, found = generate.batch_suggestions(s, user_id, batch, today, faces=True)
        scoped = _by_fingerprint(found)
        full = _by_fingerprint(generate.suggestions(s, user_id, today, faces=True))

    assert years == ["2022", "2023", "2024", "2025"]
    assert unknown == ["2022"]  # only unscored photos of hers: the walk cannot settle it
    assert set(tie) <= best and trashed not in best and batch[0] in best
    for key in (f"years:{maya_id}", f"birthday:{maya_id}:2025"):
        assert scoped[key] == full[key]
    assert scoped[f"years:{maya_id}"][1] == "Maya in 4 different years, 2022 to 2025"
    assert (
        trashed not in scoped[f"years:{maya_id}"][2] and batch[0] in scoped[f"years:{maya_id}"][2]
    )


def _people(user_id: str) -> dict[str, tuple[int, str | None, str | None]]:
    """Each person's face count and cover (face and photo), as the people page shows them."""
    from camroll.db.engine import session_scope
    from camroll.db.models import Person

    with session_scope() as s:
        return {
            p.id: (p.face_count, p.cover_face_id, p.asset_id)
            for p in s.scalars(select(Person).where(Person.user_id == user_id))
        }


def test_a_batch_gives_people_the_counts_and_covers_a_full_refresh_gives(env: dict) -> None:
    from sqlalchemy import update

    from camroll.analyze.library import refresh_library
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, Face, Person
    from camroll.trash import trash_asset

    user_id = _user("people@example.org", {"faces": True, "content": True})
    rng = random.Random(7)
    t0 = datetime(2024, 3, 1, 9, tzinfo=UTC)

    def photos(names: list[str], who: list[str], sharp: list[float]) -> list[str]:
        ids = []
        with session_scope() as s:
            for n, (name, pid, sh) in enumerate(zip(names, who, sharp, strict=True)):
                a = _rows_for_ideas(s, user_id, name, t0 + timedelta(hours=n), {}, 0.5)
                _face(s, a, pid, 0.5)
                s.flush()
                s.execute(update(Face).where(Face.asset_id == a.id).values(sharpness=sh))
                ids.append(a.id)
        _analysed(user_id, ids)
        return ids

    with session_scope() as s:
        people = [
            Person(user_id=user_id, scope="faces", model="t", model_version="1", face_count=0)
            for _ in range(3)
        ]
        s.add_all(people)
        s.flush()
        ana, ben, cem = (p.id for p in people)
    lib = photos(
        [f"lib-{n}" for n in range(24)],
        [ana, ben, cem] * 8,
        [round(rng.uniform(0.2, 0.7), 3) for _ in range(24)],
    )
    assert refresh_library(user_id, full=True) == "full"
    before = _people(user_id)
    # Ana's cover goes to the trash (the trash refreshes her): the batch must not bring it back.
    with session_scope() as s:
        trash_asset(s, s.get(Asset, before[ana][2]))
    assert _people(user_id)[ana][2] != before[ana][2]
    # The batch: a sharper face of Ben (a new cover), duller faces of Ana and Cem.
    photos(["new-0", "new-1", "new-2"], [ben, ana, cem], [0.95, 0.1, 0.15])
    assert refresh_library(user_id, full=False) == "batch"
    incremental = _people(user_id)
    assert refresh_library(user_id, full=True) == "full"
    full = _people(user_id)

    assert incremental == full
    assert full[ben][0] == 9 and full[ana][0] == 8 and full[cem][0] == 9
    with session_scope() as s:
        ben_cover = s.scalars(select(Asset.id).where(Asset.id == full[ben][2])).one()
    assert ben_cover not in lib  # Ben's new cover is the batch's sharper face
    assert full[ana][2] != before[ana][2]  # the trashed cover stays out


def test_a_full_pass_comes_once_the_batches_since_the_last_add_up_to_a_tenth() -> None:
    from camroll.analyze.library import FULL_EVERY, needs_full
    from camroll.db.models import LibraryState

    now = datetime(2025, 1, 2, 12, tzinfo=UTC)
    state = LibraryState(user_id="u", full_at=now - timedelta(hours=1), full_size=1000, grown=80)
    assert not needs_full(state, ["a"] * 19, now)  # 99 new photos: not yet a tenth
    assert needs_full(state, ["a"] * 20, now)  # 100
    state.grown = 0
    assert needs_full(state, ["a"], now + FULL_EVERY)  # a day since the last full pass
    assert needs_full(state, None, now)  # no watermark yet
