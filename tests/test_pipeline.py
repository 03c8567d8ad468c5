"""The query pipeline over the real demo index: citations, grounding, abstention."""

import re

import pytest

from rag.analysis import _split_once
from rag.embedder import SentenceTransformerEmbedder
from rag.index import DocumentIndex
from rag.pipeline import QueryOptions, QueryPipeline
from rag.retriever import Filters, fusion_weights
from tests.conftest import ScriptedGenerator


def _pipeline(settings, embedder, *replies):
    return QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator(*replies))


def test_hybrid_retrieval_finds_the_dosage_table(demo_settings, embedder):
    pipeline = _pipeline(demo_settings, embedder)
    hits = pipeline.retriever.retrieve("dosis máxima de paracetamol en adultos por vía oral", "es", top_k=5).hits
    assert any(h.chunk.metadata.element_type == "table" and h.chunk.metadata.page == 2 for h in hits[:3])
    # Every retriever contributed at both granularities, and each fused score is the weighted RRF formula over
    # the ranks it got (the multilingual dense model counts fully in Spanish).
    for name in ("bm25", "dense", "bm25_window", "dense_window"):
        assert any(name in h.ranks for h in hits), name
    weights = fusion_weights(demo_settings)
    for h in hits:
        expected = sum(weights[name] / (demo_settings.rrf_k + rank) for name, rank in h.ranks.items())
        assert h.score == pytest.approx(expected), h.ranks


def test_supported_generated_answer_keeps_renumbered_citations(demo_settings, embedder):
    question = "What does error E7 mean on the thermostat?"
    generator = ScriptedGenerator("Error E7 means the C wire is not connected [2].")
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, generator)
    # A first run shows the prompt as the model reads it: cite the numbered source that holds E7.
    pipeline.answer(question, QueryOptions(answer_mode="generative"))
    prompt = generator.calls[0][-1]["content"]
    blocks = re.split(r"\n(?=\[\d+\])", prompt)
    e7 = next(int(re.match(r"\[(\d+)\]", b).group(1)) for b in blocks if re.match(r"\[\d+\]", b) and "E7" in b)
    generator.calls.clear()
    generator.replies = [f"Error E7 means the C wire is not connected [{e7}]."]
    answer = pipeline.answer(question, QueryOptions(answer_mode="generative"))
    assert not answer.abstained
    assert answer.text == "Error E7 means the C wire is not connected [1]."
    assert [(c.source, c.page) for c in answer.citations] == [("thermolink_t200_manual.pdf", 2)]
    assert "Sources" in generator.calls[0][-1]["content"] and "[1]" in generator.calls[0][-1]["content"]


def test_a_generated_answer_splits_each_source_text_once(demo_settings, embedder):
    """Evidence, compression and grounding all read the question's sources: each text is split into sentences
    once (remembered by its text) and its vectors are embedded once (the query-time embedder's cache)."""
    question = "What does error E7 mean on the thermostat?"
    settings = demo_settings.with_overrides(context_tokens=200)  # compression has sentences to drop
    pipeline = _pipeline(settings, embedder, "Error E7 means the C wire is not connected [1].")
    pipeline.answer("¿Cuántos días por semana se puede teletrabajar?")  # models loaded, nothing of E7 read
    _split_once.cache_clear()
    answer = pipeline.answer(question, QueryOptions(answer_mode="generative"))
    assert not answer.abstained and answer.trace.details["compression"]["dropped_units"] > 0
    split = _split_once.cache_info()
    assert split.hits > 0, "the steps read the same sources"
    assert split.misses == split.currsize, "a text was split twice"


