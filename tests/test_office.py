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
    ("csv/stanley-cups-utf-16.csv", "| Stanley Cups |"),
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
