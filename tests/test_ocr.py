"""OCR: scanned PDFs and images are read (Tesseract, offline), in reading order, tables as rows, turned
pages upright, garbage text layers replaced; the ingest says what it OCR'd and answers say they rest on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ingest.errors import NO_TEXT_LAYER, IngestError
from ingest.images import ImageParser
from ingest.layout import page_layout, reading_order
from ingest.ocr import TESSERACT_PACKAGES, OcrPage, OcrUnavailable, OcrWord, TesseractEngine, clean_for_ocr
from ingest.ocr_boxes import chunk_ocr_fields
from ingest.pdf import PdfParser
from ingest.pipeline import FolderIngestor
from ingest.scan import PageScanner, ScannedPage, SkippedPage
from ingest.textlayer import text_quality
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from rag.settings import Settings
from tests.conftest import ScriptedGenerator

LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit."


@pytest.fixture(scope="module")
def tesseract() -> TesseractEngine:
    engine = TesseractEngine()
    try:
        engine.check()
    except OcrUnavailable as exc:
        pytest.skip(f"OCR tests need Debian's {TESSERACT_PACKAGES}: {exc}")
    return engine


@pytest.fixture(scope="module")
def scanner(tesseract) -> PageScanner:
    return PageScanner(tesseract, dpi=200)


def _page_image(pdf: Path, number: int = 1, dpi: int = 200):
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        return document[number - 1].render(scale=dpi / 72, grayscale=True).to_pil()
    finally:
        document.close()


def _flat(text: str) -> str:
    return " ".join(text.split())


# --- pieces without an engine ------------------------------------------------------------------------------

def test_text_quality_tells_prose_from_an_ocr_layer_of_garbage():
    prose = ("La Administración deberá resolver en el plazo de tres meses, y el silencio tendrá efecto "
             "desestimatorio cuando así lo establezca una norma con rango de ley o una norma de Derecho de la Unión.")
    garbage = ("«POAH «3E*»CM tanntxim. inc. /^. ^ toi n»Bfl. iseorty ttsrootj saifii, GROTE, nut, s*r;tiiR» "
               "FRG&t OSZ H. USSSOBS 3s«»teership aieiabership JMBWeil aomberehip esffiteersftip (wssibership")
    assert text_quality(prose) > 0.9
    assert text_quality(garbage) < 0.5


def _word(text: str, x0: float, y0: float, line: int, width: float = 0.08) -> OcrWord:
    return OcrWord(text, (x0, y0, x0 + width, y0 + 0.015), 90.0, line)


def test_two_columns_are_read_one_after_the_other():
    title = (0.1, 0.05, 0.9, 0.07)
    left = [(0.1, 0.1 + i * 0.03, 0.45, 0.12 + i * 0.03) for i in range(4)]
    right = [(0.55, 0.1 + i * 0.03, 0.9, 0.12 + i * 0.03) for i in range(4)]
    boxes = [title, *[b for pair in zip(left, right, strict=True) for b in pair]]  # as a row-by-row engine gives them
    order = reading_order(boxes)
    assert [boxes[i] for i in order] == [title, *left, *right]


def test_table_rows_stay_rows_from_word_boxes_alone():
    words = [_word("Intro", 0.1, 0.05, 0), _word("text", 0.2, 0.05, 0)]
    rows = [("Region", "Cases", "Deaths"), ("North", "120", "3"), ("South", "98", "1"), ("East", "45", "0")]
    for r, cells in enumerate(rows, start=1):
        words += [_word(cell, 0.1 + 0.3 * c, 0.1 + 0.05 * r, r) for c, cell in enumerate(cells)]
    layout = page_layout(OcrPage(tuple(words), "test"))
    assert layout.text == "Intro text"
    (table,) = layout.tables
    assert table.header == ("Region", "Cases", "Deaths")
    assert table.rows == (("North", "120", "3"), ("South", "98", "1"), ("East", "45", "0"))


def test_chunk_boxes_follow_the_chunk_words_on_the_page():
    words = tuple(_word(w, 0.1 + 0.1 * i, 0.1, 0) for i, w in enumerate("el plazo es de tres meses".split()))
    page = ScannedPage(4, OcrPage(words, "tesseract"), page_layout(OcrPage(words, "tesseract")))
    fields = chunk_ocr_fields("plazo es de tres", 4, 4, {4: page})
    assert fields["ocr"] is True and fields["ocr_engine"] == "tesseract" and fields["ocr_confidence"] == 90.0
    boxes = json.loads(fields["ocr_boxes"])
    assert [b[1] for b in boxes] == ["plazo", "es", "de", "tres"] and all(b[0] == 4 for b in boxes)
    assert boxes[0][2:] == list(words[1].box)
    assert chunk_ocr_fields("plazo", 3, 3, {4: page}) == {}  # a page read from its text layer


def test_ruled_table_cleaning_removes_rules_and_keeps_letters():
    from PIL import Image, ImageDraw

    image = Image.new("L", (800, 400), 255)
    draw = ImageDraw.Draw(image)
    for y in (50, 150, 250, 350):
        draw.line([(20, y), (780, y)], fill=0, width=3)
    for x in (20, 300, 550, 780):
        draw.line([(x, 50), (x, 350)], fill=0, width=3)
    draw.rectangle([100, 90, 130, 120], fill=0)  # a letter-sized mark inside a cell
    cleaned, ruled = clean_for_ocr(image)
    pixels = cleaned.load()
    assert ruled
    assert pixels[400, 50] == 255 and pixels[300, 200] == 255  # rules gone
    assert pixels[115, 105] == 0  # the mark kept


# --- Tesseract on the shared scans ------------------------------------------------------------------------

def test_image_only_pdf_is_read_by_ocr(shared: Path, scanner):
    parser = PdfParser(scanner=scanner)
    elements = parser.parse(shared / "corpus" / "pdf_hard" / "scanned_image_only_loremipsum.pdf", "scan.pdf")
    assert LOREM in _flat(" ".join(e.text for e in elements))
    assert {e.page for e in elements} == {1}
    page = parser.scanned[1]
    assert page.ocr.engine == "tesseract" and page.ocr.confidence > 80 and not page.replaced_layer
    assert all(0 <= v <= 1 for w in page.ocr.words for v in w.box)


def test_scanned_table_keeps_its_rows(shared: Path, scanner):
    parser = PdfParser(scanner=scanner)
    elements = parser.parse(shared / "corpus" / "pdf_hard" / "scanned_image_only_table.pdf", "table.pdf")
    (table,) = parser.scanned[1].layout.tables
    # The row unstructured's own test asserts for this file (expected.csv).
    assert ("Blind", "5", "1", "4", "34.5%, n=1", "1199 sec, n=1") in table.rows
    assert ("Mobility", "3", "3", "0", "95.4%, n=3", "1416 sec, n=3") in table.rows
    assert any(e.element_type == "table" and "| Dexterity | 5 | 4 | 1 |" in e.text for e in elements)


def test_garbage_text_layer_of_a_scan_is_replaced(shared: Path, scanner):
    pdf = shared / "corpus" / "pdf_hard" / "scanned_with_garbage_ocr_layer.pdf"
    from pypdf import PdfReader

    layer = PdfReader(pdf).pages[0].extract_text()
    parser = PdfParser(scanner=scanner)
    elements = parser.parse(pdf, "garbage.pdf")
    ours = "\n".join(e.text for e in elements)
    assert parser.scanned[1].replaced_layer
    assert text_quality(ours) > text_quality(layer)
    assert "«POAH" not in ours and "Foundation" in ours


def test_good_text_layer_of_a_scan_is_kept(shared: Path, scanner):
    parser = PdfParser(scanner=scanner)
    parser.parse(shared / "corpus" / "pdf_hard" / "scanned_with_ocr_layer_vicksburg_6p.pdf", "book.pdf")
    assert parser.scanned == {}  # its OCR layer scores 0.96 or more: nothing to redo


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_pages_scanned_sideways_or_upside_down_come_out_readable(shared: Path, tesseract, tmp_path, degrees):
    image = _page_image(shared / "corpus" / "pdf_hard" / "scanned_image_only_loremipsum.pdf")
    turned = tmp_path / f"turned-{degrees}.png"
    image.rotate(degrees, expand=True, fillcolor=255).save(turned)  # PIL turns anticlockwise
    parser = ImageParser(PageScanner(tesseract))
    elements = parser.parse(turned, turned.name)
    assert LOREM in _flat(" ".join(e.text for e in elements))
    assert parser.scanned[1].ocr.rotation == degrees  # turned back clockwise


def test_rotated_office_scan_with_a_poor_layer_is_read_upright(shared: Path, scanner):
    parser = PdfParser(scanner=scanner)
    elements = parser.parse(shared / "corpus" / "pdf_hard" / "rotated_indirect_rotate_scan.pdf", "rot.pdf")
    text = _flat(" ".join(e.text for e in elements))
    assert parser.scanned and all(p.replaced_layer for p in parser.scanned.values())
    assert "International Council of Containership Operators" in text
    assert "Singapore" in text and "Appendix A" in text


def test_multipage_tiff_gives_one_page_per_frame(shared: Path, tesseract, tmp_path):
    first = _page_image(shared / "corpus" / "pdf_hard" / "scanned_image_only_loremipsum.pdf")
    second = _page_image(shared / "corpus" / "pdf_hard" / "scanned_image_only_table.pdf")
    tiff = tmp_path / "fax.tiff"
    first.save(tiff, save_all=True, append_images=[second], compression="tiff_lzw")
    parser = ImageParser(PageScanner(tesseract))
    elements = parser.parse(tiff, "fax.tiff")
    assert LOREM in _flat(" ".join(e.text for e in elements if e.page == 1))
    assert any(e.page == 2 and "Dexterity" in e.text for e in elements)


def test_ocr_that_cannot_run_names_the_package(shared: Path, tmp_path):
    scan = shared / "corpus" / "pdf_hard" / "scanned_image_only_loremipsum.pdf"
    missing = PageScanner(TesseractEngine(["xyz"]))
    with pytest.raises(IngestError) as err:
        PdfParser(scanner=missing).parse(scan, "scan.pdf")
    assert err.value.reason == NO_TEXT_LAYER
    with pytest.raises(IngestError) as err:
        ImageParser(missing).parse(_saved(scan, tmp_path), "scan.png")
    assert "tesseract-ocr-xyz" in err.value.detail
    with pytest.raises(IngestError) as err:
        ImageParser(PageScanner(TesseractEngine(), enabled=False)).parse(_saved(scan, tmp_path), "scan.png")
    assert "OCR is off" in err.value.detail


def _saved(pdf: Path, folder: Path) -> Path:
    target = folder / "scan.png"
    if not target.exists():
        _page_image(pdf).save(target)
    return target


def test_folder_ingest_reports_ocr_and_answers_say_they_rest_on_it(shared: Path, tesseract, tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    hard = shared / "corpus" / "pdf_hard"
    shutil.copy(hard / "scanned_image_only_table.pdf", docs / "ballots.pdf")
    _page_image(hard / "scanned_image_only_loremipsum.pdf").save(docs / "lorem.png")
    shutil.copy(Path(__file__).parent.parent / "data" / "prospecto_paracetamol.pdf", docs)
    settings = Settings(index_dir=tmp_path / "index", ocr_dpi=200)
    ingestor = FolderIngestor(settings, embedder=embedder)
    report = ingestor.run(docs)
    assert not report.failed, report.summary()
    assert report.pages_ocr == 2 and report.pages_text_layer >= 2
    assert "by OCR (mean confidence" in report.summary()
    stored = DocumentIndex.from_settings(settings)
    every = list(stored.store.get(stored.store.ids()).values())
    ocr_chunks = [c for c in every if c.metadata.ocr]
    assert {c.metadata.source for c in ocr_chunks} == {"ballots.pdf", "lorem.png"}
    for chunk in ocr_chunks:
        boxes = json.loads(chunk.metadata.ocr_boxes)
        assert chunk.metadata.ocr_engine == "tesseract" and chunk.metadata.ocr_confidence > 50
        assert boxes and all(word in chunk.text for _, word, *_ in boxes)
    assert not any(c.metadata.ocr for c in every if c.metadata.source == "prospecto_paracetamol.pdf")

    again = FolderIngestor(settings, embedder=embedder).run(docs)
    assert sorted(again.unchanged) == ["ballots.pdf", "lorem.png", "prospecto_paracetamol.pdf"]
    assert again.pages_ocr == 0  # nothing read twice

    pipeline = QueryPipeline(settings, stored, embedder, ScriptedGenerator())
    answer = pipeline.answer("What accuracy did the Dexterity participants reach?")
    assert not answer.abstained, answer.trace.details.get("abstain_reason")
    assert "98.3%, n=4" in answer.text
    assert answer.citations[0].source == "ballots.pdf" and answer.citations[0].ocr_engine == "tesseract"
    assert any("read by OCR" in note for note in answer.trace.notes)
    assert answer.trace.details["ocr_sources"][0]["source"] == "ballots.pdf"


# --- pages read one by one: blank pages and failing pages are skipped, the others read ----------------------

# An e-signed circular: 9 pages of text, then a page that is one all-transparent image.
SIGNED = "pdf_kinds_es/es_circular_religion_atencion_educativa_junta_andalucia_2023.pdf"


def _scan_with_a_blank_page(shared: Path, folder: Path) -> Path:
    """Three real pages: the lorem ipsum scan, the e-signed circular's all-transparent last page, the ballots
    table scan; no text layer on any."""
    from pypdf import PdfReader, PdfWriter

    hard = shared / "corpus" / "pdf_hard"
    writer = PdfWriter()
    writer.add_page(PdfReader(hard / "scanned_image_only_loremipsum.pdf").pages[0])
    writer.add_page(PdfReader(shared / "corpus" / SIGNED).pages[-1])
    writer.add_page(PdfReader(hard / "scanned_image_only_table.pdf").pages[0])
    path = folder / "scan.pdf"
    with path.open("wb") as out:
        writer.write(out)
    return path


class FailingOnce:
    """Tesseract, one page at a time, except that its ``fail_on``-th page raises (a crash on one page)."""

    name = "tesseract"
    parallel = False  # pages in order: the failing call is the failing page

    def __init__(self, engine: TesseractEngine, fail_on: int | None) -> None:
        self.engine, self.fail_on, self.calls = engine, fail_on, 0
        self.languages = engine.languages

    def check(self) -> None:
        self.engine.check()

    def recognise(self, image):
        self.calls += 1
        if self.fail_on is None or self.calls == self.fail_on:
            raise RuntimeError("engine crashed on this page")
        return self.engine.recognise(image)


def test_blank_pages_are_told_apart_before_any_engine_runs(tesseract):
    from PIL import Image, ImageDraw

    from ingest.ocr import BlankPage, _otsu, flatten

    transparent = Image.new("RGBA", (300, 400), (0, 0, 0, 0))  # a transparent pixel's own colour is black
    assert flatten(transparent)[1] == "all transparent"
    assert flatten(Image.new("L", (300, 400), 252))[1] == "one colour"
    text_on_glass = Image.new("RGBA", (300, 400), (0, 0, 0, 0))
    ImageDraw.Draw(text_on_glass).rectangle([50, 50, 80, 80], fill=(0, 0, 0, 255))
    gray, blank = flatten(text_on_glass)
    assert blank is None and gray.getpixel((10, 10)) == 255 and gray.getpixel((60, 60)) == 0  # paper is white
    assert _otsu(np.full((20, 20), 252, dtype=np.uint8)) == 252  # no All-NaN slice
    speck = Image.new("L", (1200, 1600), 255)
    speck.putpixel((600, 800), 0)  # dust: one pixel of ink, dropped by the binarisation
    with pytest.raises(BlankPage, match="no ink after binarisation"):
        tesseract.recognise(speck)


def test_blank_middle_page_of_a_scan_is_skipped_and_the_others_read(shared: Path, scanner, tmp_path):
    parser = PdfParser(scanner=scanner)
    elements = parser.parse(_scan_with_a_blank_page(shared, tmp_path), "scan.pdf")
    assert {e.page for e in elements} == {1, 3}
    assert LOREM in _flat(" ".join(e.text for e in elements if e.page == 1))
    assert any(e.page == 3 and "| Dexterity | 5 | 4 | 1 |" in e.text for e in elements)
    assert sorted(parser.scanned) == [1, 3] and all(p.ocr.confidence > 80 for p in parser.scanned.values())
    assert parser.skipped == [SkippedPage(2, "one colour", blank=True)]
    assert parser.warnings == []  # a blank page is counted by the ingest, not warned about


def test_page_whose_ocr_raises_is_reported_by_number_and_the_rest_read(shared: Path, tesseract, tmp_path):
    scan = _scan_with_a_blank_page(shared, tmp_path)
    parser = PdfParser(scanner=PageScanner(FailingOnce(tesseract, fail_on=2), dpi=200))  # 2nd read: page 3
    elements = parser.parse(scan, "scan.pdf")
    assert {e.page for e in elements} == {1} and LOREM in _flat(" ".join(e.text for e in elements))
    assert parser.skipped == [SkippedPage(2, "one colour", blank=True),
                              SkippedPage(3, "RuntimeError: engine crashed on this page", blank=False)]
    assert parser.warnings == ["OCR failed on page 3 (RuntimeError: engine crashed on this page); "
                               "page skipped"]

    with pytest.raises(IngestError) as err:  # no page gives text: the file fails, naming each page and why
        PdfParser(scanner=PageScanner(FailingOnce(tesseract, fail_on=None), dpi=200)).parse(scan, "scan.pdf")
    assert err.value.reason == NO_TEXT_LAYER
    crash = "OCR failed: RuntimeError: engine crashed on this page"
    assert err.value.detail == ("3 pages without extractable text; OCR found none either: "
                                f"p.1 ({crash}), p.2 (blank: one colour), p.3 ({crash})")


def test_blank_page_of_a_file_with_a_text_layer_no_longer_fails_its_ocr(shared: Path, scanner):
    parser = PdfParser(scanner=scanner)
    elements = parser.parse(shared / "corpus" / SIGNED, "circular.pdf")
    assert parser.skipped == [SkippedPage(10, "one colour", blank=True)]
    assert not any("OCR failed" in w for w in parser.warnings), parser.warnings
    assert {e.page for e in elements} == set(range(1, 10))


def test_transparent_image_fails_naming_its_page(tesseract, tmp_path):
    from PIL import Image

    path = tmp_path / "glass.png"
    Image.new("RGBA", (800, 1000), (0, 0, 0, 0)).save(path)
    with pytest.raises(IngestError) as err:
        ImageParser(PageScanner(tesseract)).parse(path, "glass.png")
    assert err.value.reason == NO_TEXT_LAYER and "p.1 (blank: all transparent)" in err.value.detail


def test_scan_with_a_blank_page_is_ingested_and_its_pages_cited(shared: Path, tesseract, tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    _scan_with_a_blank_page(shared, docs)
    settings = Settings(index_dir=tmp_path / "index", ocr_dpi=200)
    report = FolderIngestor(settings, embedder=embedder).run(docs)
    assert report.ingested == ["scan.pdf"] and not report.failed, report.summary()
    assert report.pages_ocr == 2 and report.pages_blank == ["scan.pdf p.2 (one colour)"]
    assert report.pages_ocr_failed == []
    assert "pages skipped: 1 blank: scan.pdf p.2 (one colour); 0 OCR failed" in report.summary()
    stored = DocumentIndex.from_settings(settings)
    chunks = list(stored.store.get(stored.store.ids()).values())
    assert {c.metadata.page for c in chunks} == {1, 3}
    assert all(c.metadata.page == 1 for c in chunks if "Lorem" in c.text)
    assert all(c.metadata.page == 3 for c in chunks if "Dexterity" in c.text)

    pipeline = QueryPipeline(settings, stored, embedder, ScriptedGenerator())
    answer = pipeline.answer("What accuracy did the Dexterity participants reach?")
    assert not answer.abstained, answer.trace.details.get("abstain_reason")
    assert "98.3%, n=4" in answer.text
    assert (answer.citations[0].source, answer.citations[0].page) == ("scan.pdf", 3)


def test_ingest_counts_a_page_whose_ocr_failed(shared: Path, tesseract, tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    _scan_with_a_blank_page(shared, docs)
    ingestor = FolderIngestor(Settings(index_dir=tmp_path / "index", ocr_dpi=200), embedder=embedder)
    ingestor.scanner.engine = FailingOnce(tesseract, fail_on=1)  # page 1 fails, page 3 is read
    report = ingestor.run(docs)
    assert report.ingested == ["scan.pdf"] and report.pages_ocr == 1
    assert report.pages_blank == ["scan.pdf p.2 (one colour)"]
    assert report.pages_ocr_failed == ["scan.pdf p.1 (RuntimeError: engine crashed on this page)"]
    assert "1 OCR failed: scan.pdf p.1 (RuntimeError: engine crashed on this page)" in report.summary()
    assert "WARNING scan.pdf: OCR failed on page 1" in report.summary()
