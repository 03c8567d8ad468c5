"""Enumerations (issue 37): a list item is found, scored and quoted with its lead-in, however far the item is from
it, and a question that asks for a list gets the lead-in and every item, in order, each cited; a question that asks
which document says it gets the document's title first (``rag.titles``)."""

from __future__ import annotations

import pytest

from ingest.pipeline import FolderIngestor
from rag.analysis import split_sentences
from rag.enumeration import asks_list, lead_ins
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from rag.settings import Settings
from rag.titles import asked_kind, title_of
from tests.conftest import ScriptedGenerator

LEAD = "La persona trabajadora tendrá derecho a permiso retribuido en los siguientes casos:"
ITEMS = [
    "a) Quince días naturales en caso de matrimonio o registro de pareja de hecho.",
    "b) Tres días por nacimiento de un nieto o de una nieta.",
    "c) Un día por boda de un familiar hasta el segundo grado.",
    "d) Dos días por traslado del domicilio habitual.",
    "e) El tiempo indispensable para el cumplimiento de un deber público y personal.",
    "f) Cuatro horas para concurrir a exámenes oficiales.",
]
REGULATION = "\n".join([
    "Reglamento interno de permisos del personal de Talleres Ejemplo",
    "",
    "Artículo 1. Objeto.",
    "Este reglamento regula los permisos del personal de la empresa y el modo de pedirlos.",
    "",
    "Artículo 2. Permisos retribuidos.",
    LEAD,
    *ITEMS,
    "",
    "Artículo 3. Solicitud.",
    "Los permisos se pedirán a la jefatura de sección con una antelación mínima de cinco días hábiles.",
    "La jefatura contestará por escrito en el plazo de dos días hábiles.",
    "",
    "Artículo 4. Vacaciones.",
    "El personal disfrutará de treinta días naturales de vacaciones al año, repartidos en dos periodos como máximo.",
])


def test_an_item_marker_after_a_full_stop_opens_a_sentence_and_each_item_knows_its_lead_in():
    text = ("1. El Estado tiene competencia exclusiva sobre las siguientes materias: 1.ª La regulación de las "
            "condiciones básicas. 2.ª Nacionalidad, inmigración y derecho de asilo. 3.ª Relaciones internacionales. "
            "2. Sin perjuicio de las competencias de las Comunidades Autónomas, el Estado fomentará la cultura.")
    sentences = split_sentences(text)
    assert sentences[1] == "2.ª Nacionalidad, inmigración y derecho de asilo."
    leads = lead_ins(sentences)
    lead = "1. El Estado tiene competencia exclusiva sobre las siguientes materias:"
    assert leads == [None, lead, lead, None]  # the next numbered paragraph is no item of the ordinal list

    lettered = [LEAD, *ITEMS[:2], "Este permiso se acreditará con el libro de familia.", *ITEMS[2:4],
                "Artículo 3. Solicitud.", "d) Una letra suelta fuera de la lista."]
    assert lead_ins(lettered) == [None, LEAD, LEAD, LEAD, LEAD, LEAD, None, None]


def test_bulleted_and_unmarked_lines_under_a_lead_in_are_items_and_the_next_paragraph_is_not():
    # As pypdf extracts them: a word processor's bullet lands in the private use area, lines carry no full stop.
    text = ("Se abonará por cada hora de trabajo en festivo la cantidad siguiente:\n"
            "Año 2025: 0,87 €\nAño 2026: 0,89 €\n"
            "El presente artículo se aplicará a todo el personal de la empresa que trabaje en los\n"
            "aeropuertos del Estado durante los días festivos del calendario laboral oficial.\n\n"
            "Una vez perfeccionado el contrato, se debe cumplir con los siguientes requisitos:\n"
            "\uf0b7 Registro presupuestal.\n\uf0b7 Constitución y aprobación de las garantías.\n\n"
            "La tasa comprende:\n- El desarrollo y la conservación integral\nde la red vial rural\n"
            "- La señalización vial rural\n- El control de los cursos y espejos de agua del partido.")
    sentences = split_sentences(text)
    leads = dict(zip(sentences, lead_ins(sentences), strict=True))
    festivo = "Se abonará por cada hora de trabajo en festivo la cantidad siguiente:"
    assert leads["Año 2025: 0,87 €"] == festivo and leads["Año 2026: 0,89 €"] == festivo
    paragraph = next(s for s in sentences if s.startswith("El presente artículo"))
    assert paragraph.endswith("oficial.") and leads[paragraph] is None  # the list ended with its last line
    contract = "Una vez perfeccionado el contrato, se debe cumplir con los siguientes requisitos:"
    assert leads["\uf0b7 Registro presupuestal."] == contract
    assert leads["- El desarrollo y la conservación integral de la red vial rural"] == "La tasa comprende:"
    assert leads["- El control de los cursos y espejos de agua del partido."] == "La tasa comprende:"
    # Wrapped prose after a colon is cut at the colon only, never line by line.
    prose = split_sentences("Los requisitos son los siguientes:\nQue el solicitante tenga la nacionalidad "
                            "española y\nresida en un municipio de la comunidad autónoma desde hace dos años.")
    assert prose == ["Los requisitos son los siguientes:", "Que el solicitante tenga la nacionalidad española y "
                     "resida en un municipio de la comunidad autónoma desde hace dos años."]


