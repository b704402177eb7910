"""Same-group retrieval quality of a set of vectors: mean AP@k scored by ir_measures (trec_eval's AP).

Each item queries all the others (itself left out); the other items of its group are relevant.
Used for the validation mAP@50 of encoder training and by the encoder benchmarks. Needs no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from figsearch.extras import require


def same_group_aps(vectors: np.ndarray, groups: Sequence, k: int = 50,
                   similarities: np.ndarray | None = None) -> dict[int, float]:
    """AP@k of every item that has another item of its group, by item index.

    ``similarities``: an (N, N) score matrix to rank by instead of the vectors' inner products (e.g. the
    re-ranked scores of ``search.rerank.reranked_similarities``; its diagonal is ignored).

    Hits are ranked by cosine (inner product), equal scores in index order; the run hands
    ir_measures the rank, not the raw score, so that its tie rule (doc id descending) cannot
    reorder equal scores. AP divides by *all* relevant items (trec_eval), so a group larger than
    k + 1 caps below 1. Items without any relevant item have no qrels and no AP.
    """
    ir_measures = require("ir_measures", "same-group mAP (encoder training and benchmarks)")
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(groups)
    if len(vectors) < 2:
        return {}
    members: dict = {}
    for i, g in enumerate(labels.tolist()):
        members.setdefault(g, []).append(i)
    qrels = {
        str(q): {str(d): 1 for d in same if d != q} for same in members.values() if len(same) > 1 for q in same
    }
    if not qrels:
        return {}
    sims = vectors @ vectors.T if similarities is None else np.array(similarities, dtype=np.float64)
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    run = {q: {str(d): float(k - r) for r, d in enumerate(top[int(q)].tolist())} for q in qrels}
    measure = ir_measures.AP @ k
    return {int(m.query_id): float(m.value) for m in ir_measures.iter_calc([measure], qrels, run)}


def same_group_map(vectors: np.ndarray, groups: Sequence, k: int = 50) -> float:
    """Mean of ``same_group_aps`` (0.0 when no item has a relevant one)."""
    aps = same_group_aps(vectors, groups, k)
    return float(np.mean(list(aps.values()))) if aps else 0.0
