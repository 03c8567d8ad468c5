"""Faithfulness judges with the real embedder (and the real GGUF for the LLM judge's plumbing)."""

import pytest

from eval.faithfulness import DEFAULT_THRESHOLD, FALLBACK_NOTE, AlignmentJudge, LLMJudge, context_units
from eval.rgb import best_threshold, load_rgb, validate_judge
from rag.grounding import quantities
from tests.conftest import ScriptedGenerator

CONTEXT = ["El paracetamol está indicado para el dolor leve. La dosis máxima en adultos es de 4 g al día.",
           "| Edad | Dosis |\n|---|---|\n| Adultos | 1 g cada 6 h |\n| Niños | 15 mg/kg cada 6 h |"]


def test_alignment_judge_separates_supported_from_invented_claims(embedder):
    judge = AlignmentJudge(embedder)
    faithful = judge.judge("La dosis máxima en adultos es de 4 g al día [1]. Los adultos toman 1 g cada 6 h.",
                           CONTEXT, "es")
    assert faithful.score == 1.0 and all(c.score >= DEFAULT_THRESHOLD for c in faithful.claims)
    invented = judge.judge("La dosis máxima en adultos es de 8 g al día. El paracetamol cura la gripe en dos días.",
                           CONTEXT, "es")
    assert invented.score == 0.0 and len(invented.claims) == 2
    assert judge.judge("", CONTEXT).score == 0.0 and judge.judge("Algo dice.", []).score == 0.0


def test_context_units_keep_table_rows_with_their_header():
    units = context_units(CONTEXT)
    assert "| Edad | Dosis |\n|---|---|\n| Niños | 15 mg/kg cada 6 h |" in units
    assert "La dosis máxima en adultos es de 4 g al día." in units


def test_quantities_keep_their_units():
    # Read off the text: each number with the unit written after it, compound units whole.
    assert quantities("20 mg al día, 72 horas y 15 mg/kg; 300 diputados") == {"20 mg", "72 horas", "15 mg/kg", "300"}
    assert quantities("60 mg/kg/día o 90 km/h") == {"60 mg/kg/día", "90 km/h"}


def test_a_number_with_another_unit_is_not_supported(embedder):
    from rag.grounding import Grounder

    context = ["La dosis habitual es de 15 g al día."]
    wrong_unit, same = Grounder(embedder).align(["La dosis habitual es de 15 mg/kg al día.",
                                                 "La dosis habitual es de 15 g al día."], context, "es")
    assert not wrong_unit.numbers_ok and same.numbers_ok


def test_llm_judge_extracts_statements_and_asks_for_a_verdict_each():
    generator = ScriptedGenerator("1. The maximum adult dose is 4 g a day.\n2. It cures the flu.", "Yes.", "No")
    result = LLMJudge(generator).judge("The maximum adult dose is 4 g a day and it cures the flu.", CONTEXT)
    assert [(c.claim, c.supported) for c in result.claims] == [
        ("The maximum adult dose is 4 g a day.", True), ("It cures the flu.", False)]
    assert result.score == 0.5
    assert "4 g al día" in generator.calls[1][0]["content"]  # the verdict prompt carries the context


def test_llm_judge_reports_its_fallback_when_the_model_writes_no_statement():
    generator = ScriptedGenerator("", "Yes", "- ok\n3.", "No")
    judge = LLMJudge(generator)
    empty = judge.judge("The maximum adult dose is 4 g a day.", CONTEXT)
    assert [c.claim for c in empty.claims] == ["The maximum adult dose is 4 g a day."]  # its own sentence
    assert empty.notes == [FALLBACK_NOTE] and empty.score == 1.0
    fragments = judge.judge("It cures the flu.", CONTEXT)  # "ok" and "3." are no statements either
    assert fragments.notes == [FALLBACK_NOTE] and fragments.score == 0.0


def test_llm_judge_parses_statements_from_the_embedded_gguf(llm):
    judge = LLMJudge(llm)
    answer = "The maximum adult dose is 4 g a day. Children take 15 mg/kg every 6 hours."
    statements, from_model = judge.statements(answer)
    # The real model's reply parses into whole statements (not list markers, not fragments).
    assert from_model and statements
    assert all(len(s.split()) >= 2 and not s[0] in "-*•0123456789" for s in statements)
    # The judge uses the model's statements (no fallback note). Two calls need not give the same wording:
    # the model need not word them the same twice (seen with llama-cpp-python 0.3.36 in one process).
    result = judge.judge(answer, CONTEXT)
    assert result.notes == [] and result.claims
    assert all(len(c.claim.split()) >= 2 and not c.claim[0] in "-*•0123456789" for c in result.claims)
    assert all(c.score in (0.0, 1.0) and c.supported is (c.score == 1.0) for c in result.claims)


def test_best_threshold_maximises_accuracy():
    import numpy as np

    assert 0.4 < best_threshold(np.array([0.1, 0.4, 0.7, 0.9]), np.array([0, 0, 1, 1])) < 0.7


def test_alignment_judge_on_rgb_counterfactuals(shared, embedder):
    path = shared / "eval" / "rgb" / "en_fact.dev.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    items = load_rgb(path)
    validation = validate_judge(items, AlignmentJudge(embedder))
    assert validation.items == 50
    # Independent yardsticks, not the judge's own result: (1) chance. Under no signal the ROC AUC of 50
    # positives against 50 negatives has a standard deviation of sqrt((50 + 50 + 1) / (12 * 50 * 50)) = 0.058
    # (Hanley & McNeil 1982), so 4 of them above 0.5 is no luck. (2) A plain bag-of-words overlap judge on
    # the same items: the embedder + alignment judge must do better than word counting.
    assert validation.auc >= 0.5 + 4 * ((50 + 50 + 1) / (12 * 50 * 50)) ** 0.5
    overlap = validate_judge(items, WordOverlapJudge())
    assert validation.auc > overlap.auc, (validation.auc, overlap.auc)
    assert validation.accuracy > 0.5 + 3 * (0.25 / 50) ** 0.5  # held-out half: 50 judgements, 3 sd above a coin


class WordOverlapJudge:
    """Baseline: share of the claim's words (lower-cased) found anywhere in the context."""

    name = "word-overlap"

    def judge(self, answer, contexts, language="en"):
        from eval.faithfulness import Faithfulness

        words = set(answer.lower().split())
        context = set(" ".join(contexts).lower().split())
        return Faithfulness(len(words & context) / len(words) if words else 0.0)
