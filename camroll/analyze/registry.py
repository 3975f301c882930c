"""Optional stronger models (CLIP, ArcFace ONNX exports) that an operator places in a models
directory. Nothing is ever downloaded: when the directory is empty, the default analysers stay.

Layout: one folder per model under `models_dir()`, each with a `camroll-model.json` manifest and
its ONNX files (`model.onnx` for ArcFace; `visual.onnx`, `textual.onnx` and a `tokenizer.json`
for CLIP). A broken folder is skipped with a warning that names the problem; it never stops a
worker. The manifest's `name` and `version` become the provenance of every row the model derives.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from camroll.analyze.base import model_threads

if TYPE_CHECKING:
    from camroll.analyze.arcface import ArcFaceModel
    from camroll.analyze.clip import ClipModel

log = logging.getLogger(__name__)

MANIFEST = "camroll-model.json"
ARCFACE_FILE = "model.onnx"
CLIP_VISUAL_FILE = "visual.onnx"
CLIP_TEXTUAL_FILE = "textual.onnx"

# OpenAI CLIP's preprocessing; ArcFace exports expect (x - 127.5) / 127.5, i.e. 0.5/0.5 on [0, 1].
_DEFAULTS: dict[str, dict[str, object]] = {
    "clip": {
        "image_size": 224,
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    },
    "arcface": {"image_size": 112, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
}

# Strict scalars: "512" as a string is a mistake in a manifest, not something to coerce.
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
Number = Annotated[float, Field(strict=True)]
Triple = tuple[Number, Number, Number]
Text = Annotated[str, Field(strict=True, min_length=1, max_length=200)]


class ModelLoadError(Exception):
    """A model folder that cannot be used; the message says why, for the operator's log."""


def models_dir() -> Path:
    """Where optional models live: `CAMROLL_MODELS_DIR`, else `<data dir>/models`."""
    from camroll.config import get_settings

    settings = get_settings()
    return settings.models_dir or settings.data_dir / "models"


class ModelManifest(BaseModel):
    """`camroll-model.json`. Strict: an unknown key is more likely a typo than a wish."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["clip", "arcface"]
    name: Text
    version: Text
    embedding_dim: PositiveInt
    # Pixels are scaled to [0, 1], then (x - mean) / std per channel, in `channels` order.
    # Left out, they take the kind's usual values (see _DEFAULTS).
    image_size: PositiveInt
    mean: Triple
    std: Triple
    channels: Literal["RGB", "BGR"] = "RGB"
    # Graph tensor names; by default the first input and the first output.
    input_name: Text | None = None
    output_name: Text | None = None
    # CLIP text encoder only.
    context_length: PositiveInt | None = None
    tokenizer: Text | None = None
    text_input_name: Text | None = None
    text_output_name: Text | None = None
    pad_id: int = Field(default=0, ge=0, strict=True)
    logit_scale: float = Field(default=100.0, gt=0, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("kind") in _DEFAULTS:
            return {**_DEFAULTS[data["kind"]], **data}
        return data

    @model_validator(mode="after")
    def _per_kind(self) -> ModelManifest:
        if min(self.std) <= 0:
            raise ValueError("std must be positive")
        if self.kind == "clip":
            if self.context_length is None or self.tokenizer is None:
                raise ValueError("a CLIP manifest needs context_length and tokenizer")
            if Path(self.tokenizer).name != self.tokenizer or self.tokenizer in ("", ".", ".."):
                raise ValueError("tokenizer must be a file name inside the model folder")
        else:
            clip_only = ("context_length", "tokenizer", "text_input_name", "text_output_name")
            given = [k for k in clip_only if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only for CLIP manifests")
            if self.image_size != 112:
                raise ValueError("ArcFace models take 112x112 aligned faces (image_size 112)")
        return self

    @property
    def files(self) -> list[str]:
        """The files the folder must hold besides the manifest."""
        if self.kind == "clip":
            assert self.tokenizer is not None
            return [CLIP_VISUAL_FILE, CLIP_TEXTUAL_FILE, self.tokenizer]
        return [ARCFACE_FILE]


@dataclass(frozen=True)
class ModelInfo:
    """One usable-looking model folder: its manifest checked, its files present."""

    path: Path
    manifest: ModelManifest

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version


def onnx_session(path: Path) -> ort.InferenceSession:
    """A CPU session with few threads: workers run several analysers side by side."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = model_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only; load failures surface as exceptions anyway
    try:
        return ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own types for each kind of bad file
        raise ModelLoadError(f"{path.name} does not load in onnxruntime: {e}") from None


def graph_name(names: list[str], wanted: str | None, field: str) -> str:
    """The tensor named in the manifest's `field`, else the graph's first."""
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise ModelLoadError(f"{field} {wanted!r} is not in the graph (it has {names})")
    return wanted


def check_dim(what: str, out: np.ndarray, dim: int) -> None:
    """A probe run's output must be one `dim`-wide embedding, as the manifest says."""
    if out.shape != (1, dim):
        raise ModelLoadError(
            f"{what} gives output shape {list(out.shape)}, manifest says embedding_dim {dim}"
        )


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def read_model_folder(folder: Path) -> ModelInfo:
    """Check one folder's manifest and files; raises ModelLoadError with the reason."""
    manifest_path = folder / MANIFEST
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadError(f"no {MANIFEST}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{MANIFEST} unreadable: {e}") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{MANIFEST} is not valid JSON: {e}") from None
    try:
        manifest = ModelManifest.model_validate_json(text)
    except ValidationError as e:
        raise ModelLoadError(f"{MANIFEST}: {_describe(e)}") from None
    missing = [f for f in manifest.files if not (folder / f).is_file()]
    if missing:
        raise ModelLoadError(f"missing file(s): {', '.join(missing)}")
    return ModelInfo(path=folder, manifest=manifest)


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
        self._loaded: dict[Path, tuple[Fingerprint, ClipModel | ArcFaceModel]] = {}
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

    def get(self, directory: Path, kind: str) -> ClipModel | ArcFaceModel | None:
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


def _build(info: ModelInfo) -> ClipModel | ArcFaceModel:
    # Imported here: clip.py and arcface.py import ModelInfo and onnx_session from this module.
    if info.kind == "clip":
        from camroll.analyze.clip import ClipModel

        return ClipModel(info)
    from camroll.analyze.arcface import ArcFaceModel

    return ArcFaceModel(info)


_registry = _Registry()


def available_models(directory: Path | None = None) -> list[ModelInfo]:
    """Model folders whose manifest and files check out (minus any that failed to load),
    sorted by folder name. Rescans only when something in the directory changed."""
    return _registry.available(directory or models_dir())


def get_clip(directory: Path | None = None) -> ClipModel | None:
    """The loaded CLIP model, or None when none is placed (or none loads)."""
    return cast("ClipModel | None", _registry.get(directory or models_dir(), "clip"))


def get_arcface(directory: Path | None = None) -> ArcFaceModel | None:
    """The loaded ArcFace model, or None when none is placed (or none loads)."""
    return cast("ArcFaceModel | None", _registry.get(directory or models_dir(), "arcface"))
