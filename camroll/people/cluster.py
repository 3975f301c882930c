"""Grouping face embeddings into people, incrementally and by a periodic full recluster.

Embeddings live in dlib's ResNet space, where two faces of one person usually lie closer than
~0.6 (Euclidean). Both modes use the same rule, average linkage under `THRESHOLD`. New faces are
placed by reclustering only the part of the library they can reach (`assign_batch`): the
connected components of the "closer than THRESHOLD" graph that hold a new face. Clusters never
cross those components, so this gives the people a full recluster would, whatever order photos
arrive in (bench/understanding.py measures it over random orders).

Constraints, enforced in both modes:
- cannot-link: two faces of one asset (photo) are never the same person;
- locks: a face the owner placed in person P stays in P, and all faces locked to P form one fixed
  cluster that unlocked faces may join (this is also how a merge of two people is represented);
- bans: a face the owner moved out of person Q never goes back to Q, nor does any cluster it is in.
  `recluster` sees Q only through faces locked to Q; `stable_labels(..., faces)` enforces bans
  against people without locked faces.

Clusters never cross the connected components of the "closer than THRESHOLD" graph (an average
below the threshold needs at least one pair below it), so the agglomeration runs per component.
Up to `EXACT_LIMIT` faces the components come from every pair; above, from a k-nearest-neighbour
graph (`camroll.vectors.index.knn_graph`), so a 100k-face library costs about n k, not n^2.
A component of up to `DENSE_LIMIT` faces is agglomerated on its dense distance matrix (about
5 k^2 bytes); a larger one on its sparse k-NN graph (`_agglomerate_sparse`), which still merges
only pairs whose exact average distance is under the threshold.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Chosen by bench/understanding.py on all three labelled sets at once (deepface, face_recognition
# and glint-24: 24 look-alike-rich identities x 20 crops across ages, angles and lighting). Every
# set has pairwise precision >= 0.97 and F1 >= 0.92 from 0.59 to 0.62; 0.63 merges two deepface
# people (P 0.875) and below 0.59 glint-24's varied photos of one face split (0.50 gave R 0.43).
# 0.60 sits inside that window, nearer the split side: a wrong merge is worse than a split.
THRESHOLD: float = 0.60

# Labels made up by `recluster` for clusters with no locked face; `stable_labels` renames them.
FRESH_PREFIX = "new:"

# Rows of the pairwise-distance blocks, so the neighbour search never holds an n x n matrix.
_BLOCK = 1024

# Libraries up to this many faces find their components from every pair (exact, n^2 / 2
# distances); larger ones from the k-NN graph.
EXACT_LIMIT = 8192
# Components up to this size are clustered on a dense matrix (84 MB at 4096); larger ones on
# their k-NN graph.
DENSE_LIMIT = 4096
# Neighbours per face in the k-NN graph.
KNN = 24


@dataclass(frozen=True)
class FaceVec:
    face_id: str
    asset_id: str
    embedding: np.ndarray
    locked_person: str | None = None  # the owner placed this face in that person
    banned_people: frozenset[str] = frozenset()  # the owner moved it out of these people


def is_fresh(label: str) -> bool:
    """Whether a label was invented by `recluster` (as opposed to an existing person id)."""
    return label.startswith(FRESH_PREFIX)


def _matrix(faces: Sequence[FaceVec]) -> np.ndarray:
    return np.stack([np.asarray(f.embedding, dtype=np.float32).ravel() for f in faces])


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of `a` and of `b`, computed in place (float32) so a
    large block costs one matrix of memory, not four."""
    d = a @ b.T
    d *= -2.0
    d += (a * a).sum(1)[:, None]
    d += (b * b).sum(1)[None, :]
    np.maximum(d, 0.0, out=d)
    return np.sqrt(d, out=d)


def assign_incremental(
    face: FaceVec, members: dict[str, list[FaceVec]], threshold: float = THRESHOLD
) -> str | None:
    """The person a newly arrived face joins, or None to start a new person.

    The face joins the person with the smallest average distance to it (the same linkage as
    `recluster`), provided that average is below `threshold`, the person holds no other face of the
    same asset, and the owner has not moved this face out of that person.
    """
    if face.locked_person is not None:
        return face.locked_person
    query = np.asarray(face.embedding, dtype=np.float32).ravel()[None, :]
    best: tuple[float, str] | None = None
    for person_id, faces in members.items():
        if not faces or person_id in face.banned_people:
            continue
        if any(f.asset_id == face.asset_id for f in faces):
            continue
        d = float(_distances(query, _matrix(faces)).mean())
        if d < threshold and (best is None or (d, person_id) < best):
            best = (d, person_id)
    return None if best is None else best[1]


