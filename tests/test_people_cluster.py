"""Faces group into people the way an owner would expect, on real labelled photos.

Faces come from `analyze_faces` on the shared face sets (deepface: 13 people, face_recognition:
6 people), analysed once per module. The owner's edits (locks from naming/moving/merging, bans
from moving a face out) are played against the same real faces.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bench.labelled_faces import (
    DATASETS,
    Dataset,
    incremental_labels,
    load_dataset,
    pairwise_scores,
)
from camroll.people.cluster import (
    FaceVec,
    assign_batch,
    assign_incremental,
    is_fresh,
    labels_to_members,
    recluster,
    stable_labels,
)

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"

# Measured at THRESHOLD 0.60 (bench/understanding.py): deepface P 1.000 R 1.000 F1 1.000, 13 people
# for 13; face_recognition P 1.000 R 1.000 F1 1.000, 6 for 6 (0.5 split one person in each).
# Floors sit a little below.
FLOORS = {
    "deepface": {"precision": 0.98, "f1": 0.95, "extra_people": 2},
    "face_recognition": {"precision": 0.98, "f1": 0.97, "extra_people": 2},
}


@pytest.fixture(scope="module")
def data() -> dict[str, Dataset]:
    if not FACES.is_dir():
        pytest.fail("shared face data missing: ../shared/data/faces")
    return {name: load_dataset(name, FACES) for name in DATASETS}


def _people(data: Dataset) -> dict[str, list[FaceVec]]:
    """True identity -> its scored faces, in file order."""
    by_id = {lf.face.face_id: lf.face for lf in data.faces}
    out: dict[str, list[FaceVec]] = {}
    for face_id, identity in data.truth.items():
        out.setdefault(identity, []).append(by_id[face_id])
    return out


@pytest.mark.parametrize("name", DATASETS)
def test_full_recluster_finds_the_people(data: dict[str, Dataset], name: str) -> None:
    d = data[name]
    s = pairwise_scores(d.truth, recluster([lf.face for lf in d.faces]))
    floor = FLOORS[name]
    assert s.precision >= floor["precision"], s
    assert s.f1 >= floor["f1"], s
    assert s.people_true <= s.people_found <= s.people_true + floor["extra_people"], s
    # Every labelled photo gave a usable face, and each single-identity photo is scored once.
    assert not d.photos_without_face
    assert s.faces == sum(
        1 for p in {lf.photo: lf for lf in d.faces}.values() if len(p.photo_identities) == 1
    )


def arrival_labels(faces: list[FaceVec], photos: list[str]) -> dict[str, str]:
    """People as photos arrive one at a time in `photos` order, placed as the server places them
    (`assign_batch` on everything placed so far, fresh labels made into new people)."""
    by_photo: dict[str, list[FaceVec]] = {}
    for f in faces:
        by_photo.setdefault(f.asset_id, []).append(f)
    placed: list[FaceVec] = []
    labels: dict[str, str] = {}
    made = 0
    for photo in photos:
        new = by_photo.get(photo, [])
        placed += new
        fresh: dict[str, str] = {}
        for face_id, label in assign_batch(placed, labels, [f.face_id for f in new]).items():
            if is_fresh(label):
                if label not in fresh:
                    fresh[label], made = f"person{made}", made + 1
                label = fresh[label]
            labels[face_id] = label
    return labels


@pytest.mark.parametrize("name", DATASETS)
def test_incremental_assignment_matches_full_recluster(data: dict[str, Dataset], name: str) -> None:
    d = data[name]
    faces = [lf.face for lf in d.faces]
    full = pairwise_scores(d.truth, recluster(faces))
    photos = sorted({lf.photo for lf in d.faces})
    rng = random.Random(7)
    for _ in range(3):  # photos arriving in file order and in two shuffled orders
        inc = pairwise_scores(d.truth, arrival_labels(faces, photos))
        assert inc.precision >= 0.97, inc
        assert abs(inc.f1 - full.f1) <= 0.02, (inc, full)
        rng.shuffle(photos)


def test_two_faces_of_one_photo_are_never_one_person(data: dict[str, Dataset]) -> None:
    d = data["deepface"]
    same = _people(d)["person_00"]  # 8 photos of one man
    # Pretend his first three photos are one photo (say, a mirror selfie): they must split.
    fused = [replace(f, asset_id="one-photo") if i < 3 else f for i, f in enumerate(same)]
    labels = recluster(fused)
    assert len({labels[f.face_id] for f in fused[:3]}) == 3
    assert len(set(labels.values())) == 3  # the other five still join those three
    # Arriving one by one, the second face of the photo cannot join the person of the first.
    members = labels_to_members(fused[:1], {fused[0].face_id: "A"})
    assert assign_incremental(fused[1], members) is None
    assert assign_incremental(fused[3], members) == "A"
    # And over the real sets with their real multi-face photos, no cluster holds two of a photo.
    for dd in data.values():
        vecs = [lf.face for lf in dd.faces]
        for labelling in (recluster(vecs), incremental_labels(vecs)):
            seen = {(labelling[f.face_id], f.asset_id) for f in vecs}
            assert len(seen) == len(vecs)


def test_locked_faces_stay_and_unlocked_ones_may_join(data: dict[str, Dataset]) -> None:
    d = data["deepface"]
    people = _people(d)
    man, woman = people["person_00"], people["person_01"]
    # The owner named two of the man's photos "alice" (a merge is also just locks, see below).
    locked = {man[0].face_id, man[1].face_id}
    faces = [
        replace(lf.face, locked_person="alice") if lf.face.face_id in locked else lf.face
        for lf in d.faces
    ]
    labels = recluster(faces)
    assert all(labels[f] == "alice" for f in locked)
    # The locked pair is a fixed cluster the rest of his photos join, and no one else does.
    assert all(labels[f.face_id] == "alice" for f in man)
    assert {f for f, label in labels.items() if label == "alice"} <= {f.face_id for f in man} | {
        lf.face.face_id for lf in d.faces if lf.face.face_id not in d.truth
    }
    # Nothing else is labelled with an owner's person id it was not locked to.
    others = {labels[f.face_id] for f in faces if f.face_id not in locked} - {"alice"}
    assert all(is_fresh(label) for label in others)

    # The owner insists two different people are one ("bob"): locks win over distances, and the
    # woman's other photos still form a person of their own, never "alice".
    bob = {man[2].face_id, woman[0].face_id}
    faces = [replace(f, locked_person="bob") if f.face_id in bob else f for f in faces]
    labels = recluster(faces)
    assert {labels[f] for f in bob} == {"bob"}
    assert all(labels[f] == "alice" for f in locked)
    assert all(labels[f.face_id] != "alice" for f in woman)


def test_a_face_moved_out_never_goes_back(data: dict[str, Dataset]) -> None:
    d = data["deepface"]
    man = _people(d)["person_00"]
    out = man[4]
    to_bob = {f.face_id for f in man[:3]}
    faces = [
        replace(lf.face, locked_person="bob")
        if lf.face.face_id in to_bob
        else replace(lf.face, banned_people=frozenset({"bob"}))
        if lf.face.face_id == out.face_id
        else lf.face
        for lf in d.faces
    ]
    before = recluster([replace(f, banned_people=frozenset()) for f in faces])
    assert before[out.face_id] == "bob"  # it really is close enough to go there
    labels = recluster(faces)
    assert labels[out.face_id] != "bob"
    assert sum(labels[f.face_id] == "bob" for f in man) >= len(man) - 2
    # Incremental: the same face arriving later skips "bob" too.
    members = labels_to_members([f for f in faces if f.face_id != out.face_id], labels)
    banned = next(f for f in faces if f.face_id == out.face_id)
    assert assign_incremental(banned, members) != "bob"
    assert assign_incremental(replace(banned, banned_people=frozenset()), members) == "bob"


def test_ban_from_a_person_without_locks_is_honoured_by_stable_labels(
    data: dict[str, Dataset],
) -> None:
    d = data["deepface"]
    man = _people(d)["person_00"]
    vecs = [lf.face for lf in d.faces]
    his = {m.face_id for m in man}
    old = {f: "carol" if f in his else f"p-{label}" for f, label in recluster(vecs).items()}
    # The owner moved one of carol's faces out; carol has no locked face.
    moved = man[2].face_id
    ban = frozenset({"carol"})
    faces = [replace(f, banned_people=ban) if f.face_id == moved else f for f in vecs]
    labels = stable_labels(recluster(faces), old, faces)
    assert labels[moved] != "carol"
    assert sum(labels[f.face_id] == "carol" for f in man) == len(man) - 1


def test_stable_labels_keep_person_ids_across_a_recluster(data: dict[str, Dataset]) -> None:
    d = data["deepface"]
    photos = sorted({lf.photo for lf in d.faces})
    first_half = set(photos[::2])
    early = [lf.face for lf in d.faces if lf.photo in first_half]
    everything = [lf.face for lf in d.faces]
    # Persons as the database knows them: opaque ids, some named by the owner.
    old = {f: f"person-{label}" for f, label in recluster(early).items()}
    raw = recluster(everything)
    new = stable_labels(raw, old)
    # 1:1: no two clusters were given the same person id, so no person silently absorbs another.
    assert len(set(new.values())) == len(set(raw.values()))
    # A person whose faces all stay in one cluster, and are its biggest old group, keeps its id.
    for person in set(old.values()):
        theirs = [f for f, p in old.items() if p == person]
        (cluster, *more) = {raw[f] for f in theirs}
        if more:
            continue
        groups = Counter(old[f] for f in old if raw[f] == cluster).most_common()
        if groups[0][0] == person and (len(groups) == 1 or groups[1][1] < groups[0][1]):
            assert {new[f] for f in theirs} == {person}
    # Measured: 30 of 33 faces keep their id; the 3 others sit in a split or merged person.
    kept = sum(new[f] == person for f, person in old.items())
    assert kept >= 0.85 * len(old)
    # The later photos of people already known mostly join those people's ids.
    later = [f for f in d.truth if f not in old]
    known = {d.truth[f]: old[f] for f in old if f in d.truth}
    joined = sum(new[f] == known.get(d.truth[f]) for f in later)
    assert joined >= 0.8 * sum(d.truth[f] in known for f in later)


def test_stable_labels_prefer_the_bigger_part_of_a_split() -> None:
    old = {f"f{i}": "alice" for i in range(10)} | {f"g{i}": "bob" for i in range(6)}
    new = {f"f{i}": "new:0" for i in range(7)} | {f"f{i}": "new:1" for i in range(7, 10)}
    new |= {f"g{i}": "new:1" for i in range(6)} | {"h0": "new:2", "f0": "new:0"}
    out = stable_labels(new, old)
    assert {out[f"f{i}"] for i in range(7)} == {"alice"}
    assert {out[f"g{i}"] for i in range(6)} == {"bob"}  # 6 of bob's beat 3 of alice's
    assert out["h0"] == "new:2"


def test_pairwise_scores_count_pairs() -> None:
    truth = {"a": "x", "b": "x", "c": "x", "d": "y"}
    # One x face split off, and d wrongly joined: 1 true pair found of 3; 1 of 3 predicted wrong.
    s = pairwise_scores(truth, {"a": "1", "b": "1", "c": "2", "d": "2"})
    assert (s.precision, s.recall) == (0.5, pytest.approx(1 / 3))
    assert (s.faces, s.people_found, s.people_true) == (4, 2, 2)


@pytest.mark.slow
def test_glint24_look_alikes_with_the_same_setting() -> None:
    """glint-24 (24 identities x 20 aligned crops, across ages, angles and lighting): the same
    threshold as the other sets keeps precision and F1 above the issue's bar, and arrival order
    does not change the people. Each crop is padded (3x on grey, then 2x) so the detector sees a
    whole head, as in bench/understanding.py."""
    import csv

    from PIL import Image

    from camroll.analyze.faces import analyze_faces

    root = FACES / "glint-24"
    with (root / "identities.csv").open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and r[0] != "file"]
    assert len(rows) == 480, "glint-24 labels missing"
    faces: list[FaceVec] = []
    truth: dict[str, str] = {}
    for photo, identity in rows:
        crop = Image.open(root / photo).convert("RGB")
        canvas = Image.new("RGB", (crop.width * 3, crop.height * 3), (128, 128, 128))
        canvas.paste(crop, (crop.width, crop.height))
        canvas = canvas.resize((canvas.width * 2, canvas.height * 2), Image.Resampling.LANCZOS)
        found = [r for r in analyze_faces(canvas) if r.usable]
        if found:
            best = max(found, key=lambda r: r.box[2] * r.box[3])
            faces.append(FaceVec(f"{photo}#0", photo, best.embedding))
            truth[f"{photo}#0"] = identity
    # Measured: 434 of 480 crops give a usable face (the rest are too blurry at 112 px).
    assert len(faces) >= 420
    full = pairwise_scores(truth, recluster(faces))
    assert full.precision >= 0.97 and full.f1 >= 0.92, full
    photos = sorted({f.asset_id for f in faces})
    random.Random(3).shuffle(photos)
    inc = pairwise_scores(truth, arrival_labels(faces, photos))
    assert abs(inc.f1 - full.f1) <= 0.02, (inc, full)


# --- In the database: new faces placed through the owner's face index -----------------------

PROVENANCE = {"scope": "faces", "model": "test-fixture", "model_version": "1"}


def _arrive(user_id: str, faces: list[FaceVec], photo: str) -> dict[str, str]:
    """Store one photo's faces (their real embeddings) as analysis would, then place them as
    the analysis job does; returns test face id -> database face id."""
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, Face, FaceEmbedding
    from camroll.people.assign import assign_new_faces

    made: dict[str, str] = {}
    with session_scope() as s:
        asset = Asset(user_id=user_id, checksum=photo.encode().hex(), size=1, filename="x.jpg")
        asset.status, asset.kind = "ready", "image"
        s.add(asset)
        s.flush()
        for f in faces:
            row = Face(
                user_id=user_id,
                asset_id=asset.id,
                box_x=0.1,
                box_y=0.1,
                box_w=0.3,
                box_h=0.3,
                landmarks="[]",
                score=0.99,
                sharpness=100.0,
                usable=True,
                **PROVENANCE,
            )
            s.add(row)
            s.flush()
            vector = f.embedding.astype("<f4").tobytes()
            s.add(
                FaceEmbedding(
                    user_id=user_id, asset_id=asset.id, face_id=row.id, vector=vector, **PROVENANCE
                )
            )
            made[f.face_id] = row.id
    with session_scope() as s:
        assign_new_faces(s, user_id, list(made.values()))
    return made


def _stored_people(user_id: str, ids: dict[str, str]) -> dict[str, str]:
    from sqlalchemy import select

    from camroll.db.engine import session_scope
    from camroll.db.models import Face

    with session_scope() as s:
        rows = s.execute(select(Face.id, Face.person_id).where(Face.user_id == user_id))
        person = {face_id: person_id for face_id, person_id in rows}
    return {face_id: person[db_id] for face_id, db_id in ids.items()}


def _partition(labels: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for face_id, label in labels.items():
        groups.setdefault(label, set()).add(face_id)
    return {frozenset(g) for g in groups.values()}


def test_photos_arriving_in_the_database_are_placed_through_the_index(
    data: dict[str, Dataset], env: dict
) -> None:
    """Real faces arriving photo by photo through `assign_new_faces`: the people equal the
    in-memory placement over the whole library (`assign_batch`), the owner's index is built once
    and kept in step, a deleted face makes it rebuild, and revoking `faces` drops it."""
    from sqlalchemy import delete

    from camroll.accounts import create_user
    from camroll.db.engine import session_scope
    from camroll.db.models import Face, User
    from camroll.privacy.retention import apply_consent_change
    from camroll.vectors.index import INDEXES

    d = data["deepface"]
    faces = [lf.face for lf in d.faces]
    photos = sorted({lf.photo for lf in d.faces})
    random.Random(5).shuffle(photos)
    by_photo: dict[str, list[FaceVec]] = {}
    for lf in d.faces:
        by_photo.setdefault(lf.face.asset_id, []).append(lf.face)
    with session_scope() as s:
        user_id = create_user(s, "index@example.org").id
    builds = INDEXES.builds
    ids: dict[str, str] = {}
    for photo in photos:
        ids |= _arrive(user_id, by_photo[photo], photo)
    assert INDEXES.builds == builds + 1  # built at the first photo, then only added to
    stored = _stored_people(user_id, ids)
    assert _partition(stored) == _partition(arrival_labels(faces, photos))
    s_ = pairwise_scores(d.truth, stored)
    assert s_.precision >= FLOORS["deepface"]["precision"] and s_.f1 >= FLOORS["deepface"]["f1"]

    # A face deleted (here by hand, as a re-analysis does) leaves the index stale: rebuilt.
    gone = ids[faces[0].face_id]
    with session_scope() as s:
        s.execute(delete(Face).where(Face.id == gone))
    extra = replace(faces[1], face_id="extra", asset_id="extra-photo")
    _arrive(user_id, [extra], "extra-photo")
    assert INDEXES.builds == builds + 2
    with session_scope() as s:
        assert gone not in face_index_ids(s, user_id)

    # Revoking faces deletes the rows and drops this process's copy of the embeddings.
    with session_scope() as s:
        apply_consent_change(s, s.get(User, user_id), {"faces": False})
    assert INDEXES.held(user_id) == []


def face_index_ids(session, user_id: str) -> set[str]:  # type: ignore[no-untyped-def]
    from camroll.people.assign import face_index

    return set(face_index(session, user_id).ids)


@pytest.mark.backends("sqlite")
def test_faces_in_large_components_join_their_nearest_person(
    data: dict[str, Dataset], env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past REACH_LIMIT a new face joins the person of its nearest faces by the average-linkage
    rule instead of reclustering its component; on the real sets that keeps precision and
    stays within 0.05 F1 of the full recluster (forced here with a limit of one face)."""
    from camroll.accounts import create_user
    from camroll.db.engine import session_scope
    from camroll.people import assign

    monkeypatch.setattr(assign, "REACH_LIMIT", 1)
    for name in DATASETS:
        d = data[name]
        faces = [lf.face for lf in d.faces]
        full = pairwise_scores(d.truth, recluster(faces))
        by_photo: dict[str, list[FaceVec]] = {}
        for lf in d.faces:
            by_photo.setdefault(lf.face.asset_id, []).append(lf.face)
        with session_scope() as s:
            user_id = create_user(s, f"near-{name}@example.org").id
        ids: dict[str, str] = {}
        for photo in sorted(by_photo):
            ids |= _arrive(user_id, by_photo[photo], photo)
        stored = _stored_people(user_id, ids)
        got = pairwise_scores(d.truth, stored)
        assert got.precision >= 0.97 and got.f1 >= full.f1 - 0.05, (name, got, full)
        # Two faces of one photo still never share a person.
        assert len({(stored[f.face_id], f.asset_id) for f in faces}) == len(faces)


