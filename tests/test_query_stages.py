"""Query expansion and context compression, with the real embedder, tokenizer and demo index."""

import numpy as np
import pytest

from rag.compression import ContextCompressor, merge_windows
from rag.expansion import ExpandedQuery, QueryExpander, decompose, unproductive_expansions
from rag.index import DocumentIndex
from rag.pipeline import QueryOptions, QueryPipeline
from rag.types import Chunk, ChunkMetadata, ElementType, ScoredChunk
from tests.conftest import ScriptedGenerator


@pytest.mark.parametrize(("question", "language", "parts"), [
    ("¿Cuál es la dosis máxima en adultos y cuándo se debe tomar?", "es",
     ["¿Cuál es la dosis máxima en adultos?", "¿cuándo se debe tomar?"]),
    ("¿Qué es el error E7? ¿Cómo se resetea el termostato?", "es",
     ["¿Qué es el error E7?", "¿Cómo se resetea el termostato?"]),
    ("What does error E7 mean and how do I reset it?", "en", ["What does error E7 mean?", "how do I reset it?"]),
    ("¿Puede tomarse paracetamol con alcohol y café?", "es", ["¿Puede tomarse paracetamol con alcohol y café?"]),
    ("Who wrote Pride and Prejudice?", "en", ["Who wrote Pride and Prejudice?"]),
])
def test_decompose_splits_only_multi_part_questions(question, language, parts):
    assert decompose(question, language) == parts


def test_llm_expansions_parse_paraphrases_and_hyde():
    generator = ScriptedGenerator("1. ¿Qué cantidad máxima de paracetamol puede tomar un adulto?\n"
                                  "- dosis tope diaria de paracetamol en adultos\n\nok\n"
                                  "¿Cuál es la dosis máxima de paracetamol?",
                                  "Los adultos pueden tomar hasta 4 g de paracetamol al día.")
    expanded = QueryExpander(generator).expand("¿Cuál es la dosis máxima de paracetamol?", "es",
                                               ("multi-query", "hyde"))
    assert [(e.kind, e.text) for e in expanded] == [
        ("original", "¿Cuál es la dosis máxima de paracetamol?"),
        ("paraphrase", "¿Qué cantidad máxima de paracetamol puede tomar un adulto?"),
        ("paraphrase", "dosis tope diaria de paracetamol en adultos"),
        ("hyde", "Los adultos pueden tomar hasta 4 g de paracetamol al día."),
    ]
    assert expanded[-1].dense_only and "español" not in generator.calls[0][0]["content"]
    with pytest.raises(ValueError, match="unknown query expansion"):
        QueryExpander(generator).expand("q", "en", ("synonyms",))
    with pytest.raises(ValueError, match="need a generator"):
        QueryExpander(None).expand("q", "en", ("hyde",))


def test_expansions_are_retrieved_and_fused(demo_settings, embedder):
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder,
                             ScriptedGenerator())
    question = "¿Qué significa el error E7 y cuántos días se puede teletrabajar?"
    answer = pipeline.answer(question, QueryOptions(answer_mode="extractive", expansion=("decompose",)))
    assert [e["kind"] for e in answer.trace.details["expansions"]] == ["sub-question", "sub-question"]
    assert {"bm25#1", "dense#1", "bm25#2", "dense#2"} <= set(answer.trace.details["retrieval"])
    # Each part found its own evidence: both documents are cited.
    assert {c.source for c in answer.citations} == {"thermolink_t200_manual.pdf", "politica_teletrabajo.md"}


def _hit(doc: str, text: str, window: str | None = None, kind: ElementType = ElementType.TEXT,
         ordinal: int = 0) -> ScoredChunk:
    meta = ChunkMetadata(source=f"{doc}.pdf", page=1, doc_id=doc, element_type=kind, window=window, ordinal=ordinal)
    return ScoredChunk(Chunk(Chunk.make_id(doc, ordinal, text), text, meta), 1.0)


