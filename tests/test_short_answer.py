"""The short answer (rag.short): the span of a cited text that answers the question's focus, first in every
answer surface. Unit tests on sentences of the Spanish statutes and of XQuAD-en; the HTTP answer and
``rag ask`` over the telework policy (the API tests' fixtures)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rag.short import ShortAnswer, short_answer, short_focus
from rag.types import Citation
from tests.conftest import DATA, policy_pipeline

# Ley 39/2015, art. 124.1 and 122.1-2; Constitución, arts. 12, 17.2, 15, 25.3 and 159.1.
REPOSICION = ("1. El plazo para la interposición del recurso de reposición será de un mes, si el acto fuera expreso. "
              "Transcurrido dicho plazo, únicamente podrá interponerse recurso contencioso-administrativo, sin "
              "perjuicio, en su caso, de la procedencia del recurso extraordinario de revisión.")
RECLAMACION = ("2. La reclamación se interpondrá en el plazo de un mes a contar desde el día siguiente a la "
               "notificación del acto.")
ALZADA = ("1. El plazo para la interposición del recurso de alzada será de un mes, si el acto fuera expreso. "
          "Transcurrido dicho plazo sin haberse interpuesto el recurso, la resolución será firme a todos los "
          "efectos. 2. El plazo máximo para dictar y notificar la resolución será de tres meses. Transcurrido este "
          "plazo sin que recaiga resolución, se podrá entender desestimado el recurso.")
MAYORIA = "Los españoles son mayores de edad a los dieciocho años."
DETENCION = ("2. La detención preventiva no podrá durar más del tiempo estrictamente necesario para la realización "
             "de las averiguaciones tendentes al esclarecimiento de los hechos, y, en todo caso, en el plazo máximo "
             "de setenta y dos horas, el detenido deberá ser puesto en libertad o a disposición de la autoridad "
             "judicial.")
PENA = ("Todos tienen derecho a la vida y a la integridad física y moral, sin que, en ningún caso, puedan ser "
        "sometidos a tortura ni a penas o tratos inhumanos o degradantes. Queda abolida la pena de muerte, salvo lo "
        "que puedan disponer las leyes penales militares para tiempos de guerra.")
SANCIONES = ("3. La Administración civil no podrá imponer sanciones que, directa o subsidiariamente, impliquen "
             "privación de libertad.")
TRIBUNAL = ("1. El Tribunal Constitucional se compone de 12 miembros nombrados por el Rey; de ellos, cuatro a "
            "propuesta del Congreso por mayoría de tres quintos de sus miembros; cuatro a propuesta del Senado, con "
            "idéntica mayoría; dos a propuesta del Gobierno, y dos a propuesta del Consejo General del Poder "
            "Judicial.")
# XQuAD-en (SQuAD) paragraphs: Super_Bowl_50_0, Jacksonville, Oxygen_0, American_Broadcasting_Company.
PANTHERS = ("The Panthers defense gave up just 308 points, ranking sixth in the league, while also leading the NFL "
            "in interceptions with 24 and boasting four Pro Bowl selections. Pro Bowl defensive tackle Kawann Short "
            "led the team in sacks with 11, while also forcing three fumbles and recovering two.")
JACKSONVILLE = ("Jacksonville is on the St. Johns River, about 25 miles (40 km) south of the Georgia state line and "
                "about 340 miles (550 km) north of Miami.")
OXYGEN = ("Oxygen was discovered independently by Carl Wilhelm Scheele, in Uppsala, in 1773 or earlier, and Joseph "
          "Priestley in Wiltshire, in 1774, but Priestley is often given priority because his work was published "
          "first.")
DUMONT = ("As part of this merger, the network would have been renamed \"ABC-DuMont\" for five years, and DuMont "
          "would have received $5 million in cash, room on the schedule for existing DuMont programming.")


def quoted(text: str, quote: str | None = None, source: str = "ley.pdf") -> Citation:
    """A citation of ``text`` whose quoted span is ``quote`` (all of it by default)."""
    quote = text if quote is None else quote
    start = text.index(quote)
    return Citation(source, 1, "c-00001-abc", 1.0, text, start, start + len(quote))


def short(question: str, *citations: Citation, language: str = "es", answer: str | None = None) -> ShortAnswer:
    found = short_answer(question, language, list(citations), answer)
    assert found is not None, question
    if found.kind != "yes/no":
        assert citations[found.citation - 1].text[found.start:found.end] == found.text
    return found


@pytest.mark.parametrize(("question", "text", "expected"), [
    ("¿En qué plazo se interpone la reclamación?", RECLAMACION, "un mes"),
    ("¿Qué plazo hay para interponer el recurso potestativo de reposición?", REPOSICION, "un mes"),
    ("¿Cuánto tiempo puede durar como máximo la detención preventiva?", DETENCION, "setenta y dos horas"),
    ("¿A qué edad son mayores de edad los españoles?", MAYORIA, "dieciocho años"),
    ("¿Quién nombra a los miembros del Tribunal Constitucional?", TRIBUNAL, "el Rey"),
    ("¿Cuántos miembros componen el Tribunal Constitucional?", TRIBUNAL, "12"),
    ("¿Cuánto paga la empresa por los gastos de conexión?",
     "La empresa abona 35 euros al mes en concepto de gastos de conexión y suministros.", "35 euros al mes"),
    ("¿Cuál es la dosis máxima de paracetamol en adultos?",
     "Adultos: la dosis máxima es de 4 g al día, repartida en tomas de 1 g.", "4 g al día"),
    ("¿Cuándo entra en vigor el real decreto?",
     "El presente real decreto entrará en vigor el 1 de enero de 2025.", "1 de enero de 2025"),
    ("¿En qué sección del Boletín se publican los nombramientos?",
     "En la sección II se publicarán las disposiciones sobre nombramientos, situaciones e incidencias.", "sección II"),
])
def test_spanish_statutes(question, text, expected):
    found = short(question, quoted(text))
    assert found.text == expected and found.citation == 1


def test_a_table_row_answers_with_the_measure_the_question_asks_for():
    """data/prospecto_paracetamol.pdf's dose table, quoted row with its header: the daily maximum, not the dose
    range next to "Adultos"."""
    table = ("| Grupo de edad | Vía oral o rectal (paracetamol) | Vía intravenosa (propacetamol) |\n|---|---|---|\n"
             "| Adultos | 500-1000 mg cada 6-8 h, máximo 4 g al día | 1-2 g cada 4-6 h, máximo 8 g al día |\n"
             "| Adolescentes de 12 a 15 años | 500 mg cada 4-6 h, máximo 2 g al día | 1 g cada 6 h |")
    row = table[:table.index(" |\n| Adolescentes") + 2]
    found = short("¿Cuál es la dosis máxima diaria de paracetamol en adultos?", quoted(table, row))
    assert found.text == "4 g al día"


def test_the_span_next_to_the_question_terms_wins():
    """Two durations in the quoted sentences: "plazo máximo para dictar y notificar" is next to "tres meses"."""
    question = "¿Cuál es el plazo máximo para dictar y notificar la resolución del recurso de alzada?"
    assert short(question, quoted(ALZADA)).text == "tres meses"
    assert short("¿Cuál es el plazo para interponer el recurso de alzada?", quoted(ALZADA)).text == "un mes"


def test_spans_inside_the_quote_come_first():
    """The cited text holds two durations; the one in the quoted sentence answers."""
    text = "1. El plazo máximo para resolver será de tres meses. " + RECLAMACION
    found = short("¿En qué plazo se interpone la reclamación?", quoted(text, RECLAMACION))
    assert found.text == "un mes" and found.start >= text.index(RECLAMACION)


def test_the_quote_the_answer_opens_with_comes_first():
    """Two citations, each with a duration: the answer's first quote is the second citation's."""
    first, second = quoted(ALZADA.split(" 2. ")[1], source="a.pdf"), quoted(RECLAMACION, source="b.pdf")
    answer = f"{RECLAMACION} [2]\n{first.text} [1]"
    found = short("¿Qué plazo hay?", first, second, answer=answer)
    assert (found.text, found.citation) == ("un mes", 2)


@pytest.mark.parametrize(("question", "text", "expected"), [
    ("How many points did the Panthers defense surrender?", PANTHERS, "308"),
    ("Who led the Panthers in sacks?", PANTHERS, "Kawann Short"),
    ("How far is Jacksonville from Miami?", JACKSONVILLE, "340 miles"),
    ("In what year did Joseph Priestley recognize oxygen?", OXYGEN, "1774"),
    ("How much money was to go to DuMont Television Network under the merger plan?", DUMONT, "$5 million"),
])
def test_english_xquad_sentences(question, text, expected):
    assert short(question, quoted(text, source="xquad"), language="en").text == expected


def test_yes_no_is_decided_by_the_negation_of_the_quoted_sentence():
    sentence = "Queda abolida la pena de muerte, salvo lo que puedan disponer las leyes penales militares para tiempos de guerra."
    citation = quoted(PENA, sentence)
    found = short("¿Está abolida la pena de muerte en España?", citation)
    # "Sí" is no span of the text: the span is the sentence that decides it
    assert (found.text, found.kind) == ("Sí", "yes/no")
    assert citation.text[found.start:found.end] == sentence
    no = short("¿Puede la Administración civil imponer sanciones que impliquen privación de libertad?", quoted(SANCIONES))
    assert no.text == "No" and no.kind == "yes/no"
    assert short("Can the civil administration impose penalties?",
                 quoted("The civil administration may not impose penalties."), language="en").text == "No"
    # a sentence that does not restate the question says neither yes nor no
    policy = "Los martes son presenciales para todos los equipos, salvo autorización expresa de la dirección."
    assert short_answer("¿Se puede teletrabajar los martes?", "es", [quoted(policy)]) is None


@pytest.mark.parametrize(("question", "text"), [
    ("¿Cómo es la bandera de España?", "La bandera de España está formada por tres franjas horizontales, roja, "
                                       "amarilla y roja, siendo la amarilla de doble anchura que cada una de las rojas."),
    ("¿Cuál es el importe en euros de la tasa por interponer un recurso de alzada?", ALZADA),
    ("¿Qué plazo hay para interponer el recurso?", TRIBUNAL),
])
def test_no_span_of_the_asked_type_gives_none(question, text):
    assert short_answer(question, "es", [quoted(text)]) is None


def test_focus_types():
    assert short_focus("¿En qué plazo se interpone la reclamación?", "es") == "duration"
    assert short_focus("¿Quién nombra al Presidente del Gobierno?", "es") == "person"
    assert short_focus("¿Qué órgano aprueba los presupuestos?", "es") == "person"
    assert short_focus("¿Dónde tiene su sede el Tribunal?", "es") == "place"
    assert short_focus("¿En qué artículo se regula el derecho de petición?", "es") == "reference"
    assert short_focus("¿Se puede teletrabajar los martes?", "es") == "yes/no"
    assert short_focus("Is the death penalty abolished?", "en") == "yes/no"
    assert short_focus("¿Cuál es el apellido del jugador que anotó un touchdown?", "es") is None  # "año" in "anotó"
    assert short_focus("What does error E7 mean?", "en") is None


def test_a_generated_answer_reads_the_whole_cited_text():
    """No quoted span: every sentence of the cited text, the ones the answer's words are in first."""
    text = ("Esta política se aplica a quien tenga más de seis meses de antigüedad. Cada persona puede teletrabajar "
            "hasta tres días por semana.")
    citation = Citation("politica.md", None, "c-00001-abc", 1.0, text)
    found = short("¿Cuántos días por semana se puede teletrabajar?", citation,
                  answer="Se puede teletrabajar hasta tres días por semana [1].")
    assert found.text == "tres días por semana"