# A sparse graph: (rows, cols, Euclidean distances), indexes into one list of faces.
Edges = tuple[np.ndarray, np.ndarray, np.ndarray]


def _knn_edges(emb: np.ndarray) -> Edges:
    from camroll.vectors.index import knn_graph

    idx, dist = knn_graph(emb, KNN)
    rows = np.repeat(np.arange(len(emb)), idx.shape[1])
    keep = idx.ravel() >= 0
    return rows[keep], idx.ravel()[keep], dist.ravel()[keep]


def _sub_edges(edges: Edges, keep: Sequence[int], n: int) -> Edges:
    """The edges between the faces `keep`, renumbered to their positions in `keep`."""
    local = np.full(n, -1, dtype=np.int64)
    local[np.asarray(keep, dtype=np.int64)] = np.arange(len(keep))
    r, c, d = edges
    lr, lc = local[r], local[c]
    both = (lr >= 0) & (lc >= 0)
    return lr[both], lc[both], d[both]


def _components(
    emb: np.ndarray, faces: Sequence[FaceVec], threshold: float, edges: Edges | None = None
) -> np.ndarray:
    """Component id per face in the graph of pairs closer than `threshold`, with every group of
    faces locked to one person tied together (a locked group is one cluster from the start).

    With `edges` (a k-NN graph), only those pairs are looked at. Otherwise every pair is, one
    block of rows at a time (each face also linked to its component so far), so memory stays
    at one block even when most pairs are close.
    """
    n = len(faces)
    first_of: dict[str, int] = {}
    lead = np.arange(n)
    for i, f in enumerate(faces):
        if f.locked_person is not None:
            lead[i] = first_of.setdefault(f.locked_person, i)
    reps = _connected(np.arange(n), lead, n)
    if edges is not None:
        r, c, d = edges
        close = d < threshold
        return _connected(
            np.concatenate([r[close], np.arange(n)]), np.concatenate([c[close], reps]), n
        )
    for start in range(0, n, _BLOCK):
        r, c = np.nonzero(_distances(emb[start : start + _BLOCK], emb) < threshold)
        reps = _connected(np.concatenate([r + start, np.arange(n)]), np.concatenate([c, reps]), n)
    return reps


