"""Models as Immich's ML service shapes them: one small `InferenceModel` with `_load` and
`_predict`, loaded once per worker process and shared by its threads.

A model's `name` and `version` go on every row it helps derive (provenance).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class InferenceModel(ABC, Generic[In, Out]):
    name: ClassVar[str]
    version: ClassVar[str]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        """Load weights once; later calls return at once."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def predict(self, inputs: In) -> Out:
        self.load()
        return self._predict(inputs)

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _predict(self, inputs: In) -> Out: ...


_instances: dict[type, Any] = {}
_instances_lock = threading.Lock()

M = TypeVar("M", bound=InferenceModel[Any, Any])


def shared(cls: type[M]) -> M:
    """The process-wide instance of a model class, so weights load once per worker."""
    with _instances_lock:
        inst = _instances.get(cls)
        if inst is None:
            inst = _instances[cls] = cls()
        return inst


def model_threads() -> int:
    """Threads for one model call: the cores shared out among the worker threads. Measured in
    bench/analysis.py: with 2 workers on 2 cores, 1 thread per model runs 1.3-1.5x faster than
    each model taking every core (they fight over the same cores)."""
    import os

    from camroll.config import get_settings

    return max(1, (os.cpu_count() or 1) // max(1, get_settings().workers))
