import random

import numpy as np
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
    index = BM25Index(tmp_path / "bm25.json.gz")
    index.add({"a": ["dosis", "paracetamol", "adult"], "b": ["garantia", "termostato"], "c": ["dosis", "niñ"],
               "d": ["wifi", "ghz"], "e": ["silla", "portatil"]})
    assert [cid for cid, _ in index.search(["dosis", "niñ"], 3)] == ["c", "a"]
    assert [cid for cid, _ in index.search(["dosis"], 3, allowed={"a"})] == ["a"]
    index.save()
    reloaded = BM25Index(tmp_path / "bm25.json.gz")
    assert len(reloaded) == 5
    reloaded.delete(["c"])
    assert [cid for cid, _ in reloaded.search(["dosis", "niñ"], 3)] == ["a"]
    assert reloaded.search([], 3) == []