@pytest.mark.backends("sqlite")
def test_large_people_compared_through_a_sample_give_the_same_people(
    data: dict[str, Dataset], env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past REACH_LIMIT, a person larger than SAMPLE is compared with a new face through a
    random sample, and read whole only when the sample cannot decide. Forced here with samples
    of 8 faces (the labelled people hold ~20): the people stored equal those of reading every
    person whole, some choices were made from the sample alone, and the counts and covers kept
    by the delta equal a full refresh."""
    from sqlalchemy import select

    from camroll.accounts import create_user
    from camroll.db.engine import session_scope
    from camroll.db.models import Person
    from camroll.people import assign

    monkeypatch.setattr(assign, "REACH_LIMIT", 1)
    reads: list[tuple[int | None, bool]] = []
    members = assign._members

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        ids, whole = members(*args, **kwargs)
        reads.append((args[-1], whole))
        return ids, whole

    monkeypatch.setattr(assign, "_members", counted)
    d = data["deepface"]
    by_photo: dict[str, list[FaceVec]] = {}
    for lf in d.faces:
        by_photo.setdefault(lf.face.asset_id, []).append(lf.face)
    got = {}
    for sample in (10_000, 8):
        monkeypatch.setattr(assign, "SAMPLE", sample)
        reads.clear()
        with session_scope() as s:
            user_id = create_user(s, f"sample-{sample}@example.org").id
        ids: dict[str, str] = {}
        for photo in sorted(by_photo):
            ids |= _arrive(user_id, by_photo[photo], photo)
        got[sample] = _partition(_stored_people(user_id, ids))
        with session_scope() as s:
            kept = {p.id: (p.face_count, p.cover_face_id) for p in s.scalars(select(Person))}
            assign.refresh_people(s, user_id, None)
            full = {p.id: (p.face_count, p.cover_face_id) for p in s.scalars(select(Person))}
        assert kept == full
    assert got[8] == got[10_000]
    sampled = [whole for limit, whole in reads if limit == 8]
    whole_reads = [limit for limit, _ in reads if limit is None]
    assert sampled.count(False) > len(whole_reads)  # most large people decided by the sample


def test_unusable_faces_are_counted_not_indexed(env: dict) -> None:
    """An embedding of an unusable face (too blurry to recognise) keeps the owner's index
    fresh without a rebuild, and is never searched."""
    import numpy as np

    from camroll.accounts import create_user
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, Face, FaceEmbedding
    from camroll.vectors.index import INDEXES

    with session_scope() as s:
        user_id = create_user(s, "blurry@example.org").id
    good = FaceVec("good", "p1", np.full(128, 0.05, dtype=np.float32))
    _arrive(user_id, [good], "p1")
    builds = INDEXES.builds
    with session_scope() as s:
        asset = Asset(user_id=user_id, checksum="ab" * 16, size=1, filename="b.jpg")
        asset.status, asset.kind = "ready", "image"
        s.add(asset)
        s.flush()
        face = Face(user_id=user_id, asset_id=asset.id, usable=False, **PROVENANCE)
        face.box_x = face.box_y = 0.1
        face.box_w = face.box_h = 0.05
        face.landmarks, face.score, face.sharpness = "[]", 0.6, 1.0
        s.add(face)
        s.flush()
        vector = np.full(128, 0.05, dtype="<f4").tobytes()
        common = {"user_id": user_id, "asset_id": asset.id, **PROVENANCE}
        s.add(FaceEmbedding(face_id=face.id, vector=vector, **common))
        blurry = face.id
    with session_scope() as s:
        index = face_index_ids(s, user_id)
    assert blurry not in index and len(index) == 1
    assert INDEXES.builds == builds
