"""The judge embedder on ONNX Runtime gives sentence-transformers' vectors, without importing PyTorch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from rag.embedder import SentenceTransformerEmbedder
from rag.models import default_embedder_path
from rag.sbert_onnx import supported

TEXTS = ["El plazo para recurrir en alzada es de un mes.", "What is the maximum daily dose of paracetamol?",
         "Año 2025: 0,87 €", "", " ".join(["word"] * 400)]  # the last past max_seq_length: truncated alike


def test_onnx_gives_the_torch_vectors_and_counts():
    onnx, torch = SentenceTransformerEmbedder(), SentenceTransformerEmbedder(runtime="torch")
    a, b = onnx.embed(TEXTS), torch.embed(TEXTS)
    assert onnx.onnx is not None and torch.onnx is None
    assert a.shape == b.shape == (len(TEXTS), 384)
    assert (a * b).sum(axis=1).min() > 0.99999
    assert onnx.count_tokens(TEXTS) == torch.count_tokens(TEXTS)  # counted without truncation: 400 words, 400
    assert onnx.count_tokens(TEXTS)[-1] == 400


def test_asking_the_onnx_judge_imports_no_torch():
    code = ("import sys; from rag.embedder import SentenceTransformerEmbedder as S; e = S(); "
            "v = e.embed(['hola']); n = e.count_tokens(['hola mundo']); "
            "print(v.shape, n, [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.startswith("(1, 384) [3]") and out.stdout.strip().endswith("[]"), out.stdout + out.stderr


def test_another_shape_stays_on_sentence_transformers(tmp_path: Path):
    folder = tmp_path / "model"
    shutil.copytree(default_embedder_path(), folder)
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    (folder / "modules.json").write_text(json.dumps(modules[:2]), encoding="utf-8")  # no Normalize module
    assert "Normalize" in supported(folder)
    embedder = SentenceTransformerEmbedder(folder)
    vectors = embedder.embed(["hola"])
    assert embedder.runtime == "torch" and embedder.onnx is None
    assert embedder._model is not None and vectors.shape == (1, 384)  # sentence-transformers ran it
    assert supported(default_embedder_path()) is None
