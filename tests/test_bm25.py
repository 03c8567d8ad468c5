import gzip
import json
import random

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from rag.bm25 import BM25Index


def test_scores_match_rank_bm25_on_random_corpora():
    rng = random.Random(7)
    for trial in range(20):
        vocab = [f"w{i}" for i in range(rng.randint(5, 80))]
        docs = {f"d{i}": [rng.choice(vocab) for _ in range(rng.randint(0 if i % 17 == 3 else 1, 40))]
                for i in range(rng.randint(2, 150))}  # a few chunks without terms (a bare number, stopwords)
        index = BM25Index()
        index.add(docs)
        query = [rng.choice(vocab) for _ in range(rng.randint(1, 6))] + ["unseen"]
        reference = BM25Okapi([terms or ["\x00"] for terms in docs.values()])
        expected = reference.get_scores(query)
        np.testing.assert_allclose(index.scores(query), expected, rtol=1e-9, atol=1e-12, err_msg=f"trial {trial}")
        known = [t for t in vocab if t in reference.idf]
        np.testing.assert_allclose([index.idf(known)[t] for t in known], [reference.idf[t] for t in known],
                                   rtol=1e-9, err_msg=f"trial {trial}")


def test_search_ranks_and_filters(tmp_path):
    index = BM25Index(tmp_path / "bm25.npz")
    index.add({"a": ["dosis", "paracetamol", "adult"], "b": ["garantia", "termostato"], "c": ["dosis", "niñ"],
               "d": ["wifi", "ghz"], "e": ["silla", "portatil"]})
    assert [cid for cid, _ in index.search(["dosis", "niñ"], 3)] == ["c", "a"]
    assert [cid for cid, _ in index.search(["dosis"], 3, allowed={"a"})] == ["a"]
    index.save()
    reloaded = BM25Index(tmp_path / "bm25.npz")
    assert len(reloaded) == 5
    reloaded.delete(["c"])
    assert [cid for cid, _ in reloaded.search(["dosis", "niñ"], 3)] == ["a"]
    assert reloaded.search([], 3) == []


def _reference_scores(docs: dict[str, list[str]], query: list[str]) -> dict[str, float]:
    reference = BM25Okapi([terms or ["\x00"] for terms in docs.values()])
    return dict(zip(docs, reference.get_scores(query), strict=True))


def test_incremental_changes_saved_and_reopened_score_as_a_fresh_rank_bm25(tmp_path, monkeypatch):
    """Adds, deletes and re-adds are merged into the stored postings; after each step, and after a reload,
    every chunk's score equals rank-bm25's over the corpus as it now is."""
    monkeypatch.setattr("rag.bm25.MERGE_EVERY", 9)  # long adds are merged part way through, as in a big ingest
    rng = random.Random(11)
    vocab = [f"w{i}" for i in range(60)]
    corpus: dict[str, list[str]] = {}
    index = BM25Index(tmp_path / "bm25.npz")
    for step in range(12):
        if step % 3 == 2:
            index = BM25Index(tmp_path / "bm25.npz")  # what was saved is what comes back
        added = {f"d{rng.randrange(200)}": [rng.choice(vocab) for _ in range(rng.randint(0, 30))]
                 for _ in range(rng.randint(1, 40))}
        gone = rng.sample(sorted(corpus), k=min(len(corpus), rng.randint(0, 8)))
        index.add(added)  # some ids are already there: their terms are replaced
        corpus.update(added)
        index.delete(gone + ["never-added"])
        for cid in gone:
            corpus.pop(cid)
        index.save()
        assert len(index) == len(corpus) and sorted(index.ids()) == sorted(corpus)
        query = [rng.choice(vocab) for _ in range(4)]
        got = dict(zip(index.ids(), index.scores(query), strict=True))
        expected = _reference_scores(corpus, query)
        np.testing.assert_allclose([got[c] for c in corpus], [expected[c] for c in corpus], rtol=1e-9,
                                   atol=1e-12, err_msg=f"step {step}")
        some = next(iter(corpus))
        assert index.terms(some) == set(corpus[some])