def test_overlapping_windows_merge_without_repeating_sentences():
    s = [f"Sentence number {i} of the leaflet." for i in range(6)]
    hits = [_hit("a", s[2], " ".join(s[0:5]), ordinal=2), _hit("b", s[3], " ".join(s[1:6]), ordinal=3),
            _hit("a", s[3], " ".join(s[1:6]), ordinal=3)]
    merged, count = merge_windows(hits)
    assert count == 1 and len(merged) == 2
    assert merged[0].chunk.metadata.window == " ".join(s)  # union, in document order, each sentence once
    assert merged[1].chunk.metadata.doc_id == "b"  # another document never merges


def test_compression_fits_the_budget_with_the_model_tokenizer(embedder, llm):
    generator = llm
    compressor = ContextCompressor(embedder, generator.count_tokens)
    filler = [f"El edificio {i} tiene un aparcamiento con {i + 10} plazas para bicicletas." for i in range(12)]
    hit_sentence = "La dosis máxima de paracetamol en adultos es de 4 g al día."
    window = " ".join(filler[:6] + [hit_sentence] + filler[6:])
    table = ("| Edad | Dosis |\n|---|---|\n| Adultos | 1 g cada 6 h |\n| Niños | 15 mg/kg cada 6 h |\n"
             + "\n".join(f"| Grupo {i} | {i} mg |" for i in range(10)))
    hits = [_hit("prospecto", hit_sentence, window), _hit("tabla", table, kind=ElementType.TABLE)]
    question = "¿Cuál es la dosis máxima de paracetamol en adultos?"
    _, untouched = compressor.compress(question, hits, budget=10_000)
    assert untouched.tokens_after == untouched.tokens_before and not untouched.dropped_units
    budget = untouched.tokens_before // 2
    kept, report = compressor.compress(question, hits, budget=budget)
    assert report.tokens_after <= budget < report.tokens_before
    text = kept[0].chunk.context_text
    assert hit_sentence in text and len(text) < len(window)
    assert all(f in window for f in report.dropped_units if "|" not in f)
    table_lines = kept[1].chunk.context_text.splitlines()
    assert table_lines[:2] == ["| Edad | Dosis |", "|---|---|"]  # header kept
    assert all(line.startswith("|") and line.endswith("|") for line in table_lines)  # whole rows only
    # Token counts from what a BPE tokenizer must do, not from our formula: no BOS counted for empty text, a
    # four-letter word is 1-4 tokens, and a repeated word costs the same each time.
    assert generator.count_tokens("") == 0
    assert 1 <= generator.count_tokens("hola") <= 4
    assert generator.count_tokens(" hola" * 50) == 50 * generator.count_tokens(" hola")


def test_generation_trace_reports_compression_and_prompt_tokens(demo_settings, embedder):
    generator = ScriptedGenerator("Error E7 means the C wire is not connected [1].")
    settings = demo_settings.with_overrides(context_tokens=120)
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, generator)
    answer = pipeline.answer("What does error E7 mean on the thermostat?", QueryOptions(answer_mode="generative"))
    compression = answer.trace.details["compression"]
    assert compression["budget"] == 120 and compression["tokens_after"] <= 120 < compression["tokens_before"]
    assert str(answer.trace.details["prompt_tokens"]).endswith("(estimated)")  # scripted model: no tokenizer
    assert "compression" in answer.trace.timings_ms


def test_dense_ranking_counts_less_in_languages_the_dense_model_lacks(demo_settings, dense):
    from rag.retriever import HybridRetriever

    # A dense model declared English-only (as all-MiniLM-L6-v2 is); sentence rankings only, to see the weights.
    settings = demo_settings.with_overrides(dense_languages=["en"], window_weight=0.0)
    retriever = HybridRetriever.from_settings(DocumentIndex.from_settings(settings), dense, settings)
    assert retriever.fusion_for("en").weights.get("dense", 1.0) == 1.0
    assert retriever.fusion_for("es").weights["dense"] == settings.dense_weight_other_languages == 0.0
    hits = retriever.retrieve("¿Cuántos días se puede teletrabajar?", "es").hits
    bm25_order = [h.chunk.id for h in sorted((h for h in hits if "bm25" in h.ranks), key=lambda h: h.ranks["bm25"])]
    assert [h.chunk.id for h in hits[:len(bm25_order)]] == bm25_order
    dense_only = [h for h in hits if "bm25" not in h.ranks]
    assert [h.ranks["dense"] for h in dense_only] == sorted(h.ranks["dense"] for h in dense_only)
    alone = retriever.retrieve("¿Cuántos días se puede teletrabajar?", "es", mode="dense").hits
    assert [h.ranks["dense"] for h in alone] == list(range(1, len(alone) + 1))  # dense alone keeps its order


