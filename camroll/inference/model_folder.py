"""One optional model folder: its `camroll-model.json` manifest, checked strictly, and the
ONNX helpers the model classes share (a CPU session, tensor names, the probe's shape check).

Split from the registry so that the model classes (clip.py) and the registry that builds them
import this module, never each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from camroll.inference.base import model_threads

MANIFEST = "camroll-model.json"
CLIP_VISUAL_FILE = "visual.onnx"
CLIP_TEXTUAL_FILE = "textual.onnx"

# OpenAI CLIP's preprocessing.
_DEFAULTS: dict[str, dict[str, object]] = {
    "clip": {
        "image_size": 224,
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    },
}

# Strict scalars: "512" as a string is a mistake in a manifest, not something to coerce.
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
Number = Annotated[float, Field(strict=True)]
Triple = tuple[Number, Number, Number]
Text = Annotated[str, Field(strict=True, min_length=1, max_length=200)]


class ModelLoadError(Exception):
    """A model folder that cannot be used; the message says why, for the operator's log."""


class ModelManifest(BaseModel):
    """`camroll-model.json`. Strict: an unknown key is more likely a typo than a wish."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["clip"]  # ArcFace was removed: no product path used it
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
    # The text encoder.
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
        if self.context_length is None or self.tokenizer is None:
            raise ValueError("a CLIP manifest needs context_length and tokenizer")
        if Path(self.tokenizer).name != self.tokenizer or self.tokenizer in ("", ".", ".."):
            raise ValueError("tokenizer must be a file name inside the model folder")
        return self

    @property
    def files(self) -> list[str]:
        """The files the folder must hold besides the manifest."""
        assert self.tokenizer is not None
        return [CLIP_VISUAL_FILE, CLIP_TEXTUAL_FILE, self.tokenizer]


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