def test_auto_mode_quotes_at_once_unless_the_model_is_declared_capable(demo_settings, embedder):
    question = "¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?"
    quoting = _pipeline(demo_settings, embedder, "La dosis máxima en adultos es de 4 g al día [1].")
    assert not demo_settings.generates_in_auto and not quoting.needs_model()  # the embedded 135M model
    answer = quoting.answer(question)
    assert quoting.generator.calls == []  # nothing generated, nothing waited for
    assert "máximo 4 g al día" in answer.text and answer.trace.details["answer_mode"] == "extractive"
    assert any("RAG_LLM_CAPABLE" in note for note in answer.trace.notes)
    capable = demo_settings.with_overrides(llm_capable=True)
    generating = _pipeline(capable, embedder, "La dosis máxima en adultos es de 4 g al día [1].")
    assert generating.needs_model()
    generating.answer(question)
    assert len(generating.generator.calls) == 1
    # Naming another model declares it capable unless said otherwise.
    assert demo_settings.with_overrides(llm_model="/models/big.gguf").generates_in_auto
    assert not demo_settings.with_overrides(llm_model="/models/big.gguf", llm_capable=False).generates_in_auto


def test_hallucinated_numbers_fall_back_to_quotes_in_auto_mode(demo_settings, embedder):
    pipeline = _pipeline(demo_settings.with_overrides(llm_capable=True), embedder,
                         "La dosis máxima en adultos es de 20 mg al día [1].")
    answer = pipeline.answer("¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?")
    assert not answer.abstained
    assert "máximo 4 g al día" in answer.text and "20 mg" not in answer.text
    assert ("prospecto_paracetamol.pdf", 2) in [(c.source, c.page) for c in answer.citations]
    assert any(s["numbers_ok"] is False for s in answer.trace.details["support"])
    assert answer.trace.notes


@pytest.mark.parametrize(("question", "message"), [
    ("¿Cuál es la capital de Australia?", "No he encontrado esta información en los documentos."),
    ("Who won the football world cup in 2010?", "I could not find this in the documents."),
])
def test_abstains_in_the_question_language(demo_settings, embedder, question, message):
    pipeline = _pipeline(demo_settings, embedder, "Canberra.")
    answer = pipeline.answer(question)
    assert answer.abstained and answer.text == message and answer.citations == []
    assert "abstain_reason" in answer.trace.details


def test_filters_restrict_sources(demo_settings, embedder):
    pipeline = _pipeline(demo_settings, embedder)
    hits = pipeline.retriever.retrieve("teletrabajo", "es", top_k=10,
                                       filters=Filters(sources=("thermolink_t200_manual.pdf",))).hits
    assert hits and {h.chunk.metadata.source for h in hits} == {"thermolink_t200_manual.pdf"}


def test_empty_question_is_rejected(demo_settings, embedder):
    with pytest.raises(ValueError, match="empty"):
        _pipeline(demo_settings, embedder).answer("   ")


def test_embedder_folder_must_exist(tmp_path):
    from rag.models import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="RAG_EMBEDDER_MODEL"):
        SentenceTransformerEmbedder(tmp_path / "missing")


def test_empty_index_says_to_ingest_first(tmp_path, embedder, capsys):
    from rag.cli import main
    from rag.settings import Settings

    assert main(["ask", "¿Qué dosis?", "--index", str(tmp_path / "none")]) == 2
    assert "run 'rag ingest FOLDER" in capsys.readouterr().err
    settings = Settings(index_dir=tmp_path / "empty")
    answer = _pipeline(settings, embedder).answer("¿Qué dosis?")
    assert answer.abstained and "index is empty" in answer.trace.details["abstain_reason"]


def test_warm_up_runs_once_and_the_pipeline_stays_ready(demo_settings, embedder):
    """A server given an already-warmed pipeline warms at start too: that second warm-up must be a no-op,
    or /ready and /v1/query answer 503 "still loading" for a moment on a ready server."""

    class CountingGenerator(ScriptedGenerator):
        warmed = 0

        def warm_up(self):
            self.warmed += 1

    generator = CountingGenerator()
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, generator)
    pipeline.warm_up()
    assert pipeline.ready and generator.warmed == 1
    pipeline.warm_up()
    assert pipeline.ready and generator.warmed == 1