# --- through the answer surfaces ---------------------------------------------------------------------------
QUESTION = "¿Cuántos días por semana se puede teletrabajar?"


@pytest.fixture
def policy(tmp_path, embedder):
    return policy_pipeline(tmp_path / "index", embedder)


def test_http_answer_opens_with_the_short_answer_and_points_into_the_cited_text(policy):
    from api.app import create_app

    settings, pipeline = policy
    client = TestClient(create_app(settings, pipeline=pipeline))
    body = client.post("/v1/query", json={"question": QUESTION, "answer_mode": "extractive"}).json()
    assert not body["abstained"] and body["short_answer"] == "tres días por semana"
    cited = body["citations"][body["short_citation"] - 1]
    assert cited["text"][body["short_start"]:body["short_end"]] == body["short_answer"]
    assert cited["quote_start"] <= body["short_start"] < body["short_end"] <= cited["quote_end"]
    assert body["answer"].startswith("tres días por semana — ") and "[1]" in body["answer"]
    assert body["trace"]["short_answer"] == {"focus": "duration", "text": "tres días por semana", "citation": 1}
    # the streamed answer's final event carries it too, and the OpenAI-compatible reply opens with it
    stream = client.post("/v1/query", json={"question": QUESTION, "answer_mode": "extractive", "stream": True})
    final = [b for b in stream.text.split("\n\n") if b.startswith("event: answer")][0]
    assert '"short_answer": "tres días por semana"' in final
    chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}],
                                                     "answer_mode": "extractive"}).json()
    assert chat["choices"][0]["message"]["content"].startswith("tres días por semana — ")


