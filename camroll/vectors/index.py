"""Per-owner vector indexes (faiss), held in memory: face embeddings for people, CLIP image
embeddings for search by description.

An index holds derived data, so it is never written to disk: embeddings are ciphertext in the
database, and a file of them would be plaintext at rest. Each process builds an owner's index
from the database when it first needs it, then keeps it in step cheaply: before each use it
reads the owner's row count and newest `created_at` (from an index on (owner, created_at), so
the check costs an index count, not a join over the owner's rows), adds the rows created
since, and rebuilds when the count still disagrees (rows deleted here or by another worker).
A source may count rows it does not index (faces too blurry to recognise): they are counted
and remembered, not searched. `invalidate` drops an
owner's indexes at once (scope revocation, purge, face deletes); an index unused for
`IDLE_S` seconds, or beyond `MAX_OWNERS` per process, is dropped too.

The search is exact (faiss flat: every vector compared in C++/BLAS, a few ms at 100k faces),
so assignments equal the dense path's; `knn_graph` uses an inverted-file index for the
library-wide recluster, where approximate k nearest neighbours are what is asked.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    import faiss

# Rebuilt on demand, so dropping is cheap; dropping soon limits how long derived data sits in
# the memory of a worker whose owner was purged by another process.
IDLE_S = 900.0
MAX_OWNERS = 16
# From this many queries at once, `within` compares them with one BLAS product over the stored
# vectors instead of faiss's range search, which took twice the CPU here (100k x 128-d,
# 32 queries: 34 ms against 65-85 ms; 1 query: faiss 2 ms against 4 ms).
BLAS_QUERIES = 16
# Query rows per product, so a block holds at most this many distances (32 MB of float32).
_BLOCK_CELLS = 8_000_000


@dataclass(frozen=True)
class Source:
    """Where one kind of vector lives: `state` gives (row count, newest created_at) for an
    owner; `rows` the (id, float32 bytes, created_at) created at or after a time (all when None).
    A row whose bytes are None is counted by `state` but not indexed."""

    kind: str
    metric: str  # "l2" (Euclidean distances) or "ip" (inner products of unit vectors)
    state: Callable[[Session, str], tuple[int, datetime | None]]
    rows: Callable[[Session, str, datetime | None], Iterable[tuple[str, bytes | None, datetime]]]


class VectorIndex:
    """One owner's vectors of one kind, searched exactly."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.index: faiss.Index | None = None
        self.ids: list[str] = []
        self.pos: dict[str, int] = {}
        self.skipped: set[str] = set()  # rows counted by the source but not indexed
        self.norms = np.zeros(0, dtype=np.float32)  # squared norms of the stored vectors
        self.newest: datetime | None = None
        self.used = time.monotonic()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def rows(self) -> int:
        """The source's rows this index reflects, indexed or not."""
        return len(self.ids) + len(self.skipped)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        import faiss  # on first use: importing it takes about a second

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.index is None:
            dim = vectors.shape[1]
            self.index = faiss.IndexFlatL2(dim) if self.metric == "l2" else faiss.IndexFlatIP(dim)
        elif vectors.shape[1] != self.index.d:
            raise ValueError(f"vectors of {vectors.shape[1]} numbers in a {self.index.d}-d index")
        for i in ids:
            self.pos[i] = len(self.ids)
            self.ids.append(i)
        self.index.add(vectors)
        self.norms = np.concatenate([self.norms, (vectors * vectors).sum(1)])

    def _stored(self) -> np.ndarray:
        """The stored vectors: a read-only view of faiss's array, valid until the next add."""
        import faiss

        assert self.index is not None
        n, d = self.index.ntotal, self.index.d
        view = faiss.rev_swig_ptr(self.index.get_xb(), n * d).reshape(n, d)
        view.flags.writeable = False
        return view

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of `ids` (all must be present)."""
        if self.index is None or not ids:
            return np.zeros((0, self.index.d if self.index else 0), dtype=np.float32)
        keys = np.fromiter((self.pos[i] for i in ids), dtype=np.int64, count=len(ids))
        return self.index.reconstruct_batch(keys)

    def within(self, queries: np.ndarray, radius: float) -> list[list[tuple[str, float]]]:
        """Per query, every stored vector closer than `radius` (l2) or with an inner product
        above it (ip), as (id, distance or product)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.index is None:
            return [[] for _ in range(len(q))]
        if len(q) >= BLAS_QUERIES:
            return self._within_blas(q, radius)
        # faiss compares squared Euclidean distances.
        limit = radius * radius if self.metric == "l2" else radius
        lims, dist, idx = self.index.range_search(q, limit)
        if self.metric == "l2":
            dist = np.sqrt(np.maximum(dist, 0.0))
        return [
            [(self.ids[int(j)], float(d)) for j, d in zip(idx[a:b], dist[a:b], strict=True)]
            for a, b in itertools.pairwise(lims)
        ]

    def _within_blas(self, q: np.ndarray, radius: float) -> list[list[tuple[str, float]]]:
        """`within` from one matrix product per block of queries: for l2, |q - x| < r exactly
        when q.x - |x|^2 / 2 > (|q|^2 - r^2) / 2 (two passes over the block, not four)."""
        xb = self._stored()
        step = max(1, _BLOCK_CELLS // max(1, len(xb)))
        half = self.norms * 0.5
        out: list[list[tuple[str, float]]] = []
        for s in range(0, len(q), step):
            block = q[s : s + step]
            qn = (block * block).sum(1)
            m = block @ xb.T
            if self.metric == "l2":
                m -= half[None, :]
                rows, cols = np.nonzero(m > ((qn - radius * radius) * 0.5)[:, None])
                d2 = qn[rows] - 2.0 * m[rows, cols]
                vals = np.sqrt(np.maximum(d2, 0.0))
            else:
                rows, cols = np.nonzero(m > radius)
                vals = m[rows, cols]
            found: list[list[tuple[str, float]]] = [[] for _ in range(len(block))]
            for r, c, v in zip(rows.tolist(), cols.tolist(), vals.tolist(), strict=True):
                found[r].append((self.ids[c], v))
            out.extend(found)
        return out

    def nearest(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Per query, its `k` nearest stored vectors (l2: nearest first; ip: largest product)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.index is None or k <= 0:
            return [[] for _ in range(len(q))]
        dist, idx = self.index.search(q, min(k, len(self.ids)))
        if self.metric == "l2":
            dist = np.sqrt(np.maximum(dist, 0.0))
        return [
            [(self.ids[int(j)], float(d)) for j, d in zip(row_i, row_d, strict=True) if j >= 0]
            for row_i, row_d in zip(idx, dist, strict=True)
        ]


class Indexes:
    """The indexes of this process, per (kind, owner), kept in step with the database."""

    def __init__(self, max_owners: int = MAX_OWNERS, idle_s: float = IDLE_S) -> None:
        self.max_owners, self.idle_s = max_owners, idle_s
        self._entries: OrderedDict[tuple[str, str], VectorIndex] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0  # full builds from the database, for tests and benchmarks

    def get(self, session: Session, user_id: str, source: Source) -> VectorIndex:
        key = (source.kind, user_id)
        with self._lock:
            self._evict_idle()
            count, newest = source.state(session, user_id)
            index = self._entries.get(key)
            if index is not None and (count != index.rows or newest != index.newest):
                if count > index.rows:
                    self._catch_up(session, user_id, source, index)
                if count != index.rows or newest != index.newest:
                    index = None  # rows went away (or changed under us): start again
            if index is None:
                index = VectorIndex(source.metric)
                self._catch_up(session, user_id, source, index)
                self.builds += 1
            index.used = time.monotonic()
            self._entries[key] = index
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_owners:
                self._entries.popitem(last=False)
            return index

    def invalidate(self, user_id: str) -> None:
        """Forget every index of this owner (their vectors leave this process's memory)."""
        with self._lock:
            for key in [k for k in self._entries if k[1] == user_id]:
                del self._entries[key]

    def held(self, user_id: str) -> list[str]:
        """The kinds of index this process holds for an owner."""
        with self._lock:
            return sorted(kind for kind, owner in self._entries if owner == user_id)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _evict_idle(self) -> None:
        now = time.monotonic()
        for key in [k for k, v in self._entries.items() if now - v.used > self.idle_s]:
            del self._entries[key]

    @staticmethod
    def _catch_up(session: Session, user_id: str, source: Source, index: VectorIndex) -> None:
        ids: list[str] = []
        vecs: list[np.ndarray] = []
        newest = index.newest
        for row_id, blob, created in source.rows(session, user_id, index.newest):
            if row_id in index.pos or row_id in index.skipped:
                continue  # read again: created at the newest time already seen
            if newest is None or created > newest:
                newest = created
            if blob is None:
                index.skipped.add(row_id)
                continue
            ids.append(row_id)
            vecs.append(np.frombuffer(blob, dtype="<f4"))
        if ids:
            index.add(ids, np.stack(vecs))
        index.newest = newest


INDEXES = Indexes()


def knn_graph(emb: np.ndarray, k: int, exact_below: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """The `k` nearest neighbours of every row of `emb` among the rows (itself excluded):
    (indexes, Euclidean distances), each n x k, with -1 / inf where fewer exist.

    Exact up to `exact_below` rows; above, an inverted-file index (2 sqrt(n) lists, 12 searched
    per query: 2% of the rows at 100k), which finds nearly all close neighbours of clustered
    data at a fraction of the n^2 cost."""
    import faiss

    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n, dim = emb.shape
    kk = min(k + 1, n)
    if n < exact_below:
        index: faiss.Index = faiss.IndexFlatL2(dim)
    else:
        nlist = int(2 * np.sqrt(n))
        quantizer = faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist)
        rng = np.random.default_rng(0)
        sample = emb[rng.choice(n, min(n, 40 * nlist), replace=False)]
        index.cp.seed = 0
        index.train(sample)
        index.nprobe = 12
    index.add(emb)
    dist, idx = index.search(emb, kk)
    dist = np.sqrt(np.maximum(dist, 0.0))
    # Drop each row's own entry (usually first; duplicates may put it elsewhere).
    own = idx == np.arange(n)[:, None]
    keep_first = ~own.any(1)
    own[keep_first, -1] = True  # when absent, drop the farthest instead
    out_i = idx[~own].reshape(n, kk - 1)
    out_d = dist[~own].reshape(n, kk - 1)
    out_d[out_i < 0] = np.inf
    return out_i, out_d