def _connected(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """Per node, the first node of its connected component (a representative to link to)."""
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    _, first = np.unique(labels, return_index=True)
    return first[labels]


def _blocked(faces: Sequence[FaceVec]) -> np.ndarray:
    """Face pairs that may never share a cluster: one photo, two different locked people, or a
    face with the person the owner moved it out of. A merged cluster inherits both rows (OR)."""
    codes: dict[str, int] = {}
    asset = np.array([codes.setdefault(f.asset_id, len(codes)) for f in faces])
    blocked = asset[:, None] == asset[None, :]
    lock = np.array([f.locked_person or "" for f in faces], dtype=object)
    is_locked = lock != ""
    # Faces locked to the same person are merged before anything else, so blocking them is moot.
    blocked |= np.outer(is_locked, is_locked)
    for j, f in enumerate(faces):
        for person in f.banned_people:
            hit = lock == person
            blocked[j, hit] = True
            blocked[hit, j] = True
    return blocked


def _cluster_component(
    emb: np.ndarray, faces: Sequence[FaceVec], threshold: float, edges: Edges | None = None
) -> list[list[int]]:
    """Clusters of one component, as lists of indexes into `faces`: on the dense matrix, or
    on the sparse graph `edges` when given.

    Faces the owner moved out of a person (and did not place elsewhere) join last: clustered in
    the first pass, such a face would take its close neighbours with it, since no cluster holding
    it may join the person it was banned from. So everyone else settles first, then the banned
    faces join the settled clusters they are allowed in, or form their own.
    """

    def agglomerate(keep: list[int] | None, seed: list[list[int]] | None = None) -> list[list[int]]:
        e, f = (emb, faces) if keep is None else (emb[keep], [faces[i] for i in keep])
        if edges is None:
            return _agglomerate(e, f, threshold, seed)
        sub = edges if keep is None else _sub_edges(edges, keep, len(faces))
        return _agglomerate_sparse(e, f, threshold, sub, seed)

    late = [i for i, f in enumerate(faces) if f.banned_people and f.locked_person is None]
    if not late or len(late) == len(faces):
        return agglomerate(None)
    late_set = set(late)
    rest = [i for i in range(len(faces)) if i not in late_set]
    first = agglomerate(rest)
    seed = [[rest[i] for i in g] for g in first] + [[i] for i in late]
    return agglomerate(None, seed)


def _mean_distance(emb: np.ndarray, a: list[int], b: list[int]) -> float:
    """Exact average distance between two groups of faces, a bounded block at a time."""
    left, right = emb[a], emb[b]
    step = max(1, 4_000_000 // len(b))
    total = 0.0
    for s in range(0, len(a), step):
        total += float(_distances(left[s : s + step], right).sum(dtype=np.float64))
    return total / (len(a) * len(b))


def _agglomerate_sparse(
    emb: np.ndarray,
    faces: Sequence[FaceVec],
    threshold: float,
    edges: Edges,
    seed: list[list[int]] | None = None,
) -> list[list[int]]:
    """`_agglomerate` on a sparse graph: memory grows with the edges, not with k^2.

    Each pair of clusters joined by an edge keeps the sum and count of the pair distances it
    knows (the graph's edges between them, added up as clusters merge). The pair with the
    smallest known average is taken first, and merges only if its true average over all member
    pairs is under the threshold. That average lies between the distance of the two centroids
    (below) and the root of the mean squared distance (above; both from running sums, O(d));
    only when the threshold falls between them is it computed from the embeddings (a pair
    found too far apart keeps that exact figure until either side changes).
    """
    k = len(faces)
    codes: dict[str, int] = {}
    assets = [{codes.setdefault(f.asset_id, len(codes))} for f in faces]
    lock = [f.locked_person for f in faces]
    banned = [set(f.banned_people) for f in faces]
    members = [[i] for i in range(k)]
    alive = [True] * k
    adj: list[dict[int, list[float]]] = [{} for _ in range(k)]
    sums = emb.astype(np.float64)  # per cluster: the sum of its members' vectors
    squares = (sums * sums).sum(1)  # and of their squared norms
    r, c, d = edges
    for i, j, dist in zip(r.tolist(), c.tolist(), d.tolist(), strict=True):
        if i != j and j not in adj[i]:
            known = [dist, 1.0]  # [sum of known pair distances, how many pairs]
            adj[i][j] = adj[j][i] = known

    def blocked(a: int, b: int) -> bool:
        la, lb = lock[a], lock[b]
        return (
            not assets[a].isdisjoint(assets[b])
            or (la is not None and lb is not None)
            or (lb is not None and lb in banned[a])
            or (la is not None and la in banned[b])
        )

    def merge(a: int, b: int) -> int:
        """Fold b into a (or a into b, whichever knows fewer neighbours); returns the survivor.
        Only pairs whose known figures changed are pushed again: entries of the others stay
        valid, so a merge costs the smaller neighbourhood, not the larger."""
        if len(adj[a]) < len(adj[b]):
            a, b = b, a
        members[a] += members[b]
        members[b] = []
        sums[a] += sums[b]
        squares[a] += squares[b]
        assets[a] |= assets[b]
        lock[a] = lock[a] if lock[a] is not None else lock[b]
        banned[a] |= banned[b]
        alive[b] = False
        adj[a].pop(b, None)
        for x, known in adj[b].items():
            if x == a:
                continue
            del adj[x][b]
            have = adj[a].get(x)
            if have is None:
                adj[a][x] = adj[x][a] = have = known
            else:
                have[0] += known[0]
                have[1] += known[1]
            push(a, x, have)
        adj[b] = {}
        return a

    heap: list[tuple[float, int, int]] = []

    def push(a: int, x: int, known: list[float]) -> None:
        heapq.heappush(heap, (known[0] / known[1], min(a, x), max(a, x)))

    for group in seed if seed is not None else _locked_groups(faces):
        cur = group[0]
        for i in group[1:]:
            cur = merge(cur, i)
    for a in range(k):
        for x, known in adj[a].items():
            if a < x:
                push(a, x, known)
    while heap:
        est, a, b = heapq.heappop(heap)
        if not est < threshold:
            break
        if not (alive[a] and alive[b]):
            continue
        known = adj[a].get(b)
        # A pair's entry is current while its known figures still give the same average.
        if known is None or known[0] / known[1] != est or blocked(a, b):
            continue
        na, nb = len(members[a]), len(members[b])
        full = float(na * nb)
        ca, cb = sums[a] / na, sums[b] / nb
        apart = float(((ca - cb) ** 2).sum())
        spread = squares[a] / na - float(ca @ ca) + squares[b] / nb - float(cb @ cb)
        if apart >= threshold * threshold:
            continue  # even the lower bound is too far
        if known[1] < full and apart + spread >= threshold * threshold:
            exact = _mean_distance(emb, members[a], members[b])
            known[0], known[1] = exact * full, full
            if exact < threshold:
                push(a, b, known)
            continue
        merge(a, b)
    return sorted((m for m in members if m), key=min)


def _locked_groups(faces: Sequence[FaceVec]) -> list[list[int]]:
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(faces):
        if f.locked_person is not None:
            by_person[f.locked_person].append(i)
    return list(by_person.values())


def _agglomerate(
    emb: np.ndarray,
    faces: Sequence[FaceVec],
    threshold: float,
    seed: list[list[int]] | None = None,
) -> list[list[int]]:
    """Constrained average-linkage agglomeration: lists of indexes into `faces`.

    Starts from `seed` clusters (default: the faces locked to each person, and every other face on
    its own), merged whatever their distance; then the closest allowed pair of clusters merges
    while its average distance is below `threshold`. Each cluster caches its nearest allowed
    neighbour, so a merge costs O(k) plus a rescan of the rows that pointed at the merged pair,
    instead of a full O(k^2) search.
    """
    k = len(faces)
    groups: list[list[int]] = [[i] for i in range(k)]
    if k == 1:
        return groups
    dist = _distances(emb, emb)  # float32: k x k is the memory bound of a component
    blocked = _blocked(faces)
    np.fill_diagonal(blocked, True)
    sizes = np.ones(k, dtype=np.float64)
    alive = np.ones(k, dtype=bool)

    def merge(a: int, b: int) -> None:
        # Lance-Williams update for average linkage: the size-weighted mean of the two rows.
        na, nb = sizes[a], sizes[b]
        row = ((na * dist[a] + nb * dist[b]) / (na + nb)).astype(np.float32)
        dist[a] = row
        dist[:, a] = row
        blocked[a] |= blocked[b]
        blocked[:, a] = blocked[a]
        blocked[a, a] = True
        blocked[b] = True  # a merged-away cluster is never picked again
        blocked[:, b] = True
        sizes[a] = na + nb
        groups[a].extend(groups[b])
        groups[b] = []
        alive[b] = False

    for group in seed if seed is not None else _locked_groups(faces):
        for i in group[1:]:
            merge(group[0], i)

    def nearest(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j = np.empty(len(rows), dtype=np.int64)
        d = np.empty(len(rows), dtype=np.float32)
        for s in range(0, len(rows), _BLOCK):
            r = rows[s : s + _BLOCK]
            masked = np.where(blocked[r], np.float32(np.inf), dist[r])
            j[s : s + _BLOCK] = np.argmin(masked, axis=1)
            d[s : s + _BLOCK] = masked[np.arange(len(r)), j[s : s + _BLOCK]]
        return j, d

    nn, nnd = nearest(np.arange(k))
    nnd[~alive] = np.inf
    while True:
        a = int(np.argmin(nnd))
        if not nnd[a] < threshold:
            break
        a, b = sorted((a, int(nn[a])))
        merge(a, b)
        nnd[b] = np.inf
        # Only rows whose nearest was a or b can have a new nearest: the merged row is a
        # weighted mean of two values each >= their old best, and blocks only grow.
        stale = np.flatnonzero(alive & ((nn == a) | (nn == b)))
        stale = np.union1d(stale, [a])
        nn[stale], nnd[stale] = nearest(stale)
    return [g for g, live in zip(groups, alive, strict=True) if live]


def reachable(
    faces: Sequence[FaceVec], start: Iterable[int], threshold: float = THRESHOLD
) -> list[int]:
    """Indexes of the faces in the components of `start` (the "closer than threshold" graph, with
    each locked person's faces tied together), in index order. Searched outward from `start`, so
    the cost grows with those components, not with the square of the library."""
    emb = _matrix(faces)
    locked: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(faces):
        if f.locked_person is not None:
            locked[f.locked_person].append(i)
    seen = np.zeros(len(faces), dtype=bool)
    frontier = sorted(set(start))
    seen[frontier] = True
    while frontier:
        nxt: set[int] = set()
        for b in range(0, len(frontier), _BLOCK):
            rows = frontier[b : b + _BLOCK]
            near = np.nonzero(_distances(emb[rows], emb) < threshold)[1]
            nxt.update(int(j) for j in near)
            for i in rows:
                if faces[i].locked_person is not None:
                    nxt.update(locked[faces[i].locked_person])
        frontier = sorted(j for j in nxt if not seen[j])
        seen[frontier] = True
    return [int(i) for i in np.flatnonzero(seen)]


def assign_batch(
    faces: Sequence[FaceVec],
    current: dict[str, str],
    new_ids: Iterable[str],
    threshold: float = THRESHOLD,
) -> dict[str, str]:
    """New labels for the faces a batch of new faces can change: face_id -> person id or fresh
    label, for every face in the components the new faces reach (see `reachable`).

    `faces` is every usable face of the owner, new ones included; `current` the face_id ->
    person_id of the faces already placed. Those components are reclustered from scratch and
    their fresh labels mapped onto the existing people by `stable_labels`, so the result is what a
    full recluster would give them; the rest of the library is untouched.
    """
    wanted = set(new_ids)
    start = [i for i, f in enumerate(faces) if f.face_id in wanted]
    if not start:
        return {}
    return relabel_reached(
        [faces[i] for i in reachable(faces, start, threshold)], current, threshold
    )


def relabel_reached(
    faces: Sequence[FaceVec], current: dict[str, str], threshold: float = THRESHOLD
) -> dict[str, str]:
    """New labels for `faces`, whole components of the "closer than threshold" graph (see
    `reachable`): reclustered from scratch, fresh labels mapped onto the existing people of
    `current` (face_id -> person_id) by `stable_labels`."""
    old = {f.face_id: current[f.face_id] for f in faces if f.face_id in current}
    return stable_labels(recluster(list(faces), threshold), old, faces)


def recluster(faces: list[FaceVec], threshold: float = THRESHOLD) -> dict[str, str]:
    """Cluster all faces from scratch: face_id -> label.

    Clusters holding locked faces are labelled with that person's id; every other cluster gets a
    fresh label ("new:0", "new:1", ...) for `stable_labels` to map onto existing people.
    """
    if not faces:
        return {}
    emb = _matrix(faces)
    graph = _knn_edges(emb) if len(faces) > EXACT_LIMIT else None
    comp = _components(emb, faces, threshold, graph)
    by_comp: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(comp):
        by_comp[int(c)].append(i)

    labels: dict[str, str] = {}
    fresh = 0
    # Components in order of their first face, so labels are deterministic for a given input.
    for idx in sorted(by_comp.values(), key=lambda ix: ix[0]):
        sub = [faces[i] for i in idx]
        edges = None
        if len(idx) > DENSE_LIMIT:
            edges = _sub_edges(graph, idx, len(faces)) if graph else _knn_edges(emb[idx])
        for group in _cluster_component(emb[idx], sub, threshold, edges):
            lock = next((sub[i].locked_person for i in group if sub[i].locked_person), None)
            if lock is None:
                lock = f"{FRESH_PREFIX}{fresh}"
                fresh += 1
            for i in group:
                labels[sub[i].face_id] = lock
    return labels


def stable_labels(
    new: dict[str, str], old: dict[str, str], faces: Iterable[FaceVec] = ()
) -> dict[str, str]:
    """Rename the fresh labels of a recluster to the existing person ids they overlap most, 1:1.

    `new` is `recluster`'s face_id -> label; `old` is the current face_id -> person_id. Pairs are
    matched greedily by the number of shared faces, largest first, so the bulk of a named person
    keeps its id (and so its name, birthday and hidden flag). Person ids already used by locked
    clusters in `new` are not handed out again; unmatched fresh labels stay fresh (new people).

    Pass the `faces` to honour bans against people with no locked face (which `recluster` cannot
    see): faces that would land back in a person they were moved out of leave it, together with
    the rest of their cluster that was banned too, as a new fresh label.
    """
    taken = {label for label in new.values() if not is_fresh(label)}
    overlap: Counter[tuple[str, str]] = Counter(
        (label, old[face_id])
        for face_id, label in new.items()
        if is_fresh(label) and face_id in old and old[face_id] not in taken
    )
    rename: dict[str, str] = {}
    used: set[str] = set(taken)
    for (label, person_id), _count in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if label in rename or person_id in used:
            continue
        rename[label] = person_id
        used.add(person_id)
    out = {face_id: rename.get(label, label) for face_id, label in new.items()}

    ejected: dict[str, str] = {}
    numbers = [x[len(FRESH_PREFIX) :] for x in new.values() if is_fresh(x)]
    next_fresh = 1 + max((int(x) for x in numbers if x.isdigit()), default=-1)
    for f in faces:
        person_id = out.get(f.face_id)
        if person_id is not None and person_id in f.banned_people:
            if person_id not in ejected:
                ejected[person_id] = f"{FRESH_PREFIX}{next_fresh}"
                next_fresh += 1
            out[f.face_id] = ejected[person_id]
    return out


def labels_to_members(faces: Iterable[FaceVec], labels: dict[str, str]) -> dict[str, list[FaceVec]]:
    """Group faces by label, the shape `assign_incremental` expects."""
    members: dict[str, list[FaceVec]] = defaultdict(list)
    for f in faces:
        members[labels[f.face_id]].append(f)
    return dict(members)
