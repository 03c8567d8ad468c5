"""A sentence-transformers BERT folder (the judge embedder, all-MiniLM-L6-v2 by default) on ONNX Runtime.

Loading sentence-transformers imports PyTorch and transformers: 5-15 s before the first vector, which a one-off
``rag ask`` and a server's start wait for. A folder of the usual shape (a BERT ``Transformer`` module with its
``model.safetensors`` and ``tokenizer.json``, mean ``Pooling``, ``Normalize``) runs instead as an ONNX graph built
once from its weights (``rag.onnxgraph``, float32: the same vectors, cosine 0.99999 or more to PyTorch's) and the
``tokenizers`` library reading its ``tokenizer.json`` (truncated at the folder's ``max_seq_length``). Any other
shape keeps sentence-transformers. The graph is written beside the converted E5 (``<prefix>/share/local-rag``)
under a name derived from the folder's path, at install time for the embedded model (``make``) and on first use
for another folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from rag.e5onnx import default_onnx_dir
from rag.onnxgraph import EncoderGraph, EncoderLayer, session

log = logging.getLogger(__name__)

GRAPH_FILE = "encoder.onnx"
VERSION = 1
_MODULES = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize"]


def supported(folder: Path) -> str | None:
    """None when ``folder`` can run on ONNX Runtime here, else why not."""
    try:
        listed = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        modules = [m["type"] for m in listed]
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        pooling_dir = next(m["path"] for m in listed if m["type"].endswith("Pooling"))
        pooling = json.loads((folder / pooling_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        return f"no readable modules/config ({exc})"
    if modules != _MODULES:
        return f"modules {modules} are not Transformer, Pooling, Normalize"
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        return f"model type {config.get('model_type')!r} / {config.get('hidden_act')!r} is not a GELU BERT"
    if not pooling.get("pooling_mode_mean_tokens") or any(
            v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"):
        return "pooling is not the mean of the tokens"
    for name in ("model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            return f"{name} missing"
    return None


def graph_dir(folder: Path) -> Path:
    """Where the graph of ``folder`` is kept."""
    digest = hashlib.sha1(str(folder.resolve()).encode("utf-8")).hexdigest()[:12]
    return default_onnx_dir().parent / f"sbert-{folder.name}-{digest}"


def convert(folder: Path, out_dir: Path | None = None) -> Path:
    """Build the float32 graph of ``folder`` from its safetensors (atomically replaced)."""
    import onnx
    from safetensors.numpy import load_file

    out_dir = out_dir or graph_dir(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    weights = load_file(str(folder / "model.safetensors"))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

    def w(name: str) -> np.ndarray:
        return weights[prefix + name]

    graph = EncoderGraph(config["hidden_size"], config["num_attention_heads"], float(config["layer_norm_eps"]))
    words = graph.node("Gather", [graph.const("emb.word", w("embeddings.word_embeddings.weight")), "input_ids"])
    x = graph.embeddings(words, w("embeddings.position_embeddings.weight"),
                         w("embeddings.token_type_embeddings.weight")[0].copy(),
                         (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias")))

    def layer(n: int) -> EncoderLayer:
        p = f"encoder.layer.{n}."
        a = p + "attention.self."
        return EncoderLayer(
            qkv=np.concatenate([w(a + part + ".weight").T for part in ("query", "key", "value")], axis=1),
            qkv_bias=np.concatenate([w(a + part + ".bias") for part in ("query", "key", "value")]),
            attention_out=w(p + "attention.output.dense.weight").T.copy(),
            attention_out_bias=w(p + "attention.output.dense.bias"),
            attention_norm=(w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias")),
            ffn_in=w(p + "intermediate.dense.weight").T.copy(), ffn_in_bias=w(p + "intermediate.dense.bias"),
            ffn_out=w(p + "output.dense.weight").T.copy(), ffn_out_bias=w(p + "output.dense.bias"),
            output_norm=(w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")))

    model = graph.model(x, (layer(n) for n in range(config["num_hidden_layers"])), folder.name)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        onnx.save_model(model, str(Path(tmp) / GRAPH_FILE))
        os.replace(Path(tmp) / GRAPH_FILE, out_dir / GRAPH_FILE)
    (out_dir / "VERSION").write_text(f"{VERSION}\n", encoding="utf-8")
    return out_dir


def converted(folder: Path) -> bool:
    out = graph_dir(folder)
    try:
        return int((out / "VERSION").read_text(encoding="utf-8")) == VERSION and (out / GRAPH_FILE).is_file()
    except (OSError, ValueError):
        return False


def counting_tokenizer(folder: Path):
    """The folder's own tokenizer without truncation or padding (word pieces per text; no PyTorch), or None."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class OnnxSentenceEncoder:
    """``encode(texts, batch_size)``: normalised mean-pooled vectors, as sentence-transformers gives them."""

    def __init__(self, folder: Path, max_seq_length: int) -> None:
        from tokenizers import Tokenizer

        if not converted(folder):
            log.info("converting %s to ONNX in %s (once)", folder, graph_dir(folder))
            convert(folder)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_seq_length)
        pad = tokenizer.padding or {}
        tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
        self.tokenizer = tokenizer
        self.session = session(graph_dir(folder) / GRAPH_FILE)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = np.empty((len(texts), self.session.get_outputs()[0].shape[1]), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths pad less
        for start in range(0, len(order), batch_size):
            part = order[start:start + batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in part])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            positions = np.broadcast_to(np.arange(ids.shape[1], dtype=np.int64), ids.shape).copy()
            (pooled,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                                "position_ids": positions})
            out[part] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def main() -> None:
    """Convert the embedded judge model (run by ``make``)."""
    from rag.models import default_embedder_path

    folder = default_embedder_path()
    why = supported(folder)
    if why:
        print(f"{folder}: stays on sentence-transformers ({why})")
        return
    print(f"converted: {convert(folder)}" if not converted(folder) else f"already converted: {graph_dir(folder)}")


if __name__ == "__main__":
    main()
