"""Folder ingestion with the real embedder, Chroma and BM25: incremental, idempotent, repairable."""

import json
from pathlib import Path

from ingest.manifest import Manifest
from ingest.pipeline import FolderIngestor
from rag.settings import Settings
from rag.types import ElementType


def _ingestor(index_dir: Path, embedder) -> FolderIngestor:
    return FolderIngestor(Settings(index_dir=index_dir), embedder=embedder)


def _state(ingestor: FolderIngestor) -> tuple[list[str], list[str]]:
    return sorted(ingestor.index.store.ids()), sorted(ingestor.index.bm25.ids())


def test_ingest_rerun_change_remove(tmp_path, demo_copy, embedder):
    index_dir = tmp_path / "index"
    first = _ingestor(index_dir, embedder).run(demo_copy)
    assert sorted(first.ingested) == ["clinic_visitor_faq.docx", "politica_teletrabajo.md",
                                      "prospecto_paracetamol.pdf", "thermolink_t200_manual.pdf"]
    assert first.skipped == ["qa.jsonl"] and not first.failed
    ingestor = _ingestor(index_dir, embedder)
    chroma_ids, bm25_ids = _state(ingestor)
    assert chroma_ids == bm25_ids and len(chroma_ids) == first.chunks

    # Unchanged folder: nothing parsed or embedded, same ids.
    again = ingestor.run(demo_copy)
    assert again.ingested == [] and len(again.unchanged) == 4
    assert _state(_ingestor(index_dir, embedder)) == (chroma_ids, bm25_ids)

    # A changed file's chunks are replaced; a removed file's chunks are deleted.
    policy = demo_copy / "politica_teletrabajo.md"
    policy.write_text(policy.read_text(encoding="utf-8").replace("tres días", "cuatro días"), encoding="utf-8")
    (demo_copy / "clinic_visitor_faq.docx").unlink()
    changed = _ingestor(index_dir, embedder).run(demo_copy)
    assert changed.ingested == ["politica_teletrabajo.md"] and changed.removed == ["clinic_visitor_faq.docx"]
    ingestor = _ingestor(index_dir, embedder)
    chunks = ingestor.index.store.get(ingestor.index.store.ids())
    sources = {c.metadata.source for c in chunks.values()}
    assert "clinic_visitor_faq.docx" not in sources
    policy_text = " ".join(c.text for c in chunks.values() if c.metadata.source == "politica_teletrabajo.md")
    assert "cuatro días" in policy_text and "tres días" not in policy_text
    assert _state(ingestor)[0] == _state(ingestor)[1]


def test_chunk_metadata_pages_and_tables(demo_settings):
    ingestor = FolderIngestor(demo_settings)
    chunks = ingestor.index.store.get(ingestor.index.store.ids()).values()
    leaflet = [c for c in chunks if c.metadata.source == "prospecto_paracetamol.pdf"]
    tables = [c for c in leaflet if c.metadata.element_type == ElementType.TABLE]
    assert tables and all(c.metadata.page == 2 and c.text.startswith("| Grupo de edad |") for c in tables)
    cells = json.loads(tables[0].metadata.table_json)
    assert cells["header"] == ["Grupo de edad", "Vía oral o rectal (paracetamol)", "Vía intravenosa (propacetamol)"]
    assert ["Menores de 3 años", "Solo por indicación del pediatra", "No recomendado"] in cells["rows"]
    assert all(c.metadata.doc_hash and c.metadata.file_mtime and c.metadata.ingested_at for c in leaflet)
    assert json.loads(leaflet[0].metadata.chunker_params) == {"window": 2, "max_tokens": 200}
    assert {c.metadata.page for c in leaflet} == {1, 2}
    assert all(c.metadata.language == "es" and c.metadata.chunker == "sentence-window" for c in leaflet)
    assert all(c.metadata.window and c.text in c.metadata.window for c in leaflet
               if c.metadata.element_type == ElementType.TEXT)


