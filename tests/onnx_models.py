"""Tiny ONNX models, built here with `onnx.helper`, shaped like real CLIP exports.

Their weights are chosen so their answers can be checked: the CLIP-like pair maps an image's
mean colour and a colour word to the same direction, so a red photo is nearest "red".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

OPSET = 17
DIM = 8

# Each colour word points where its colour's normalised (mean 0.5, std 0.5) RGB mean points.
COLOURS = {
    "red": (1.0, -1.0, -1.0),
    "green": (-1.0, 1.0, -1.0),
    "blue": (-1.0, -1.0, 1.0),
    "white": (1.0, 1.0, 1.0),
    "black": (-1.0, -1.0, -1.0),
}
FILLER = ["a", "photo", "of", "the", "sky", "car"]
SPECIALS = ["<pad>", "<unk>", "<start>", "<end>"]
VOCAB = {w: i for i, w in enumerate([*SPECIALS, *FILLER, *COLOURS])}
PAD_DIRECTION = "green"  # what unmasked padding would drag every text towards


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # old enough for any onnxruntime we meet
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _pad3(v: tuple[float, float, float], dim: int) -> np.ndarray:
    out = np.zeros(dim, np.float32)
    out[:3] = v
    return out


def visual_graph(path: Path, dim: int = DIM) -> None:
    """float32 [N,3,H,W] -> mean colour per channel -> MatMul -> [N, dim]."""
    weight = np.zeros((3, dim), np.float32)
    weight[:, :3] = np.eye(3)
    weight[:, 3:] = 0.01  # non-zero spare dims keep it a real projection
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["pixel_values"], ["pooled"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["pooled", "w"], ["image_embeds"]),
        ],
        "tiny-clip-visual",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", dim])],
        [numpy_helper.from_array(weight, "w")],
    )
    _save(graph, path)


def _embedding_table(dim: int, pad_weight: float) -> np.ndarray:
    table = np.zeros((len(VOCAB), dim), np.float32)
    for word, rgb in COLOURS.items():
        table[VOCAB[word]] = _pad3(rgb, dim)
    table[VOCAB["sky"]] = _pad3((-0.2, 0.0, 0.4), dim)  # a faint pull towards blue
    table[VOCAB["<pad>"]] = pad_weight * _pad3(COLOURS[PAD_DIRECTION], dim)
    return table


def textual_graph(path: Path, dim: int = DIM, context: int = 77, with_mask: bool = True) -> None:
    """int64 [N, context] -> Gather from an embedding table -> (masked) mean -> [N, dim].

    With a mask input the <pad> row is not zero, so a caller that forgets the mask gets every
    text pulled towards "green"; without one, <pad> is zero as in exports that pool at EOT."""
    table = _embedding_table(dim, pad_weight=1.0 if with_mask else 0.0)
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", context])
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["tok"])]
    inputs = [ids]
    if with_mask:
        inputs.append(
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", context])
        )
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "last"], ["mask3"]),
            helper.make_node("Mul", ["tok", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "one"], ["text_embeds"], keepdims=0),
        ]
    else:
        nodes.append(helper.make_node("ReduceMean", ["tok"], ["text_embeds"], axes=[1], keepdims=0))
    graph = helper.make_graph(
        nodes,
        "tiny-clip-textual",
        inputs,
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", dim])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([-1], np.int64), "last"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
        ],
    )
    _save(graph, path)


def tokenizer_json(path: Path, padded: bool = False) -> None:
    """A WordLevel tokenizer that, like CLIP's, lowercases and wraps text in start/end tokens.

    `padded` saves it with padding to 77 switched on, as some exported tokenizer.json are."""
    tok = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<start> $A <end>",
        special_tokens=[("<start>", VOCAB["<start>"]), ("<end>", VOCAB["<end>"])],
    )
    if padded:
        tok.enable_padding(length=77, pad_id=VOCAB["<pad>"], pad_token="<pad>")
    tok.save(str(path))


def write_manifest(folder: Path, **fields: object) -> None:
    (folder / "camroll-model.json").write_text(json.dumps(fields))


def make_clip(
    folder: Path,
    *,
    dim: int = DIM,
    with_mask: bool = True,
    context: int = 77,
    padded_tokenizer: bool = False,
    **manifest: object,
) -> Path:
    """A complete CLIP model folder; `manifest` overrides manifest fields."""
    folder.mkdir(parents=True)
    visual_graph(folder / "visual.onnx", dim)
    textual_graph(folder / "textual.onnx", dim, context, with_mask)
    tokenizer_json(folder / "tokenizer.json", padded_tokenizer)
    fields: dict[str, object] = {
        "kind": "clip",
        "name": "tiny-clip",
        "version": "test-1",
        "embedding_dim": dim,
        "image_size": 32,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "context_length": context,
        "tokenizer": "tokenizer.json",
    }
    write_manifest(folder, **{**fields, **manifest})
    return folder
