"""Optional stronger models (CLIP ONNX exports) that an operator places in a models directory.
Nothing is ever downloaded: when the directory is empty, the default analysers stay.

Layout: one folder per model under `models_dir()`, each with a `camroll-model.json` manifest and
its files (`visual.onnx`, `textual.onnx` and a `tokenizer.json`; see `model_folder.py`). A
broken folder is skipped with a warning that names the problem; it never stops a worker. The
manifest's `name` and `version` become the provenance of every row the model derives. A model
is loaded on first use, and only in the process that uses it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from camroll.inference.clip import ClipModel
from camroll.inference.model_folder import ModelInfo, ModelLoadError, read_model_folder

log = logging.getLogger(__name__)


def models_dir() -> Path:
    """Where optional models live: `CAMROLL_MODELS_DIR`, else `<data dir>/models`."""
    from camroll.config import get_settings

    settings = get_settings()
    return settings.models_dir or settings.data_dir / "models"


# Fingerprint of a folder: its files' names, sizes and mtimes. A replaced model file or manifest
# changes it, so the registry rescans and reloads without a restart.
Fingerprint = tuple[tuple[str, int, int], ...]


def _fingerprint(folder: Path) -> Fingerprint:
    entries = []
    try:
        for p in sorted(folder.iterdir()):
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((p.name, st.st_size, st.st_mtime_ns))
    except OSError:
        pass
    return tuple(entries)


class _Registry:
    """Scan results and loaded models for one process, keyed by folder fingerprints."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._scan_key: tuple[object, ...] | None = None
        self._scan: list[tuple[ModelInfo, Fingerprint]] = []
        self._warned: set[tuple[Path, Fingerprint, str]] = set()
        self._loaded: dict[Path, tuple[Fingerprint, ClipModel]] = {}
        self._failed: dict[Path, Fingerprint] = {}

    def _warn(self, folder: Path, fp: Fingerprint, reason: str) -> None:
        # Once per folder state: get_clip() runs per asset and must not flood the log.
        key = (folder, fp, reason)
        if key not in self._warned:
            self._warned.add(key)
            log.warning("model folder %s skipped: %s", folder, reason)

    def scan(self, directory: Path) -> list[tuple[ModelInfo, Fingerprint]]:
        with self._lock:
            try:
                st = directory.stat()
                folders = sorted(
                    p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
                )
            except FileNotFoundError:
                return []
            except OSError as e:
                log.warning("models directory %s unreadable: %s", directory, e)
                return []
            fps = [(f, _fingerprint(f)) for f in folders]
            key = (directory, st.st_mtime_ns, tuple(fps))
            if key == self._scan_key:
                return self._scan
            found = []
            for folder, fp in fps:
                try:
                    found.append((read_model_folder(folder), fp))
                except ModelLoadError as e:
                    self._warn(folder, fp, str(e))
            self._scan_key, self._scan = key, found
            return found

    def available(self, directory: Path) -> list[ModelInfo]:
        with self._lock:
            return [i for i, fp in self.scan(directory) if self._failed.get(i.path) != fp]

    def get(self, directory: Path, kind: str) -> ClipModel | None:
        """The first folder of `kind` (by folder name) that loads and passes its probe."""
        with self._lock:
            found = self.scan(directory)
            current = {info.path: fp for info, fp in found}
            # Drop models whose folder was removed or changed: their sessions hold memory.
            for path in [p for p, (fp, _) in self._loaded.items() if current.get(p) != fp]:
                if path.parent == directory:
                    del self._loaded[path]
            for info, fp in found:
                if info.kind != kind or self._failed.get(info.path) == fp:
                    continue
                cached = self._loaded.get(info.path)
                if cached is not None and cached[0] == fp:
                    return cached[1]
                try:
                    model = _build(info)
                    model.load()
                except Exception as e:  # whatever a placed file does, the worker goes on
                    reason = str(e) if isinstance(e, ModelLoadError) else f"{type(e).__name__}: {e}"
                    self._failed[info.path] = fp
                    self._warn(info.path, fp, reason)
                    continue
                self._loaded[info.path] = (fp, model)
                return model
            return None


def _build(info: ModelInfo) -> ClipModel:
    return ClipModel(info)


_registry = _Registry()


def available_models(directory: Path | None = None) -> list[ModelInfo]:
    """Model folders whose manifest and files check out (minus any that failed to load),
    sorted by folder name. Rescans only when something in the directory changed."""
    return _registry.available(directory or models_dir())


def get_clip(directory: Path | None = None) -> ClipModel | None:
    """The loaded CLIP model, or None when none is placed (or none loads)."""
    return _registry.get(directory or models_dir(), "clip")