def test_broken_file_is_reported_and_the_rest_ingested(tmp_path, demo_copy, embedder):
    (demo_copy / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (demo_copy / "empty.txt").write_text("")
    report = _ingestor(tmp_path / "index", embedder).run(demo_copy)
    assert len(report.ingested) == 4
    reasons = {f.source: f.reason for f in report.failed}
    assert set(reasons) == {"broken.pdf", "empty.txt"}
    assert "broken.pdf" in report.summary()


def test_a_lost_manifest_entry_is_rebuilt_from_the_chunks(tmp_path, demo_copy, embedder):
    """Chunks that no manifest entry owns and no journal names were once taken for leftovers of a killed run and
    deleted (issue 44): now the entry is rebuilt from the chunks' metadata, and nothing is read again."""
    index_dir = tmp_path / "index"
    _ingestor(index_dir, embedder).run(demo_copy)
    expected = _state(_ingestor(index_dir, embedder))
    manifest = Manifest(index_dir / "manifest.json")
    key = next(k for k in manifest.files if k.endswith("prospecto_paracetamol.pdf"))
    lost = manifest.pop(key)
    manifest.save()
    report = _ingestor(index_dir, embedder).run(demo_copy)
    assert report.repair.rebuilt_entries == ["prospecto_paracetamol.pdf"] and report.repaired_chunks == 0
    assert report.ingested == [] and "prospecto_paracetamol.pdf" in report.unchanged
    assert "1 manifest entries rebuilt from the chunks' metadata: prospecto_paracetamol.pdf" in report.summary()
    assert Manifest(index_dir / "manifest.json").get(key) == lost  # the same entry, found again
    assert _state(_ingestor(index_dir, embedder)) == expected


def test_an_older_index_whose_manifest_is_lost_keeps_its_document_ids(tmp_path, demo_copy, embedder, monkeypatch):
    """Chunks made before they carried their file's path (ids derived from it, ``sha1(path)[:12]``): a lost
    manifest's entries are rebuilt under ``unknown:<id>``, and the next ingest of the folder takes them over
    with the same ids (nothing embedded twice, no second copy of a document)."""
    import hashlib
    from dataclasses import replace

    from ingest.manifest import FileEntry

    index_dir = tmp_path / "index"
    made = FolderIngestor._chunks
    with monkeypatch.context() as old_code:
        old_code.setattr(FolderIngestor, "_previous", lambda self, key: FileEntry(
            "", hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], "", ""))
        old_code.setattr(FolderIngestor, "_chunks", lambda self, *args: [
            replace(c, metadata=replace(c.metadata, file_path=None, config_key=None)) for c in made(self, *args)])
        _ingestor(index_dir, embedder).run(demo_copy)
    before = _state(_ingestor(index_dir, embedder))
    (index_dir / "manifest.json").unlink()
    ingestor = _ingestor(index_dir, embedder)
    assert len(ingestor.repair().rebuilt_entries) == 4
    assert all(key.startswith("unknown:") for key in ingestor.manifest.keys())
    again = _ingestor(index_dir, embedder).run(demo_copy)
    assert len(again.ingested) == 4 and not again.failed  # their ingestion config was not recorded: read again
    keys = Manifest(index_dir / "manifest.json").files
    assert sorted(Path(k).name for k in keys) == sorted(again.ingested)
    assert all(e.doc_id == hashlib.sha1(k.encode("utf-8")).hexdigest()[:12] for k, e in keys.items())
    assert _state(_ingestor(index_dir, embedder)) == before


def test_dry_run_changes_nothing(tmp_path, demo_copy, embedder):
    report = _ingestor(tmp_path / "index", embedder).run(demo_copy, dry_run=True)
    assert len(report.ingested) == 4
    assert _ingestor(tmp_path / "index", embedder).index.store.count() == 0


def test_single_file_ingest_leaves_the_rest_alone(tmp_path, demo_copy, embedder):
    index_dir = tmp_path / "index"
    _ingestor(index_dir, embedder).run(demo_copy)
    before = _state(_ingestor(index_dir, embedder))
    report = _ingestor(index_dir, embedder).run(demo_copy / "politica_teletrabajo.md")
    assert report.removed == [] and report.unchanged == ["politica_teletrabajo.md"]
    assert _state(_ingestor(index_dir, embedder)) == before


def test_chunk_size_never_exceeds_what_the_embedder_embeds(tmp_path, embedder):
    from transformers import AutoTokenizer

    from rag.models import default_embedder_path

    folder = default_embedder_path()
    # Independent of our code: the model's own config and tokenizer (special tokens included).
    limit = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)

    def sentence_of(tokens: int) -> str:  # "house" is one word piece, "." another
        text = " ".join(["house"] * (tokens - 1)) + "."
        assert len(tokenizer(text)["input_ids"]) == tokens + 2  # [CLS] ... [SEP]
        return text

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fits.txt").write_text(sentence_of(limit - 2), encoding="utf-8")  # exactly what the model embeds
    (docs / "over.txt").write_text(sentence_of(limit - 1), encoding="utf-8")  # one word piece too many
    settings = Settings(index_dir=tmp_path / "index", chunk_max_tokens=512, chunker="fixed")
    ingestor = FolderIngestor(settings, embedder=embedder)
    assert not ingestor.run(docs).failed
    lengths: dict[str, list[int]] = {"fits.txt": [], "over.txt": []}
    for chunk in ingestor.index.store.get(ingestor.index.store.ids()).values():
        lengths[chunk.metadata.source].append(len(tokenizer(chunk.text)["input_ids"]))
    assert lengths["fits.txt"] == [limit]  # kept whole: nothing is cut below the limit either
    assert len(lengths["over.txt"]) > 1 and max(lengths["over.txt"]) <= limit  # split, never cut by the model


