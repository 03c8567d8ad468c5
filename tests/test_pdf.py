from pathlib import Path

import pytest

from ingest.errors import CORRUPT, EMPTY, NO_TEXT_LAYER, PASSWORD_REQUIRED, IngestError
from ingest.pdf import PdfParser
from rag.types import ElementType
from tests.conftest import DATA


def test_leaflet_table_is_a_table_with_header_and_rows():
    elements = PdfParser().parse(DATA / "prospecto_paracetamol.pdf", "prospecto_paracetamol.pdf")
    tables = [e for e in elements if e.element_type == ElementType.TABLE]
    assert len(tables) == 1
    table = tables[0]
    assert table.page == 2
    lines = table.text.splitlines()
    assert lines[0] == "| Grupo de edad | Vía oral o rectal (paracetamol) | Vía intravenosa (propacetamol) |"
    assert "| Adultos | 500-1000 mg cada 6-8 h, máximo 4 g al día | 1-2 g cada 4-6 h, máximo 8 g al día |" in lines
    page2_text = next(e.text for e in elements if e.page == 2 and e.element_type == ElementType.TEXT)
    assert "máximo 60 mg/kg" not in page2_text  # table words are not indexed again as loose text
    assert "Deje pasar al menos 4 horas" in page2_text
    assert {e.page for e in elements} == {1, 2}


def test_zero_byte_and_garbage_pdfs_fail_with_a_reason(tmp_path):
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(IngestError) as err:
        PdfParser().parse(empty, "empty.pdf")
    assert err.value.reason == EMPTY and "empty.pdf" in str(err.value)
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"this is not a pdf at all")
    with pytest.raises(IngestError) as err:
        PdfParser().parse(garbage, "garbage.pdf")
    assert err.value.reason == CORRUPT


def test_encrypted_pdfs(shared: Path):
    hard = shared / "corpus" / "pdf_hard"
    opened = PdfParser().parse(hard / "encrypted_rc4-40_r2_empty_user_password.pdf", "x.pdf")
    assert any(e.text.strip() for e in opened)
    with pytest.raises(IngestError) as err:
        PdfParser().parse(hard / "encrypted_aes128_r4_user-asdfzxcv.pdf", "aes.pdf")
    assert err.value.reason == PASSWORD_REQUIRED
    unlocked = PdfParser(passwords=["wrong", "asdfzxcv"]).parse(hard / "encrypted_aes128_r4_user-asdfzxcv.pdf", "aes.pdf")
    assert any(e.text.strip() for e in unlocked)


def test_scanned_pdf_reports_no_text_layer(shared: Path):
    with pytest.raises(IngestError) as err:
        PdfParser().parse(shared / "corpus" / "pdf_hard" / "scanned_image_only_loremipsum.pdf", "scan.pdf")
    assert err.value.reason == NO_TEXT_LAYER


def test_statute_running_footers_removed_and_sections_kept(shared: Path):
    pdf = shared / "corpus" / "pdf_text" / "es_BOE-A-1978-31229_constitucion_espanola.pdf"
    elements = PdfParser().parse(pdf, "ce.pdf")
    text = "\n".join(e.text for e in elements)
    assert "BOLETÍN OFICIAL DEL ESTADO" not in text and "LEGISLACIÓN CONSOLIDADA" not in text
    article = next(e for e in elements if e.element_type == ElementType.TEXT and "derecho al honor" in e.text)
    assert article.section.endswith("TÍTULO I > CAPÍTULO SEGUNDO > Sección 1.ª De los derechos fundamentales y "
                                    "de las libertades públicas > Artículo 18.")
    assert article.page == 6


def test_unruled_table_found_and_prose_not_sliced_into_tables(shared: Path):
    tables = PdfParser().tables(shared / "corpus" / "pdf_tables" / "camelot_m27_bus_listing.pdf", "m27.pdf")
    assert tables and max(len(t.rows) for t in tables[1]) >= 20
    statute = shared / "corpus" / "pdf_text" / "es_BOE-A-2015-10565_ley_39-2015_procedimiento_administrativo.pdf"
    assert not any(e.element_type == ElementType.TABLE for e in PdfParser().parse(statute, "ley.pdf"))