def test_an_index_of_the_first_format_is_converted_on_open(tmp_path):
    terms = {"a": ["dosis", "paracetamol", "adult"], "b": ["garantia", "termostato"], "c": ["dosis", "niñ"]}
    legacy = tmp_path / "bm25.json.gz"
    with gzip.open(legacy, "wt", encoding="utf-8") as fh:
        json.dump({"format": 1, "k1": 1.5, "b": 0.75, "analysis": "es-3", "terms": terms}, fh)
    index = BM25Index(tmp_path / "bm25.npz")
    assert not legacy.exists() and (tmp_path / "bm25.npz").exists()
    assert index.analysis == "es-3" and sorted(index.ids()) == ["a", "b", "c"]
    reopened = BM25Index(tmp_path / "bm25.npz")
    expected = _reference_scores(terms, ["dosis", "niñ"])
    found = reopened.search(["dosis", "niñ"], 3)
    assert [cid for cid, _ in found] == ["c", "a"]
    np.testing.assert_allclose([score for _, score in found], [expected["c"], expected["a"]], rtol=1e-12)


def test_a_damaged_file_is_named_in_the_error(tmp_path):
    (tmp_path / "bm25.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="bm25.npz"):
        BM25Index(tmp_path / "bm25.npz")


def _reference_top(docs: dict[str, list[str]], query: list[str], n: int) -> list[tuple[str, float]]:
    scores = _reference_scores(docs, query)
    ranked = sorted((cid for cid, score in scores.items() if score > 0), key=lambda c: (-scores[c], c))
    return [(cid, scores[cid]) for cid in ranked[:n]]


def test_search_by_saved_impacts_returns_rank_bm25s_top_and_scores(tmp_path, monkeypatch):
    """Searches rank by float32 impacts, then score the top exactly: the same ids and scores as rank-bm25's top n,
    with the impacts made in memory, read back from the file, or made again after changes."""
    monkeypatch.setattr("rag.bm25.MERGE_EVERY", 7)
    rng = random.Random(5)
    vocab = [f"w{i}" for i in range(50)]
    corpus: dict[str, list[str]] = {}
    index = BM25Index(tmp_path / "bm25.npz")
    for step in range(10):
        added = {f"d{rng.randrange(300)}": [rng.choice(vocab) for _ in range(rng.randint(1, 25))]
                 for _ in range(rng.randint(5, 60))}
        index.add(added)
        corpus.update(added)
        gone = rng.sample(sorted(corpus), k=min(len(corpus) - 1, rng.randint(0, 5)))
        index.delete(gone)
        for cid in gone:
            corpus.pop(cid)
        for reopen in (False, True):
            if reopen:
                index.save(impacts=step % 2 == 0)  # odd steps: a periodic save, without the impacts
                with np.load(tmp_path / "bm25.npz") as data:
                    assert ("impact" in data.files) == (step % 2 == 0)
                index = BM25Index(tmp_path / "bm25.npz")
            query = [rng.choice(vocab) for _ in range(rng.randint(1, 5))]
            n = rng.randint(1, 12)
            got = index.search(query, n)
            expected = _reference_top(corpus, query, n)
            assert [cid for cid, _ in got] == [cid for cid, _ in expected], f"step {step}"
            np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-12)
            allowed = set(rng.sample(sorted(corpus), k=len(corpus) // 2))
            kept = {cid: terms for cid, terms in corpus.items()}
            filtered = index.search(query, n, allowed=allowed)
            ranked = [(cid, s) for cid, s in _reference_top(kept, query, len(kept)) if cid in allowed][:n]
            assert [cid for cid, _ in filtered] == [cid for cid, _ in ranked], f"step {step} filtered"
