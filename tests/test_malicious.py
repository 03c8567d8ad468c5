"""Files built to hurt the parser are refused with a reason, one at a time, and nothing else is lost:
an Office zip bomb, XML entity expansion in a DOCX, a PDF claiming 100,000 pages, a page-tree loop."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from ingest.errors import CORRUPT, TOO_LARGE, UNSAFE, IngestError
from ingest.office import UnstructuredParser
from ingest.pdf import PdfParser
from ingest.pipeline import FolderIngestor
from ingest.safety import check_office_archive
from rag.settings import Settings
from tests.conftest import DATA

DOCX = DATA / "clinic_visitor_faq.docx"
LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"".join(b"&lol%d;" % (i - 1) if i > 1 else b"&lol;"
                                                               for _ in range(10))) for i in range(1, 10))
          + b"]>\n")


def _rewritten_docx(replace: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(DOCX) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, replace.get(item.filename, source.read(item.filename)))
    return out.getvalue()


def zip_bomb() -> bytes:
    """A DOCX whose document.xml inflates 2,000 times (64 MB from about 64 KB)."""
    return _rewritten_docx({"word/document.xml": b"<w:document>" + b" " * (64 * 1024 * 1024) + b"</w:document>"})


def billion_laughs() -> bytes:
    with zipfile.ZipFile(DOCX) as source:
        document = source.read("word/document.xml")
    body = document.split(b"?>", 1)[1] if document.startswith(b"<?xml") else document
    return _rewritten_docx({"word/document.xml": LAUGHS + body.replace(b"<w:t>", b"<w:t>&lol9;", 1)})


def _pdf(objects: list[bytes]) -> bytes:
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def hundred_thousand_pages() -> bytes:
    kids = b" ".join([b"3 0 R"] * 100_000)
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [" + kids + b"] /Count 100000 >>",
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"])


def page_tree_loop() -> bytes:
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"])


def test_office_bombs_are_refused_before_parsing(tmp_path: Path):
    bomb, laughs = zip_bomb(), billion_laughs()
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ValueError, match="zip bomb"):
        check_office_archive("bomb.docx", bomb)
    with pytest.raises(ValueError, match="entities"):
        check_office_archive("laughs.docx", laughs)
    check_office_archive("real.docx", DOCX.read_bytes())  # a real document passes
    for name, data in (("bomb.docx", bomb), ("laughs.docx", laughs)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(IngestError) as err:
            UnstructuredParser().parse(tmp_path / name, name)
        assert err.value.reason == UNSAFE


def test_pdfs_that_never_end_are_refused_quickly(tmp_path: Path):
    for name, data, reason in (("huge.pdf", hundred_thousand_pages(), TOO_LARGE),
                               ("loop.pdf", page_tree_loop(), CORRUPT)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(IngestError) as err:
            PdfParser().parse(tmp_path / name, name)
        assert err.value.reason == reason


def test_a_folder_with_malicious_files_ingests_everything_else(tmp_path: Path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bomb.docx").write_bytes(zip_bomb())
    (docs / "laughs.docx").write_bytes(billion_laughs())
    (docs / "huge.pdf").write_bytes(hundred_thousand_pages())
    (docs / "loop.pdf").write_bytes(page_tree_loop())
    shutil.copy(DATA / "politica_teletrabajo.md", docs)
    report = FolderIngestor(Settings(index_dir=tmp_path / "index"), embedder=embedder).run(docs)
    assert report.ingested == ["politica_teletrabajo.md"]
    reasons = {f.source: (f.reason, f.detail) for f in report.failed}
    assert reasons["bomb.docx"][0] == UNSAFE and "zip bomb" in reasons["bomb.docx"][1]
    assert reasons["laughs.docx"][0] == UNSAFE and "entities" in reasons["laughs.docx"][1]
    assert reasons["huge.pdf"] == (TOO_LARGE, "100000 pages; at most 10000 are read (RAG_MAX_PAGES)")
    assert reasons["loop.pdf"][0] == CORRUPT and "cyclic" in reasons["loop.pdf"][1]


def test_malicious_uploads_are_4xx(tmp_path: Path, embedder):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from rag.index import DocumentIndex
    from rag.pipeline import QueryPipeline
    from tests.conftest import ScriptedGenerator

    settings = Settings(index_dir=tmp_path / "index", max_upload_mb=20)
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    client = TestClient(create_app(settings, pipeline=pipeline), raise_server_exceptions=False)
    for name, data, status, words in (("bomb.docx", zip_bomb(), 422, "zip bomb"),
                                      ("laughs.docx", billion_laughs(), 422, "entities"),
                                      ("huge.pdf", hundred_thousand_pages(), 422, "100000 pages"),
                                      ("loop.pdf", page_tree_loop(), 422, "cyclic")):
        response = client.post("/v1/ingest/file", files={"file": (name, data)})
        assert response.status_code == status and words in response.json()["detail"], (name, response.text)
    assert client.get("/v1/documents").json()["data"] == []
    assert not list((tmp_path / "index" / "uploads").glob("*"))  # nothing of a refused upload is kept
