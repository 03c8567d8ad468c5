"""Re-ranking: the real CrossEncoder loading code on a tiny model saved here, and the honest fallback."""

import logging
import subprocess
import sys

import pytest

from rag.index import DocumentIndex
from rag.models import default_embedder_path
from rag.pipeline import QueryOptions, QueryPipeline
from rag.reranker import CrossEncoderReranker, EmbeddingReranker, KeptOrder, _on_disk, load_reranker
from rag.types import Chunk, ChunkMetadata, ScoredChunk
from tests.conftest import ROOT, ScriptedGenerator


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory):
    """A 1-layer BERT sequence classifier with the embedded MiniLM tokenizer, saved to a folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(default_embedder_path()), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _logits(folder, query: str, texts: list[str]) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.no_grad():
        batch = tokenizer([query] * len(texts), texts, padding=True, truncation=True, return_tensors="pt")
        return model(**batch).logits[:, 0].tolist()


def test_cross_encoder_loads_from_a_folder_and_reorders(demo_settings, embedder, tiny_cross_encoder):
    reranker, fallback = load_reranker(str(tiny_cross_encoder), embedder)
    assert isinstance(reranker, CrossEncoderReranker) and fallback is None
    pipeline = QueryPipeline(demo_settings.with_overrides(reranker_model=str(tiny_cross_encoder)),
                             DocumentIndex.from_settings(demo_settings), embedder, ScriptedGenerator())
    hits = pipeline.retriever.retrieve("dosis de paracetamol", "es", top_k=8).hits
    reranked = reranker.rerank("dosis de paracetamol", hits)
    assert [h.ranks["rerank"] for h in reranked] == list(range(1, len(hits) + 1))
    # The order is the model's: score every (query, text) pair with transformers directly, no sentence-transformers.
    expected = _logits(tiny_cross_encoder, "dosis de paracetamol", [h.chunk.text for h in hits])
    by_model = [hits[i].chunk.id for i in sorted(range(len(hits)), key=lambda i: -expected[i])]
    assert [h.chunk.id for h in reranked] == by_model
    assert by_model != [h.chunk.id for h in hits]  # the model really changed the retrieval order
    quotes = QueryOptions(answer_mode="extractive")
    answer = pipeline.answer("¿Qué dosis de paracetamol para adultos?", options=quotes)
    assert answer.trace.details["reranker"] == f"cross-encoder:{tiny_cross_encoder.name}"
    assert "reranker_fallback" not in answer.trace.details


@pytest.mark.parametrize("fallback, kind, logged", [("none", KeptOrder, "the fused order is kept"),
                                                     ("embedder", EmbeddingReranker, "re-ranking with the embedder")])
def test_missing_cross_encoder_falls_back_and_says_so(demo_settings, embedder, caplog, fallback, kind, logged):
    settings = demo_settings.with_overrides(reranker_model="BAAI/bge-reranker-base-not-in-cache",
                                            reranker_fallback=fallback)
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    with caplog.at_level(logging.WARNING, logger="rag.reranker"):
        first = pipeline.answer("What does error E7 mean?", options=QueryOptions(answer_mode="extractive"))
        second = pipeline.answer("What does error E7 mean?", options=QueryOptions(answer_mode="extractive"))
    assert isinstance(pipeline.reranker, kind)
    for answer in (first, second):
        assert answer.trace.details["reranker"] == ("none" if kind is KeptOrder else "embedder")
        assert "not found on disk or in the Hugging Face cache" in answer.trace.details["reranker_fallback"]
        assert logged in answer.trace.details["reranker_fallback"]
    assert sum(logged in r.message for r in caplog.records) == 1  # logged once
    assert first.citations[0].source == "thermolink_t200_manual.pdf"


def test_kept_order_changes_nothing_but_the_rank_label(demo_settings, embedder):
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, ScriptedGenerator())
    hits = pipeline.retriever.retrieve("What does error E7 mean?", "en", top_k=6).hits
    kept = KeptOrder().rerank("What does error E7 mean?", hits)
    assert [h.chunk.id for h in kept] == [h.chunk.id for h in hits]
    assert [h.score for h in kept] == [h.score for h in hits]
    assert [h.ranks["rerank"] for h in kept] == list(range(1, len(hits) + 1))


def _hits(texts: list[str], windows: list[str]) -> list[ScoredChunk]:
    return [ScoredChunk(Chunk(f"c{i}", t, ChunkMetadata(source="doc.pdf", window=w)), 1.0 / (i + 1))
            for i, (t, w) in enumerate(zip(texts, windows, strict=True))]


def test_embedder_fallback_reads_windows_and_leaves_other_languages_alone(embedder):
    texts = ["It lasts two years.", "See below.", "They appear there."]
    windows = ["The warranty of the box lasts two years.",
               "See below. Error E7 means that the C wire of the thermostat is not connected.",
               "Error codes of the thermostat appear on its display."]
    reranker = EmbeddingReranker(embedder, languages=("en",))
    english = reranker.rerank("What does error E7 mean on the thermostat?", _hits(texts, windows))
    # Fused with the incoming order: the window with the answer rises to the top, the rest keep their order.
    assert [h.chunk.id for h in english] == ["c1", "c0", "c2"]
    spanish = reranker.rerank("¿Qué significa el error E7 del termostato?", _hits(texts, windows))
    assert [h.chunk.id for h in spanish] == ["c0", "c1", "c2"]  # English-only embedder: the order stays
    assert [h.ranks["rerank"] for h in spanish] == [1, 2, 3]
    # Without wider windows the embedder already ranked these very texts: the order stays.
    plain = reranker.rerank("What does error E7 mean on the thermostat?", _hits(windows, [None] * 3))
    assert [h.chunk.id for h in plain] == ["c0", "c1", "c2"]


# Hugging Face cache layouts of one model (files under models--Org--Name), and whether its config counts as cached.
CACHE_LAYOUTS = {
    "downloaded": ({"refs/main": "abc", "snapshots/abc/config.json": "{}"}, True),
    "nothing": ({}, False),
    "other files only": ({"refs/main": "abc", "snapshots/abc/tokenizer.json": "{}"}, False),
    # Loading offline resolves "main" through refs/main: a snapshot that it does not name is not loaded.
    "snapshot without refs": ({"snapshots/abc/config.json": "{}"}, False),
    "refs name another snapshot": ({"refs/main": "def", "snapshots/abc/config.json": "{}"}, False),
    "known missing on the Hub": ({"refs/main": "abc", "snapshots/abc/config.json": "{}",
                                  ".no_exist/abc/config.json": ""}, False),
}


@pytest.mark.parametrize("layout", CACHE_LAYOUTS)
def test_cross_encoder_in_hf_cache_found_by_paths_as_huggingface_hub_finds_it(tmp_path, monkeypatch, layout):
    from huggingface_hub import try_to_load_from_cache

    files, cached = CACHE_LAYOUTS[layout]
    for name, text in files.items():
        path = tmp_path / "models--Org--Name" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    reference = try_to_load_from_cache("Org/Name", "config.json", cache_dir=tmp_path)
    assert _on_disk("Org/Name") is isinstance(reference, str) is cached
    assert not _on_disk("Org/Other")


def test_hf_cache_folder_follows_the_environment_like_huggingface_hub(tmp_path, monkeypatch):
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "huggingface" / "hub" / "models--Org--Name" / "snapshots" / "abc" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text("{}")
    (config.parents[2] / "refs").mkdir()
    (config.parents[2] / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    assert not _on_disk("Org/Name")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # ~/.cache by default
    assert _on_disk("Org/Name")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "elsewhere"))  # $HF_HOME/hub before XDG_CACHE_HOME
    assert not _on_disk("Org/Name")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "huggingface"))
    assert _on_disk("Org/Name")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))  # HF_HUB_CACHE before all of them
    assert not _on_disk("Org/Name")


def test_invalid_repo_ids_are_left_to_the_library_to_explain():
    assert all(_on_disk(model) for model in ("a/b/c", "Org/Na--me", "bad id", "Org/name.git", "café/x"))


def test_missing_cross_encoder_is_known_without_importing_its_libraries(tmp_path):
    """A one-off `rag ask` must not pay for importing sentence-transformers (5 s or more) or huggingface_hub to
    learn that the cross-encoder is not on disk: run in a fresh interpreter, where no test imported them yet."""
    script = """if True:
        import sys
        from rag.reranker import KeptOrder, load_reranker
        reranker, reason = load_reranker("BAAI/bge-reranker-base", embedder=None)
        assert isinstance(reranker, KeptOrder), reranker
        assert "not found on disk or in the Hugging Face cache" in reason, reason
        heavy = {"sentence_transformers", "transformers", "torch", "huggingface_hub"} & set(sys.modules)
        assert not heavy, f"imported {sorted(heavy)}"
        """
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
