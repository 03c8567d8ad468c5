"""Chunker invariants: every sentence kept once and in order, size caps, tables split by whole rows."""

import pytest

from ingest.chunkers import DoublePassMergingChunker, FixedSizeChunker, SemanticChunker, SentenceWindowChunker
from rag.types import Element, ElementType
from tests.conftest import WordHashEmbedder

FAKE = WordHashEmbedder()
TEXT = " ".join(f"La frase número {i} habla del tema {'A' if i < 12 else 'B'} con palabras {i % 5}." for i in range(30))
TABLE = "\n".join(["| Grupo | Dosis |", "|---|---|"] + [f"| grupo {i} | {i} mg cada 8 h |" for i in range(40)])
ELEMENTS = [Element(TEXT, "doc.pdf", 1), Element("Artículo 2. Ámbito", "doc.pdf", 2, ElementType.TITLE),
            Element(TABLE, "doc.pdf", 2, ElementType.TABLE, table_id="p2-t1")]


def _chunkers(max_tokens: int):
    return [SentenceWindowChunker(FAKE.count_tokens, window=2, max_tokens=max_tokens),
            FixedSizeChunker(FAKE.count_tokens, max_tokens=max_tokens),
            SemanticChunker(FAKE.embed, FAKE.count_tokens, max_tokens=max_tokens),
            DoublePassMergingChunker(FAKE.embed, FAKE.count_tokens, 0.3, 0.3, 0.3, 2, max_tokens=max_tokens)]


@pytest.mark.parametrize("chunker", _chunkers(40), ids=lambda c: c.name)
def test_text_kept_in_order_and_sizes_capped(chunker):
    drafts = chunker.split(ELEMENTS)
    text = [d for d in drafts if d.element_type != ElementType.TABLE]
    assert " ".join(d.text for d in text) == TEXT + " Artículo 2. Ámbito"
    assert max(FAKE.count_tokens([d.text for d in drafts])) <= 40
    tables = [d for d in drafts if d.element_type == ElementType.TABLE]
    assert len(tables) > 1 and all(t.text.startswith("| Grupo | Dosis |\n|---|---|\n| grupo") for t in tables)
    rows = [line for t in tables for line in t.text.splitlines()[2:]]
    assert rows == TABLE.splitlines()[2:]  # every row once, whole, in order
    assert all(t.table_id == "p2-t1" and t.page == 2 for t in tables)


def test_sentence_window_keeps_neighbours():
    drafts = SentenceWindowChunker(FAKE.count_tokens, window=1).split([Element("Uno. Dos. Tres. Cuatro.", "d", 1)])
    assert [d.text for d in drafts] == ["Uno.", "Dos.", "Tres.", "Cuatro."]
    assert drafts[1].window == "Uno. Dos. Tres." and drafts[0].window == "Uno. Dos."


def test_semantic_breaks_where_the_topic_changes():
    text = ("Paracetamol dosis adultos mg. Paracetamol dosis niños mg. Paracetamol dosis máxima mg. "
            "Termostato wifi red router. Termostato wifi clave router. Termostato wifi canal router.")
    drafts = SemanticChunker(FAKE.embed, FAKE.count_tokens, breakpoint_percentile=50, max_tokens=100).split(
        [Element(text, "d", 1)])
    assert any(d.text.endswith("máxima mg.") for d in drafts)


def test_double_pass_merges_similar_and_keeps_dissimilar_apart():
    same = "Paracetamol dosis adultos mg cada ocho horas."
    other = "Termostato wifi router clave red."
    drafts = DoublePassMergingChunker(FAKE.embed, FAKE.count_tokens, max_tokens=100).split(
        [Element(f"{same} {same} {other}", "d", 1)])
    assert [d.text for d in drafts] == [f"{same} {same}", other]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="merging_range"):
        DoublePassMergingChunker(FAKE.embed, FAKE.count_tokens, merging_range=3)
    with pytest.raises(ValueError, match="breakpoint_percentile"):
        SemanticChunker(FAKE.embed, FAKE.count_tokens, breakpoint_percentile=100)