def test_queries_during_a_change_see_a_document_before_or_after_it(tmp_path, embedder, dense):
    import threading

    from rag.retriever import HybridRetriever

    docs = tmp_path / "docs"
    docs.mkdir()
    note = docs / "zorglub.md"
    versions = {"rojo": "El zorglub del almacén es de color rojo y pesa tres kilos.",
                "azul": "El zorglub del almacén es de color azul y pesa cinco kilos."}
    note.write_text(versions["rojo"], encoding="utf-8")
    (docs / "otro.md").write_text("La oficina abre a las ocho de la mañana.", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index")
    ingestor = FolderIngestor(settings, embedder=embedder)
    ingestor.run(docs)
    retriever = HybridRetriever.from_settings(ingestor.index, dense, settings)
    seen: list[set[str]] = []
    done = threading.Event()

    def ask() -> None:
        while not done.is_set():
            hits = retriever.retrieve("¿De qué color es el zorglub?", "es", top_k=10).hits
            seen.append({w for h in hits if h.chunk.metadata.source == "zorglub.md"
                         for w in ("rojo", "azul") if w in h.chunk.text})

    reader = threading.Thread(target=ask)
    reader.start()
    try:
        for n in range(12):  # each change deletes the old version's chunk and adds the new one
            note.write_text(versions["azul" if n % 2 == 0 else "rojo"], encoding="utf-8")
            assert ingestor.run(docs).ingested == ["zorglub.md"]
    finally:
        done.set()
        reader.join()
    assert len(seen) >= 12
    # Every query found the note, in exactly one version: never between the delete and the add.
    assert all(versions_seen in ({"rojo"}, {"azul"}) for versions_seen in seen), seen


class RecordingEmbedder:
    """The real dense embedder, recording every text it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.texts: list[str] = []

    def embed(self, texts: list[str]):
        self.texts.extend(texts)
        return self.inner.embed(texts)


def test_each_distinct_text_is_embedded_once_per_run(tmp_path, embedder, dense):
    import numpy as np

    notice = ("Este documento es propiedad del Servicio de Salud. "
              "Queda prohibida su reproducción total o parcial sin autorización.")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "turnos.md").write_text(f"El turno de noche empieza a las 22:00. {notice}", encoding="utf-8")
    (docs / "visitas.md").write_text(f"{notice} Las visitas terminan a las 20:00.", encoding="utf-8")
    recording = RecordingEmbedder(dense)
    ingestor = FolderIngestor(Settings(index_dir=tmp_path / "index"), embedder=embedder, dense=recording)
    report = ingestor.run(docs)
    assert not report.failed and len(report.ingested) == 2
    # Each distinct text once, though the notice's sentences are chunks of both files.
    assert len(recording.texts) == len(set(recording.texts)) == report.embedded_texts
    assert report.requested_texts >= report.chunks > report.embedded_texts
    store = ingestor.index.store
    chunks = store.get(store.ids())
    by_text: dict[str, list[str]] = {}
    for cid, chunk in chunks.items():
        by_text.setdefault(chunk.text, []).append(cid)
    repeated = {text: ids for text, ids in by_text.items() if len(ids) > 1}
    assert repeated and all(text in notice for text in repeated)
    for text, ids in repeated.items():
        assert {chunks[cid].metadata.source for cid in ids} == {"turnos.md", "visitas.md"}
        vectors = store.vectors(ids)
        assert np.array_equal(vectors[ids[0]], vectors[ids[1]])  # one vector, copied to both places
        # The model's own vector, up to batch noise: E5's engine moves a text's vector with its batch-mates
        # (measured: up to 0.01 per dimension, cosine > 0.997 to the text embedded alone).
        assert float(vectors[ids[0]] @ dense.embed([text])[0]) > 0.99


def test_progress_counts_files_and_pages(tmp_path, embedder):
    import shutil

    from tests.conftest import DATA

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(DATA / "prospecto_paracetamol.pdf", docs)  # 2 pages, counted before it is read
    shutil.copy(DATA / "politica_teletrabajo.md", docs)  # pages known once read
    seen = []
    report = _ingestor(tmp_path / "index", embedder).run(docs, on_progress=seen.append)
    assert not report.failed
    assert [p.files_done for p in seen] == [0, 1, 2] and {p.files_total for p in seen} == {2}
    assert [p.current for p in seen] == ["politica_teletrabajo.md", "prospecto_paracetamol.pdf", None]
    assert seen[0].pages_total == 2 and seen[0].files_uncounted == 1
    assert [p.pages_done for p in seen] == sorted(p.pages_done for p in seen)
    assert all(p.pages_done <= p.pages_total for p in seen)
    final = seen[-1]
    assert final.pages_done == final.pages_total >= 2 and final.eta_seconds == 0.0