def test_contents_pages_are_not_tables(shared: Path):
    """Leader dots and page numbers ("Chemotherapy ....... 39") look like a column of figures."""
    booklet = shared / "corpus" / "pdf_text" / "en_cancer_guide_booklet_76p.pdf"
    tables = [e for e in PdfParser().parse(booklet, "booklet.pdf") if e.element_type == ElementType.TABLE]
    assert tables and not any("......" in t.text for t in tables)
    assert {t.page for t in tables} >= {18, 22, 23}  # the real ones: receptor status, staging, grading


def test_unruled_table_cells_hold_whole_words(shared: Path):
    tables = PdfParser().tables(shared / "corpus" / "pdf_tables" / "camelot_12s0324_us_census.pdf", "census.pdf")
    cells = {c for t in tables[1] for row in (t.header, *t.rows) for c in row}
    words = {w for c in cells for w in c.split()}
    # pdfplumber alone cut words at a guessed column edge: "Fema" | "le", "Arrest" | "s by".
    assert {"Female", "Male", "Arrests", "Offense"} <= words and not {"Fema", "le", "Arrest"} & words


def test_ruled_table_cells_match_the_camelot_ground_truth(shared: Path):
    import json

    folder = shared / "corpus" / "pdf_tables"
    expected = json.loads((folder / "camelot_icdar_us-030.expected.json").read_text())["tables"][0]
    table = PdfParser().tables(folder / "camelot_icdar_us-030.pdf", "us-030.pdf")[expected["page"]][0]
    # A two-row header comes out as one row of joined names; each ground-truth cell is one of their parts.
    assert "Percent Fuel Savings › Improved Speed" in table.header
    ours = {" ".join(part.split()) for row in (table.header, *table.rows) for c in row for part in c.split(" › ")}
    wanted = {" ".join(c.split()) for row in expected["rows"] for c in row if c.strip()}
    assert wanted <= ours


def test_password_per_file_from_configuration(shared: Path):
    pdf = shared / "corpus" / "pdf_hard" / "encrypted_libreoffice_openpassword.pdf"
    elements = PdfParser(password_map={pdf.name: "openpassword"}).parse(pdf, "docs/" + pdf.name)
    assert any(e.text.strip() for e in elements)


def test_image_only_pages_are_reported(shared: Path, tmp_path: Path):
    from pypdf import PdfReader, PdfWriter

    hard = shared / "corpus" / "pdf_hard"
    writer = PdfWriter()
    writer.append(str(DATA / "thermolink_t200_manual.pdf"))
    writer.append(str(hard / "scanned_image_only_loremipsum.pdf"))
    mixed = tmp_path / "mixed.pdf"
    writer.write(str(mixed))
    parser = PdfParser()
    pages = len(PdfReader(mixed).pages)
    elements = parser.parse(mixed, "mixed.pdf")
    assert {e.page for e in elements} == {1, 2}
    assert parser.warnings == [f"no text layer on page(s) 3{'-' + str(pages) if pages > 3 else ''} "
                               "(scanned images; OCR is off)"]


def test_two_column_page_reads_in_column_order_without_ligatures_or_hyphens(shared: Path):
    elements = PdfParser().parse(shared / "corpus" / "pdf_hard" / "multicolumn_latex_2col.pdf", "2col.pdf")
    first = " ".join(" ".join(e.text for e in elements if e.page == 1).split())
    # Read row by row across both columns, this sentence would be cut by the right column's text.
    assert "This is a sample document with two columns filled with Lorem Ipsum text." in first
    assert "consectetuer adipiscing elit" in first and "ﬁ" not in first
