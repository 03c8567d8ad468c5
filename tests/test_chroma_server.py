"""Ingest into a Chroma server (``chroma run`` on loopback) instead of the embedded store."""



from ingest.pipeline import FolderIngestor
from rag.index import DocumentIndex
from rag.retriever import HybridRetriever
from rag.settings import Settings
from tests.conftest import DATA


def test_ingest_and_retrieve_through_a_chroma_server(tmp_path, chroma_url, embedder, dense):
    settings = Settings(index_dir=tmp_path / "index", chroma_url=chroma_url)
    report = FolderIngestor(settings, embedder=embedder).run(DATA)
    assert len(report.ingested) == 4 and not report.failed
    assert not (tmp_path / "index" / "chroma").exists()  # nothing went to the embedded store
    index = DocumentIndex.from_settings(settings)
    assert index.store.count() == report.chunks
    assert index.windows.count() == report.chunks  # the window units live in the server too
    retrieved = HybridRetriever(index, dense).retrieve("What does error E7 mean?", "en", top_k=3)
    assert "dense_off" not in retrieved.details and {"dense", "dense_window"} <= set(retrieved.details)
    assert retrieved.hits[0].chunk.metadata.source == "thermolink_t200_manual.pdf"
    again = FolderIngestor(settings, embedder=embedder).run(DATA)
    assert again.ingested == [] and index.store.count() == report.chunks
