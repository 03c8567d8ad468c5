"""Running blocks, verification stamps and contents pages taken out of PDF text (ingest/boilerplate.py)."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest

from ingest.boilerplate import Role, Rule, strip_boilerplate
from ingest.pdf import _HEADING, PdfParser
from rag.types import ElementType

STAMP_WORDS = ("Código Seguro de Verificación", "PÁGINA", "FIRMADO POR", "verificarFirma", "Puede verificar",
               "BORRADOR", "CSV", "DIRECCIÓN DE VALIDACIÓN", "FIRMANTE", "Es copia auténtica")


def _text(elements) -> str:
    return "\n".join(e.text for e in elements)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_line_on_every_page_goes_wherever_it_sits_and_page_numbers_with_it():
    pages = [f"Uno {n}.\nJUNTA DE EJEMPLO · BORRADOR\nDos {n}.\n{n}" for n in range(1, 6)]
    stripped = strip_boilerplate(pages)
    assert stripped.texts == [f"Uno {n}.\nDos {n}." for n in range(1, 6)]
    assert stripped.report.counts() == {"running": 5, "page_number": 5}
    assert stripped.report.by_role() == {"running": 10}


def test_short_lines_headings_repeated_prose_and_half_the_pages_are_body():
    blind = "Hello, here is some text without a meaning."
    words = ["uno", "dos", "tres", "cuatro", "cinco", "seis"]
    pages = [f"Artículo {n}.\na)\n1.\n{blind}\nTexto {words[n - 1]}.\n" + ("Por lo tanto:\n" if n % 2 else "")
             + f"{blind}\n{blind}\nFin." for n in range(1, 7)]  # "Por lo tanto:" mid-page on half the pages
    stripped = strip_boilerplate(pages, _HEADING)
    assert stripped.texts == pages and not stripped.report.removed


def test_a_varying_code_inside_a_stamp_block_goes():
    words = ["uno", "dos", "tres", "cuatro", "cinco"]
    pages = []
    for n, word in enumerate(words, start=1):
        code = "".join(random.Random(n).choices(string.ascii_uppercase + string.digits, k=28))
        pages.append(f"Cuerpo {word}.\nDocumento firmado por Ana Pérez\n{code}\nPÁGINA {n}/5\nFinal {word}.")
    stripped = strip_boilerplate(pages)
    assert stripped.texts == [f"Cuerpo {word}.\nFinal {word}." for word in words]
    assert stripped.report.counts() == {"stamp": 10, "block": 5}


def test_contents_page_with_heading_and_wrapped_entries_goes():
    contents = ("Reglamento de ejemplo\nÍNDICE\nCAPÍTULO I: Disposiciones generales\n"
                "CAPÍTULO II: Tasas por servicios\nde limpieza e higiene\n1.1 Objeto de la norma 4\n"
                "REFERENCIAS 9\nPREÁMBULO\nEsta norma regula las tasas.\nSe aprueba por el pleno.\n"
                "CAPÍTULO I\nEl objeto es regular.")
    body = "CAPÍTULO II\nLas tasas se pagan en enero."
    stripped = strip_boilerplate([contents, body], _HEADING)
    kept = "Reglamento de ejemplo\nPREÁMBULO\nEsta norma regula las tasas.\nSe aprueba por el pleno.\n"
    assert stripped.texts == [kept + "CAPÍTULO I\nEl objeto es regular.", body]
    assert {r.rule for r in stripped.report.removed} == {Rule.TOC}
    assert len(stripped.report.removed) == 6


def _code(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=24))


def _synthetic(path: Path) -> dict[int, list[str]]:
    """A six-page draft: a contents page, then five pages whose six-line stamp block (with a per-page code and
    "PÁGINA n/6") is drawn at the foot of the page between two halves of the body, so that it comes out in the
    middle of the page text; "BORRADOR" on top, "- n -" below. Returns the body sentences by page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    rng = random.Random(7)
    canvas = Canvas(str(path), pagesize=A4)
    canvas.setFont("Helvetica", 10)
    entries = ["Artículo 1. Objeto", "Artículo 2. Ámbito", "Artículo 3. Plazos", "Artículo 4. Cuantías",
               "Artículo 5. Recursos"]
    canvas.drawString(72, 780, "Resolución de ejemplo sobre ayudas al estudio")
    canvas.drawString(72, 750, "ÍNDICE")
    for i, entry in enumerate(entries):
        canvas.drawString(72, 720 - 20 * i, f"{entry} {'.' * 60} {i + 2}")
    canvas.showPage()
    body: dict[int, list[str]] = {}
    for n in range(2, 7):
        canvas.setFont("Helvetica", 10)
        canvas.drawString(250, 810, "BORRADOR")
        subject = ["la matrícula", "el transporte", "la residencia", "el material", "los idiomas"][n - 2]
        sentences = [f"Artículo {n - 1}. {entries[n - 2].split('. ')[1]}.",
                     f"La ayuda para {subject} se solicita en la sede electrónica antes del plazo.",
                     f"El importe de la ayuda para {subject} se abona en un solo pago.",
                     "Por lo tanto:" if n % 2 else f"Las bases de la ayuda para {subject} se publican.",
                     f"La resolución sobre {subject} pone fin a la vía administrativa."]
        body[n] = sentences
        for i, sentence in enumerate(sentences[:3]):
            canvas.drawString(72, 770 - 18 * i, sentence)
        code = _code(rng)
        stamp = ["Consejería de Desarrollo Educativo y Formación Profesional",
                 f"Código Seguro de Verificación: {code}",
                 f"Puede verificar este documento en https://sede.ejemplo.es/verifica?csv={code}",
                 "FIRMADO POR MARÍA LÓPEZ GARCÍA 12/03/2024 10:15:00",
                 f"PÁGINA {n}/6",
                 code]
        canvas.setFont("Helvetica", 7)
        for i, line in enumerate(stamp):
            canvas.drawString(72, 130 - 10 * i, line)
        canvas.setFont("Helvetica", 10)
        for i, sentence in enumerate(sentences[3:]):
            canvas.drawString(72, 700 - 18 * i, sentence)
        canvas.drawString(290, 40, f"- {n} -")
        canvas.showPage()
    canvas.save()
    return body