def test_list_questions_are_told_from_single_fact_questions():
    assert asks_list("¿Qué órganos forman parte del Gobierno?")
    assert asks_list("¿Cuáles son los requisitos para pedir la beca?")
    assert asks_list("¿Quiénes pueden ejercer la iniciativa legislativa?")
    assert asks_list("¿Sobre qué materias tiene el Estado competencia exclusiva?")
    assert asks_list("What are the requirements for the grant?")
    assert not asks_list("¿Qué plazo tiene la Administración para resolver?")
    assert not asks_list("¿Cuál es la capital del Estado?")
    assert not asks_list("¿Qué ley regula el procedimiento?")


@pytest.fixture(scope="module")
def permits(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("permits")
    (root / "docs").mkdir()
    (root / "docs" / "reglamento_permisos.txt").write_text(REGULATION, encoding="utf-8")
    settings = Settings(index_dir=root / "index", rerank=False)
    FolderIngestor(settings, embedder=embedder).run(root / "docs")
    return QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())


def test_an_item_far_from_its_lead_in_is_stored_with_it(permits):
    item = next(c for c in permits.index.get(sorted(permits.index.allowed({"source": "reglamento_permisos.txt"})))
                .values() if c.text.startswith("d) Dos días"))
    assert item.metadata.lead_in == LEAD
    assert item.metadata.window.startswith(f"{LEAD} […] ")  # the window retrievers read the lead-in too


def test_an_item_is_quoted_with_its_lead_in_and_exact_offsets(permits):
    answer = permits.answer("¿Cuántos días de permiso retribuido corresponden por traslado del domicilio habitual?")
    assert not answer.abstained, answer.trace.details.get("abstain_reason")
    assert answer.text.startswith(LEAD) or f"{LEAD} […] {ITEMS[3]}" in answer.text, answer.text
    assert ITEMS[3] in answer.text
    citation = answer.citations[0]
    quoted = citation.text[citation.quote_start:citation.quote_end]
    assert quoted.startswith(LEAD) and quoted.endswith(ITEMS[3])


def test_a_list_question_gets_the_lead_in_and_every_item_in_order(permits):
    answer = permits.answer("¿En qué casos tiene derecho a permiso retribuido la persona trabajadora?")
    assert not answer.abstained, answer.trace.details.get("abstain_reason")
    lines = answer.text.splitlines()
    assert lines[0].startswith(LEAD), answer.text
    found = [i for i in ITEMS if any(i in line for line in lines)]
    assert found == ITEMS  # every item, in the list's order
    assert all(line.rstrip().endswith("]") for line in lines)  # each cited
    assert answer.trace.details["list"]["items"] >= len(ITEMS) - 1


def test_which_document_questions_are_told_and_the_title_is_the_first_opening_sentence_naming_a_kind():
    assert asked_kind("¿Qué ley regula el sentido del silencio administrativo?") == "ley"
    assert asked_kind("Soy profesor: ¿qué norma tengo que consultar para saber mi horario?") == "norma"
    assert asked_kind("¿En qué documento anexo tipifica la UNIAJC los riesgos?") == "documento"
    assert asked_kind("Which regulation sets the deadline for appeals?") == "regulation"
    assert asked_kind("¿Qué plazo tiene la Administración para resolver?") is None
    opening = ["AÑO XII Número 6 Martes, 4 julio 2017", "• Guía práctica de datos abiertos",
               "MINISTERIO DE EDUCACIÓN", "Resolución de 5 de mayo de 2017 por la que se aprueba el Código Ético "
               "General de la Universidad.", "Código Ético General de la Universidad de Alcalá"]
    assert title_of(opening, "documento") == opening[3]  # a running head, a list item, a letterhead: no title
    assert title_of(opening, "codigo") == opening[3]  # "Código" capitalised inside it
    assert title_of(["El presente texto se aplica al personal."], "ley") is None


def test_a_which_document_question_quotes_the_documents_title_first_as_its_short_answer(permits):
    answer = permits.answer("¿Qué reglamento regula los días de permiso por traslado del domicilio habitual?")
    assert not answer.abstained, answer.trace.details.get("abstain_reason")
    title = "Reglamento interno de permisos del personal de Talleres Ejemplo"
    assert answer.text.startswith(title), answer.text
    assert ITEMS[3] in answer.text  # the rule itself is still quoted
    assert answer.short_answer == title
    cited = answer.citations[answer.short_citation - 1]
    assert cited.text[answer.short_start:answer.short_end] == title and cited.page is None
