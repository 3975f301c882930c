"""A CLIP ONNX export placed in the models directory: image and text embeddings in one space,
for text search over photos and zero-shot tags.

The folder holds `visual.onnx`, `textual.onnx` and a Hugging Face `tokenizer.json` (CLIP's BPE
tokenizer as the `tokenizers` package saves it); registry.py describes the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import onnxruntime as ort
from PIL import Image
from tokenizers import Tokenizer

from camroll.inference.base import InferenceModel
from camroll.inference.model_folder import (
    CLIP_TEXTUAL_FILE,
    CLIP_VISUAL_FILE,
    ModelInfo,
    ModelLoadError,
    check_dim,
    graph_name,
    l2_normalise,
    onnx_session,
)

# Enough inputs per run to amortise the call, few enough to keep a worker's memory small.
BATCH = 16

_INT_TYPES: dict[str, type[np.integer]] = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def preprocess(
    image: Image.Image,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    channels: str = "RGB",
) -> np.ndarray:
    """CLIP's own preprocessing: shortest side to `size` (bicubic), centre crop, then
    (x/255 - mean) / std. Returns float32 [3, size, size]."""
    img = image.convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    # max() keeps rounding from leaving the short side a pixel under the crop.
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    if channels == "BGR":
        arr = arr[..., ::-1]
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class ClipModel(InferenceModel[list[Image.Image], np.ndarray]):
    """One CLIP folder. `name` and `version` come from its manifest (provenance)."""

    name = "clip"
    version = "unset"

    def __init__(self, info: ModelInfo) -> None:
        super().__init__()
        if info.manifest.kind != "clip":
            raise ModelLoadError(f"{info.path} holds a {info.manifest.kind} model, not CLIP")
        self.info = info
        self.manifest = info.manifest
        # Per instance: each placed model is its own provenance.
        self.name = info.manifest.name  # type: ignore[misc]
        self.version = info.manifest.version  # type: ignore[misc]
        self._visual: ort.InferenceSession | None = None
        self._textual: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._label_cache = lru_cache(maxsize=8)(self._label_embeddings)

    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    def _load(self) -> None:
        m, folder = self.manifest, self.info.path
        assert m.tokenizer is not None
        try:
            self._tokenizer = Tokenizer.from_file(str(folder / m.tokenizer))
        except Exception as e:  # the Rust side raises a bare Exception
            raise ModelLoadError(f"{m.tokenizer} does not load as a tokenizer: {e}") from None
        # Saved tokenizers may carry their own padding or truncation; the attention mask and
        # CLIP's end-token rule need the raw ids, so _tokenize does both itself.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        visual = self._visual = onnx_session(folder / CLIP_VISUAL_FILE)
        textual = self._textual = onnx_session(folder / CLIP_TEXTUAL_FILE)

        v_inputs = {i.name: i for i in visual.get_inputs()}
        self._v_in = graph_name(list(v_inputs), m.input_name, "input_name")
        self._v_out = graph_name(
            [o.name for o in visual.get_outputs()], m.output_name, "output_name"
        )
        batch_dim = v_inputs[self._v_in].shape[0]
        # Some exports fix the batch size (often at 1); feed those that many at a time.
        self._v_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else BATCH

        t_inputs = {i.name: i.type for i in textual.get_inputs()}
        masks = [n for n in t_inputs if "mask" in n.lower()]
        self._t_mask = masks[0] if masks else None
        ids = m.text_input_name or next(
            (n for n, t in t_inputs.items() if n != self._t_mask and t in _INT_TYPES), None
        )
        if ids is None or t_inputs.get(ids) not in _INT_TYPES:
            raise ModelLoadError(f"{CLIP_TEXTUAL_FILE} has no int32/int64 token-id input")
        self._t_ids, self._t_dtype = ids, _INT_TYPES[t_inputs[ids]]
        unfed = set(t_inputs) - {ids, self._t_mask}
        if unfed:
            raise ModelLoadError(f"{CLIP_TEXTUAL_FILE} wants inputs camroll cannot feed: {unfed}")
        self._t_out = graph_name(
            [o.name for o in textual.get_outputs()], m.text_output_name, "text_output_name"
        )

        # Probe both encoders once, so a wrong manifest fails at load, not on the first photo.
        probe = Image.new("RGB", (m.image_size, m.image_size), (128, 128, 128))
        for what, run in (
            (CLIP_VISUAL_FILE, lambda: self._encode_images([probe])),
            (CLIP_TEXTUAL_FILE, lambda: self._encode_texts(["a photo"])),
        ):
            try:
                out = run()
            except Exception as e:
                raise ModelLoadError(f"{what} fails on a probe input: {e}") from None
            check_dim(what, out, m.embedding_dim)

    # -- images --------------------------------------------------------------------------

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        """L2-normalised image embeddings, float32 [N, embedding_dim]."""
        return self.predict(images)

    def _predict(self, inputs: list[Image.Image]) -> np.ndarray:
        return l2_normalise(self._encode_images(inputs))

    def _encode_images(self, images: list[Image.Image]) -> np.ndarray:
        assert self._visual is not None
        m = self.manifest
        outs: list[np.ndarray] = []
        for start in range(0, len(images), self._v_batch):
            chunk = images[start : start + self._v_batch]
            x = np.stack([preprocess(i, m.image_size, m.mean, m.std, m.channels) for i in chunk])
            outs.append(np.asarray(self._visual.run([self._v_out], {self._v_in: x})[0]))
        if not outs:
            return np.zeros((0, self.manifest.embedding_dim), np.float32)
        return np.concatenate(outs).astype(np.float32)

    # -- text ----------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, int64 [N, context_length] each."""
        self.load()
        return self._tokenize(texts)

    def _tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        assert self._tokenizer is not None and self.manifest.context_length is not None
        n = self.manifest.context_length
        ids = np.full((len(texts), n), self.manifest.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), n), dtype=np.int64)
        for row, enc in enumerate(self._tokenizer.encode_batch(list(texts))):
            toks = list(enc.ids)
            if len(toks) > n:
                # Keep the last token, CLIP's end-of-text that the encoder pools at, as
                # OpenAI's tokenize(truncate=True) does.
                toks = [*toks[: n - 1], toks[-1]]
            ids[row, : len(toks)] = toks
            mask[row, : len(toks)] = 1
        return ids, mask

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings, float32 [N, embedding_dim]: search queries, labels."""
        self.load()
        return l2_normalise(self._encode_texts(texts))

    def _encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        assert self._textual is not None
        outs: list[np.ndarray] = []
        for start in range(0, len(texts), BATCH):
            ids, mask = self._tokenize(texts[start : start + BATCH])
            feeds = {self._t_ids: ids.astype(self._t_dtype)}
            if self._t_mask is not None:
                feeds[self._t_mask] = mask.astype(self._t_dtype)
            outs.append(np.asarray(self._textual.run([self._t_out], feeds)[0]))
        if not outs:
            return np.zeros((0, self.manifest.embedding_dim), np.float32)
        return np.concatenate(outs).astype(np.float32)

    # -- zero-shot tags ------------------------------------------------------------------

    def _label_embeddings(self, labels: tuple[str, ...], prompt: str) -> np.ndarray:
        emb = self.encode_texts([prompt.format(label) for label in labels])
        emb.setflags(write=False)  # shared by every later call through the cache
        return emb

    def zero_shot_tags(
        self,
        image_embeddings: np.ndarray,
        labels: Sequence[str],
        prompt: str = "a photo of {}",
        top_k: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Per image, (label, probability) pairs best first: a softmax over the labels of
        cosine similarity times the logit scale (100 for CLIP), as in CLIP's paper."""
        images = l2_normalise(np.atleast_2d(np.asarray(image_embeddings, np.float32)))
        if not labels:
            return [[] for _ in images]
        # A deployment's label set is fixed: encode its prompts once, not per photo.
        text = self._label_cache(tuple(labels), prompt)
        logits = self.manifest.logit_scale * (images @ text.T)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return [
            [(labels[i], float(row[i])) for i in np.argsort(-row, kind="stable")[:top_k]]
            for row in probs
        ]
