import pytest

from rag.analysis import Analyzer, detect_language, fold_accents, split_sentences


@pytest.mark.parametrize(("text", "expected"), [
    ("Según el art. 14 de la Constitución, todos son iguales. El núm. 3 dice otra cosa.",
     ["Según el art. 14 de la Constitución, todos son iguales.", "El núm. 3 dice otra cosa."]),
    ("¿Qué dosis tomo? ¡Consulte al médico! El Sr. García lo sabe.",
     ["¿Qué dosis tomo?", "¡Consulte al médico!", "El Sr. García lo sabe."]),
    ("It costs 1.500 euros, e.g. for adults. Mr. Smith agreed.",
     ["It costs 1.500 euros, e.g. for adults.", "Mr. Smith agreed."]),
    ("First paragraph\nwrapped line.\n\nSecond paragraph", ["First paragraph wrapped line.", "Second paragraph"]),
    ("", []),
])
def test_split_sentences_spanish_and_english(text, expected):
    assert split_sentences(text) == expected


def test_detect_language():
    assert detect_language("¿Cuál es la dosis máxima para niños?") == "es"
    assert detect_language("What is the maximum dose for children?") == "en"
    assert detect_language("") == "en"


def test_fold_accents_keeps_enye():
    assert fold_accents("Constitución ÁRBOL niño") == "constitucion arbol niño"


def test_analyzer_folds_stops_and_stems_the_same_on_both_sides():
    es = Analyzer("es")
    assert es.terms("Las dosis máximas") == es.terms("dosis maxima")
    assert "las" not in es.terms("Las dosis")
    assert Analyzer("en").terms("running children") == ["run", "children"]
    with pytest.raises(ValueError, match="language"):
        Analyzer("xx")


def test_a_spanish_noun_in_acion_finds_its_verb():
    """"ampliación" / "ampliar" / "ampliado" (Snowball leaves a short word's "-ación"), "notificación" /
    "notificar" (it cuts "-icación" deeper than "-icar"); a short stem stays apart ("formación" / "forma")."""
    es = Analyzer("es")
    assert es.terms("ampliación ampliaciones") == es.terms("ampliar ampliado")
    assert es.terms("notificación modificaciones") == es.terms("notificar modificado")
    assert es.terms("formación") != es.terms("forma")
    assert Analyzer("en").terms("notification") == ["notif"]  # English is Snowball's alone


def test_numbered_headings_stay_whole():
    assert split_sentences("Artículo 20. Resolución del procedimiento. El plazo es de tres meses.") == [
        "Artículo 20. Resolución del procedimiento.", "El plazo es de tres meses."]


def test_a_paragraph_number_opens_its_sentence():
    # Statutes number their paragraphs: "2." is neither a sentence of its own nor the end of the one before.
    assert split_sentences("Artículo 122. Plazos. 1. El plazo será de un mes, si el acto fuera expreso. Si el acto "
                           "no fuera expreso podrá interponerse en cualquier momento. 2. Contra la resolución no "
                           "cabrá otro recurso: a) Los días hábiles. b) Otros. . }") == [
        "Artículo 122. Plazos.", "1. El plazo será de un mes, si el acto fuera expreso.",
        "Si el acto no fuera expreso podrá interponerse en cualquier momento.",
        "2. Contra la resolución no cabrá otro recurso: a) Los días hábiles.", "b) Otros."]


def test_terms_are_right_when_threads_stem_at_once():
    from concurrent.futures import ThreadPoolExecutor

    from rag.analysis import Analyzer

    texts = [f"Las administraciones públicas notificarán {i} resoluciones desestimatorias del procedimiento"
             for i in range(400)]
    expected = [Analyzer("es").terms(t) for t in texts]
    with ThreadPoolExecutor(8) as pool:  # a shared snowball stemmer mixes words up across threads
        got = list(pool.map(lambda t: Analyzer("es").terms(t), texts))
    assert got == expected