def test_llm_expansions_run_on_the_embedded_gguf(llm):
    question = "What does error E7 mean on the thermostat?"
    expanded = QueryExpander(llm).expand(question, "en", ("multi-query", "hyde"))
    assert expanded[0] == ExpandedQuery(question, "original")
    paraphrases = [e.text for e in expanded if e.kind == "paraphrase"]
    # The real model's reply parses into 1-3 paraphrases: whole lines, no list markers, not the question.
    assert 1 <= len(paraphrases) <= 3, expanded
    assert all(len(p.split()) >= 3 and p[0] not in "-*•" and p.lower() != question.lower() for p in paraphrases)
    hyde = [e for e in expanded if e.kind == "hyde"]
    assert len(hyde) == 1 and hyde[0].dense_only and len(hyde[0].text.split()) >= 5
    assert unproductive_expansions(("multi-query", "hyde"), expanded) == []


def test_unusable_llm_expansions_are_reported_in_the_trace(demo_settings, embedder):
    generator = ScriptedGenerator("1.\n- ok\n\nWhat does error E7 mean on the thermostat?", "")
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, generator)
    answer = pipeline.answer("What does error E7 mean on the thermostat?",
                             QueryOptions(answer_mode="extractive", expansion=("multi-query", "hyde")))
    assert answer.trace.details["expansions"] == []  # fragments and the question itself are no paraphrases
    assert answer.trace.notes == [
        "multi-query expansion: the model wrote nothing usable; searched with the question alone",
        "hyde expansion: the model wrote nothing usable; searched with the question alone"]
    assert answer.citations[0].source == "thermolink_t200_manual.pdf"  # the question alone still answers


@pytest.mark.parametrize(("question", "asks"), [
    ("¿Cuántos senadores se eligen en cada provincia?", True), ("¿A qué edad son mayores de edad?", True),
    ("How long is the warranty?", True), ("¿Cuál es la capital del Estado?", False),
])
def test_quantity_questions_need_a_quantity_in_the_evidence(question, asks, embedder):
    from rag.grounding import Grounder, asks_quantity, states_quantity

    assert asks_quantity(question) is asks
    assert states_quantity("En cada provincia se elegirán cuatro Senadores.") and states_quantity("será de un mes")
    assert not states_quantity("La ley regulará un estatuto de los trabajadores.")
    hits = [_hit("ley", "La ley regulará un estatuto de los trabajadores.")]
    found = Grounder(embedder).extract("¿Cuántos días de vacaciones tiene un trabajador según su estatuto?",
                                       hits, "es")
    assert found[0][1] == 0.0  # on topic, but it states no number: it cannot answer "¿cuántos?"


def test_query_time_embeddings_are_cached_and_equal_to_fresh_ones(embedder):
    from rag.embedder import CachedEmbedder

    class Counting:
        model_id = embedder.model_id

        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed(self, texts):
            self.seen.extend(texts)
            return embedder.embed(texts)

    inner = Counting()
    cached = CachedEmbedder(inner, size=2)
    texts = ["La dosis máxima es 4 g al día.", "Error E7: falta el cable C.", "La dosis máxima es 4 g al día."]
    first = cached.embed(texts)
    assert inner.seen == texts[:2]  # a repeated text is embedded once
    assert np.allclose(first, embedder.embed(texts), atol=1e-5)
    assert np.allclose(cached.embed(texts[:1]), first[:1]) and inner.seen == texts[:2]  # served from the cache
    cached.embed(["Tercera frase."])  # over the size: the least recently used text leaves
    cached.embed(texts[1:2])
    assert inner.seen == [*texts[:2], "Tercera frase.", texts[1]]
    assert cached.model_id == embedder.model_id and cached.embed([]).shape == (0, 384)