def test_synthetic_draft_loses_its_stamp_block_draft_mark_and_contents(tmp_path: Path):
    path = tmp_path / "draft.pdf"
    body = _synthetic(path)
    parser = PdfParser()
    elements = parser.parse(path, "draft.pdf")
    text = _text(elements)
    for word in STAMP_WORDS:
        assert word not in text
    assert "Consejería de Desarrollo" not in text and "....." not in text and "ÍNDICE" not in text
    assert "sede.ejemplo.es" not in text
    assert not any(line.strip().startswith("-") for line in text.splitlines())
    assert "Resolución de ejemplo sobre ayudas al estudio" in text  # the title page's title is body
    for page, sentences in body.items():
        on_page = _flat(" ".join(e.text for e in elements if e.page == page))
        for sentence in sentences:
            assert sentence in on_page, (page, sentence)
    titles = [e.text for e in elements if e.element_type == ElementType.TITLE]
    assert titles == [f"Artículo {n}. {entry.split('. ')[1]}." for n, entry in
                      enumerate(["Artículo 1. Objeto", "Artículo 2. Ámbito", "Artículo 3. Plazos",
                                 "Artículo 4. Cuantías", "Artículo 5. Recursos"], start=1)]
    roles = parser.boilerplate.by_role()
    assert roles == {Role.TOC: 6,  # the heading and five entries
                     Role.RUNNING: 15,  # BORRADOR, the body's name, "- n -" on five pages
                     Role.STAMP: 25}  # four stamp lines and the bare code on five pages


@pytest.fixture(scope="module")
def kinds(shared: Path) -> Path:
    return shared / "corpus" / "pdf_kinds_es"


def test_junta_circular_stamps_are_gone_and_its_body_stays(kinds: Path):
    parser = PdfParser()
    circular = kinds / "es_circular_religion_atencion_educativa_junta_andalucia_2023.pdf"
    elements = parser.parse(circular, "circular.pdf")
    text = _text(elements)
    for word in STAMP_WORDS:
        assert word not in text, word
    assert "tFc2eH8WTV3HVY6QZKV5T2RDC4SPMY" not in text
    assert not any(e.element_type == ElementType.TABLE for e in elements)  # the stamp's box was read as one
    flat = _flat(text)
    assert "El artículo 27.3 de la Constitución Española fija en su tenor literal" in flat
    assert "La atención educativa para el alumnado que no curse Religión bajo ningún concepto podrá" in flat
    counts = parser.boilerplate.counts()
    assert counts[Rule.STAMP] >= 27 and counts[Rule.TABLE] == 9


def test_ministry_call_verification_header_is_gone_and_its_articles_stay(kinds: Path):
    parser = PdfParser()
    elements = parser.parse(kinds / "es_convocatoria_becas_generales_mefp_2024_2025.pdf", "becas.pdf")
    text = _text(elements)
    for word in STAMP_WORDS:
        assert word not in text, word
    assert "GEN-4da0-cf85" not in text and "sede.administracion.gob.es" not in text
    page2 = next(e for e in elements if e.page == 2)
    assert page2.text.startswith("citados y la Orden ECI/1815/2005")  # not with the stamp or the page number
    flat = _flat(text)
    assert "Se convocan por la presente Resolución becas para estudiantes que en el curso académico" in flat
    assert "Artículo 44. Verificación de becas concedidas." in {e.text for e in elements}
    assert parser.boilerplate.counts() == {"stamp": 4 * 48, "page_number": 48}


def test_contents_pages_of_a_statute_are_gone_and_its_title_stays(shared: Path):
    pdf = shared / "corpus" / "pdf_text" / "es_BOE-A-1978-31229_constitucion_espanola.pdf"
    parser = PdfParser()
    elements = parser.parse(pdf, "ce.pdf")
    first = [e.text for e in elements if e.page in (1, 2)]
    assert first and _flat(first[0]).startswith("Constitución Española. Cortes Generales")
    assert not any("....." in t or "ÍNDICE" in t for t in first)
    assert parser.boilerplate.by_role()[Role.TOC] == 30
    assert "La forma política del Estado español es la Monarquía parlamentaria." in _flat(_text(elements))


def test_repeated_blind_text_is_body(shared: Path):
    pdf = shared / "corpus" / "pdf_text" / "en_pdflatex_4_pages.pdf"
    parser = PdfParser()
    text = _text(parser.parse(pdf, "latex.pdf"))
    assert text.count("Hello, here is some text without a meaning.") >= 20
    assert parser.boilerplate.counts() == {"page_number": 4}