def test_a_question_without_a_short_focus_keeps_its_answer(policy):
    _, pipeline = policy
    from rag.pipeline import QueryOptions

    answer = pipeline.answer("¿Qué entrega la empresa para teletrabajar?", QueryOptions(answer_mode="extractive"))
    assert not answer.abstained and "ordenador portátil" in answer.text
    assert answer.short_answer is None and answer.short_citation is None and " — " not in answer.text
    assert answer.trace.details["short_answer"]["focus"] is None


def test_a_generated_answer_gets_the_short_fields_and_keeps_its_text(policy):
    _, pipeline = policy
    from rag.pipeline import QueryOptions

    answer = pipeline.answer(QUESTION, QueryOptions(answer_mode="generative"))
    assert answer.text == "Hasta tres días por semana [1]."
    assert answer.short_answer == "tres días por semana"
    assert answer.citations[answer.short_citation - 1].text[answer.short_start:answer.short_end] == "tres días por semana"


def test_rag_ask_prints_the_short_answer_alone_on_the_first_line(tmp_path, capsys):
    from rag.cli import main

    index = tmp_path / "index"
    assert main(["ingest", str(DATA / "politica_teletrabajo.md"), "--index", str(index), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["ask", QUESTION, "--index", str(index), "--mode", "extractive"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Respuesta corta: tres días por semana"
    assert lines[1].startswith("tres días por semana — ")
