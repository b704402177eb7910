"""Query-time re-ranking of the visual candidates: α-query expansion with database-side augmentation.

Both are the training-free re-ranking of image retrieval (Radenović et al., "Fine-tuning CNN image
retrieval with no human annotation", TPAMI 2019; Arandjelović & Zisserman 2012 for DBA):

- *database-side augmentation* (DBA): each candidate x_i is replaced by the normalised sum of its
  ``db_neighbours`` nearest candidates (itself first), each weighted by max(0, cos)^α — a
  drawing is described by what it resembles as much as by itself;
- *α-query expansion* (αQE): the query q becomes the normalised q + Σ max(0, s_j)^α x'_j over its
  ``query_neighbours`` best candidates — the query borrows the shared look of its best matches.

Real DBA augments the whole database once; here it is done over the candidate set of the query
(the union of the candidate lists, a few hundred drawings), which is where a neighbour can change
the ranking, so it needs no new index and no extra search: one (n × d) fetch of the stored vectors
and an (n × n) product per query. New visual scores are x'_i · q' (the best over the query's rows
when an uploaded drawing is matched in several orientations).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: defaults; their effect on training-side data (and of database augmentation alone) is in docs/evaluation.md
QUERY_NEIGHBOURS = 2
DB_NEIGHBOURS = 2
ALPHA = 3.0


def _normalised(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def _weights(similarities: np.ndarray, alpha: float) -> np.ndarray:
    return np.maximum(similarities, 0.0) ** alpha


def augment(vectors: np.ndarray, neighbours: int, alpha: float) -> np.ndarray:
    """Database-side augmentation within ``vectors`` (rows, unit length): each row and its neighbours."""
    if neighbours <= 1 or len(vectors) < 2:
        return vectors
    similarities = vectors @ vectors.T
    np.fill_diagonal(similarities, np.inf)  # a row is its own first neighbour, whatever ties follow
    n = min(neighbours, len(vectors))
    nearest = np.argpartition(-similarities, n - 1, axis=1)[:, :n]
    np.fill_diagonal(similarities, 1.0)
    weights = _weights(np.take_along_axis(similarities, nearest, axis=1), alpha)
    return _normalised(np.einsum("ij,ijd->id", weights, vectors[nearest]))


def rerank(
    query: np.ndarray,
    candidates: np.ndarray,
    *,
    query_neighbours: int = QUERY_NEIGHBOURS,
    db_neighbours: int = DB_NEIGHBOURS,
    alpha: float = ALPHA,
) -> np.ndarray:
    """New scores of the candidates (rows of ``candidates``) for the query rows ``query``.

    With ``query_neighbours`` = 0 and ``db_neighbours`` <= 1 the scores are the plain cosines.
    """
    query = np.atleast_2d(np.asarray(query, dtype=np.float32))
    candidates = np.asarray(candidates, dtype=np.float32)
    if len(candidates) == 0:
        return np.zeros(0, dtype=np.float32)
    augmented = augment(candidates, db_neighbours, alpha)
    best = np.full(len(candidates), -np.inf, dtype=np.float32)
    for row in query:
        if query_neighbours > 0:
            first = np.asarray(candidates @ row)
            n = min(query_neighbours, len(candidates))
            top = np.argpartition(-first, n - 1)[:n]
            expanded = row + _weights(first[top], alpha) @ augmented[top]
            row = expanded / (np.linalg.norm(expanded) or 1.0)
        best = np.maximum(best, augmented @ row)
    return best


def rerank_visual(
    lists: dict[str, list[tuple[str, float]]],
    exact: dict[str, dict[str, float]],
    query: np.ndarray,
    fetch: Callable[[list[str]], dict[str, np.ndarray]],
    **settings,
) -> tuple[dict[str, list[tuple[str, float]]], dict[str, dict[str, float]]]:
    """The visual list re-scored and re-sorted (and the exact visual scores of the union re-scored).

    ``lists``/``exact`` are what :func:`figsearch.search.fusion.fuse` takes; ``fetch(ids)`` returns the
    stored visual vectors of those figures. Other modalities are returned unchanged.
    """
    if not lists.get("visual"):
        return lists, exact
    union = list(dict.fromkeys(f for candidates in lists.values() for f, _ in candidates))
    stored = fetch(union)
    ids = [f for f in union if f in stored]
    scores = dict(zip(ids, rerank(query, np.stack([stored[f] for f in ids]), **settings).tolist()))
    visual = [(f, scores.get(f, s)) for f, s in lists["visual"]]
    visual.sort(key=lambda item: (-round(item[1], 9), item[0]))
    exact = dict(exact)
    if "visual" in exact:
        exact["visual"] = {f: scores.get(f, s) for f, s in exact["visual"].items()}
    return {**lists, "visual": visual}, exact