def _ruled_table(canvas, x: float, y: float, rows: list[list[str]], width: float = 90, height: float = 20,
                 header_height: float = 20, vertical_header: bool = False) -> None:
    """Draws a ruled table with its top-left corner at (x, y); with ``vertical_header`` the header's names
    run up the page, as in election results."""
    heights = [header_height] + [height] * (len(rows) - 1)
    tops = [y - sum(heights[:i]) for i in range(len(rows) + 1)]
    cols = len(rows[0])
    for top in tops:
        canvas.line(x, top, x + cols * width, top)
    for j in range(cols + 1):
        canvas.line(x + j * width, tops[0], x + j * width, tops[-1])
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if i == 0 and vertical_header:
                canvas.saveState()
                canvas.translate(x + j * width + width / 2, tops[1] + 4)
                canvas.rotate(90)
                canvas.drawString(0, 0, cell)
                canvas.restoreState()
            else:
                canvas.drawString(x + j * width + 4, tops[i] - height + 6, cell)


def test_a_table_printed_sideways_is_read_upright(tmp_path: Path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    rows = [["Region", "Clinics", "Beds"], ["Norte", "12", "340"], ["Sur", "7", "215"], ["Este", "9", "188"]]
    path = tmp_path / "sideways.pdf"
    canvas = Canvas(str(path), pagesize=A4)
    canvas.translate(A4[0] - 100, 100)
    canvas.rotate(90)  # the whole table runs up the page, as a landscape table in a portrait document
    _ruled_table(canvas, 0, 0, rows)
    canvas.save()
    tables = PdfParser().tables(path, "sideways.pdf")
    assert [list(t.header) for t in tables[1]] == [["Region", "Clinics", "Beds"]]
    assert [list(r) for r in tables[1][0].rows] == [["Norte", "12", "340"], ["Sur", "7", "215"], ["Este", "9", "188"]]


def test_vertical_column_names_and_row_labels_outside_the_rulings(tmp_path: Path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    path = tmp_path / "votes.pdf"
    canvas = Canvas(str(path), pagesize=A4)
    rows = [["Registered voters", "Ana Ruiz", "Luis Gil"], ["963", "439", "55"], ["923", "393", "40"],
            ["1026", "349", "30"]]
    _ruled_table(canvas, 150, 700, rows, width=40, header_height=110, vertical_header=True)
    for i, town in enumerate(["Alcona", "Caledonia", "Curtis"]):  # the stub column has no rulings
        canvas.drawString(60, 700 - 110 - 20 * i - 14, town)
    canvas.save()
    table = PdfParser().tables(path, "votes.pdf")[1][0]
    assert list(table.header[1:]) == ["Registered voters", "Ana Ruiz", "Luis Gil"]  # not "sretov deretsigeR"
    assert [list(r) for r in table.rows] == [["Alcona", "963", "439", "55"], ["Caledonia", "923", "393", "40"],
                          ["Curtis", "1026", "349", "30"]]


def test_sideways_table_matches_the_camelot_ground_truth(shared: Path):
    import json

    folder = shared / "corpus" / "pdf_tables"
    expected = json.loads((folder / "camelot_anticlockwise_table_1.expected.json").read_text())["tables"][0]
    table = PdfParser().tables(folder / "camelot_anticlockwise_table_1.pdf", "anticlockwise.pdf")[expected["page"]][0]
    ours = {" ".join(part.split()) for row in (table.header, *table.rows) for c in row for part in c.split(" › ")}
    wanted = {" ".join(c.split()) for row in expected["rows"] for c in row if c.strip()}
    assert wanted <= ours  # before: reversed and transposed ("raguS :stluda doolB")
    assert ("Kerala", "5738", "6633", "8864", "8297", "245", "2161", "3195", "1645", "2391") in map(tuple, table.rows)


def test_a_page_whose_font_pypdf_misreads_is_read_with_pdfium(shared: Path):
    pdf = shared / "corpus" / "pdf_tables" / "camelot_anticlockwise_table_1.pdf"
    text = " ".join(e.text for e in PdfParser().parse(pdf, "anticlockwise.pdf") if e.element_type == ElementType.TEXT)
    assert "Rural-Third Repeat Survey" in text  # pypdf: "RuralA(ThirdmRepeatmSurveymD.))"
    assert "Yerala" not in text and "mmmmm" not in text
