"""Non-PDF formats through unstructured, offline, tables kept as tables."""

from pathlib import Path

import pytest

from ingest.errors import EMPTY, PASSWORD_REQUIRED, IngestError
from ingest.office import UnstructuredParser
from rag.types import ElementType
from tests.conftest import DATA


def test_markdown_and_docx_from_data():
    md = UnstructuredParser().parse(DATA / "politica_teletrabajo.md", "politica_teletrabajo.md")
    assert any(e.element_type == ElementType.TITLE and e.text.startswith("Artículo 2") for e in md)
    assert any("tres días por semana" in e.text and e.section.startswith("Artículo 2") for e in md)
    docx = UnstructuredParser().parse(DATA / "clinic_visitor_faq.docx", "faq.docx")
    assert any("10:00 to 20:00" in e.text for e in docx)


@pytest.mark.parametrize(("name", "header"), [
    # the CSV's first line is a caption: it becomes the table's title, not its header row
    ("csv/stanley-cups-utf-16.csv", "Stanley Cups\n| Team | Location | Stanley Cups |"),
    ("xlsx/stanley-cups.xlsx", "| Team | Location | Stanley Cups |"),
    ("docx/fake_table.docx", "| Header Col 1 | Header Col 2 |"),
    ("pptx/fake-power-point-table.pptx", "|"),
])
def test_tables_in_other_formats_stay_tables(shared: Path, name, header):
    elements = UnstructuredParser().parse(shared / "corpus" / "other_formats" / name, name)
    tables = [e for e in elements if e.element_type == ElementType.TABLE]
    assert tables and tables[0].text.startswith(header) and "|---|" in tables[0].text


@pytest.mark.parametrize(("name", "reason"), [
    ("txt/fake-text-all-whitespace.txt", EMPTY), ("xlsx/password_protected.xlsx", PASSWORD_REQUIRED),
])
def test_unusable_files_fail_with_a_reason(shared: Path, name, reason):
    with pytest.raises(IngestError) as err:
        UnstructuredParser().parse(shared / "corpus" / "other_formats" / name, name)
    assert err.value.reason == reason and name in str(err.value)


def test_ragged_csv_is_kept_as_text(shared: Path):
    elements = UnstructuredParser().parse(shared / "corpus" / "other_formats" / "csv" / "single-column.csv", "s.csv")
    assert "Lorem" in elements[0].text


HTML = """<!DOCTYPE html><html lang="es"><head><meta charset="utf-8"><title>Horario</title>
<script>var telemetria = "no indexar este script";</script><style>p { color: red }</style></head>
<body><h1>Horario de la farmacia</h1>
<p>La farmacia abre de lunes a viernes de 9:00 a 21:00 y los sábados de 10:00 a 14:00.</p>
<table><tr><th>Servicio</th><th>Precio</th></tr><tr><td>Toma de tensión</td><td>2 euros</td></tr>
<tr><td>Análisis de glucosa</td><td>5 euros</td></tr></table></body></html>"""

EML = """From: Recepción <recepcion@clinica.example>
To: equipo@clinica.example
Subject: =?utf-8?q?Cambio_de_horario_de_extracciones?=
Date: Mon, 23 Nov 2026 09:00:00 +0100
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Hola a todos:

A partir del lunes, las extracciones de sangre se har=C3=A1n de 8:00 a 10:30 en la sala 4.
Los pacientes deben venir en ayunas.
"""


def test_html_and_eml_are_ingested_and_answer_questions(tmp_path, embedder):
    from ingest.pipeline import FolderIngestor
    from rag.index import DocumentIndex
    from rag.pipeline import QueryOptions, QueryPipeline
    from rag.settings import Settings
    from tests.conftest import ScriptedGenerator

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "horario.html").write_text(HTML, encoding="utf-8")
    (docs / "aviso.eml").write_text(EML, encoding="utf-8")
    html = UnstructuredParser().parse(docs / "horario.html", "horario.html")
    assert any(e.element_type == ElementType.TITLE and e.text == "Horario de la farmacia" for e in html)
    tables = [e for e in html if e.element_type == ElementType.TABLE]
    assert tables and tables[0].text.splitlines()[0] == "| Servicio | Precio |"
    assert "| Análisis de glucosa | 5 euros |" in tables[0].text.splitlines()
    assert not any("telemetria" in e.text or "color: red" in e.text for e in html)  # no script or style
    eml = UnstructuredParser().parse(docs / "aviso.eml", "aviso.eml")
    assert any("se harán de 8:00 a 10:30 en la sala 4" in e.text for e in eml)  # quoted-printable decoded

    settings = Settings(index_dir=tmp_path / "index")
    report = FolderIngestor(settings, embedder=embedder).run(docs)
    assert sorted(report.ingested) == ["aviso.eml", "horario.html"] and not report.failed
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    quotes = QueryOptions(answer_mode="extractive")
    blood = pipeline.answer("¿A qué hora son las extracciones de sangre?", quotes)
    assert not blood.abstained and blood.citations[0].source == "aviso.eml" and "10:30" in blood.text
    glucose = pipeline.answer("¿Cuánto cuesta el análisis de glucosa?", quotes)
    assert not glucose.abstained and glucose.citations[0].source == "horario.html" and "5 euros" in glucose.text
