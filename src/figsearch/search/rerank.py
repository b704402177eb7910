"""Query-time re-ranking of the visual candidates: α-query expansion with database-side augmentation (the
default ``METHOD`` since stop 20), diffusion, or k-reciprocal re-ranking (:func:`k_reciprocal`, stop 22).

α-QE and DBA are the training-free re-ranking of image retrieval (Radenović et al., "Fine-tuning CNN image
retrieval with no human annotation", TPAMI 2019; Arandjelović & Zisserman 2012 for DBA):

- *database-side augmentation* (DBA): each candidate x_i is replaced by the normalised sum of its
  ``db_neighbours`` nearest candidates (itself first), each weighted by max(0, cos)^α — a
  drawing is described by what it resembles as much as by itself;
- *α-query expansion* (αQE): the query q becomes the normalised q + Σ max(0, s_j)^α x'_j over its
  ``query_neighbours`` best candidates — the query borrows the shared look of its best matches.

*Diffusion* (``method="diffusion"``, the default in stops 13-19, chosen on training-side data with
``drawing-backbone2``, docs/evaluation.md; Zhou et al. 2004, Iscen et al., "Efficient diffusion
on region manifolds", CVPR 2017): the query and its candidates form a graph whose edges join each
node to its ``graph_neighbours`` nearest (weights max(0, cos)^``gamma``, made symmetric), and a
candidate's new score is how much of a random walk that restarts at the query (probability 1 −
``diffusion_alpha``) reaches it: f = (1 − α)(I − α S)⁻¹ e_query with S the symmetrically normalised
graph, summed by ``ITERATIONS`` steps of the walk (one product with an n × n matrix each).
Drawings reached through chains of near neighbours (other sheets of a design drawn from other
sides) rise, isolated look-alikes fall. Scores are then
f scaled to the plain cosines' range (so fusion sees cosine-like numbers): the highest f gets the best
plain cosine of the candidates, the others f / f_max times it.

Real DBA augments the whole database once; here it is done over the candidate set of the query
(the union of the candidate lists, a few hundred drawings), which is where a neighbour can change
the ranking, so it needs no new index and no extra search: one (n × d) fetch of the stored vectors
and an (n × n) product per query. New visual scores are x'_i · q' (the best over the query's rows
when an uploaded drawing is matched in several orientations).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: defaults. Stop 20 (docs/encoder.md, "Stop 20"): α-QE with 2 query neighbours and database-side augmentation
#: over 5, weights cos^3, chosen on the training side's held-out patents with drawing-backbone3 and
#: drawing-backbone5-lite0-288 (visual channel: same-patent +0.03-0.04, class level +0.002-0.004; fused auto on the
#: held-out design PDFs +0.007-0.008, where diffusion lost 0.002-0.010). On by default in the visual mode and,
#: since stop 22, in auto (query.rerank_by_default; auto's switch reads the head before re-ranking): at class
#: level it lowers the fused avg. Diffusion and k-reciprocal re-ranking (stop 22: better same-patent, but below
#: alpha-QE at class level with drawing-backbone3) are kept as options.
METHOD = "aqe"
QUERY_NEIGHBOURS = 2
DB_NEIGHBOURS = 5
ALPHA = 3.0
#: diffusion: neighbours per node in the graph, affinity exponent, restart (1 - DIFFUSION_ALPHA)
GRAPH_NEIGHBOURS = 10
GAMMA = 3.0
DIFFUSION_ALPHA = 0.9
#: diffusion: iterations of the walk (the series is cut at DIFFUSION_ALPHA ** ITERATIONS)
ITERATIONS = 40
#: k-reciprocal: neighbours of the reciprocal sets, of the local query expansion, and the plain distance's share
K1 = 10
K2 = 3
LAMBDA = 0.6
METHODS = ("aqe", "diffusion", "kreciprocal")


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


def diffuse(
    query: np.ndarray,
    candidates: np.ndarray,
    *,
    graph_neighbours: int = GRAPH_NEIGHBOURS,
    gamma: float = GAMMA,
    diffusion_alpha: float = DIFFUSION_ALPHA,
    iterations: int = ITERATIONS,
) -> np.ndarray:
    """Diffusion scores of the candidates for one query row, scaled so the best keeps its cosine."""
    nodes = np.vstack([query[None, :], candidates]).astype(np.float32)
    n = len(nodes)
    similarities = nodes @ nodes.T
    np.fill_diagonal(similarities, -np.inf)
    k = min(graph_neighbours, n - 1)
    nearest = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    affinity = np.zeros((n, n), dtype=np.float32)
    rows = np.repeat(np.arange(n), k)
    affinity[rows, nearest.ravel()] = np.maximum(np.take_along_axis(similarities, nearest, axis=1).ravel(), 0.0) ** gamma
    affinity = np.maximum(affinity, affinity.T)  # an edge when either end has the other among its neighbours
    degree = affinity.sum(1)
    scale = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    normalised = affinity * scale[:, None] * scale[None, :]
    start = np.zeros(n, dtype=np.float32)
    start[0] = 1.0
    f = start.copy()
    for _ in range(iterations):  # f = (1 - α) Σ (α S)^i e_query, to α^iterations
        f = diffusion_alpha * (normalised @ f) + start
    f = (1 - diffusion_alpha) * f[1:]
    cosines = candidates @ query
    top = float(f.max()) if len(f) else 0.0
    if top <= 0:
        return cosines.astype(np.float32)
    return (f / top * float(cosines.max())).astype(np.float32)


def k_reciprocal(
    query: np.ndarray, candidates: np.ndarray, *, k1: int = K1, k2: int = K2, lam: float = LAMBDA
) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., "Re-ranking person re-identification with k-reciprocal encoding",
    CVPR 2017) within the graph of one query row and its candidates, as scores (higher is better).

    Distances d = 1 − cos. R(i, k) = the nodes among i's k nearest (itself included) that have i among theirs;
    i's set is R(i, k1) grown by every R(c, k1/2) of its members c that shares more than 2/3 of its nodes with
    R(i, k1). Each node's set becomes a vector of weights exp(−d) (summing to 1), averaged over the node's k2
    nearest (local query expansion); d_J is the Jaccard distance of the query's vector and a candidate's
    (1 − Σ min / Σ max). Score = 1 − ((1 − lam) · d_J + lam · d): a candidate is near when it and the query
    share their mutual neighbours, not only when it is near the query."""
    nodes = np.vstack([query[None, :], candidates]).astype(np.float32)
    n = len(nodes)
    distance = np.clip(1.0 - nodes @ nodes.T, 0.0, None)
    order = np.argsort(distance, axis=1, kind="stable")
    order[:, 0] = np.arange(n)  # each node its own first neighbour, whatever ties

    def reciprocal(k: int) -> np.ndarray:
        k = min(k + 1, n)
        near = np.zeros((n, n), dtype=bool)
        near[np.repeat(np.arange(n), k), order[:, :k].ravel()] = True
        return near & near.T

    full, half = reciprocal(k1), reciprocal(max(1, round(k1 / 2)))
    rows, members_of = np.nonzero(full)  # the pairs (i, c ∈ R(i, k1)): a few per node, so no n × n products
    shared = (full[rows] & half[members_of]).sum(1)  # |R(i, k1) ∩ R(c, k1/2)|
    grows = shared > (2.0 / 3.0) * half.sum(1)[members_of]
    members = full.copy()
    np.logical_or.at(members, rows[grows], half[members_of[grows]])
    weights = np.where(members, np.exp(-distance), 0.0).astype(np.float32)
    weights /= weights.sum(1, keepdims=True)
    if k2 > 1:
        weights = weights[order[:, : min(k2, n)]].mean(axis=1)
    common = np.minimum(weights[0][None, :], weights[1:]).sum(axis=1)
    jaccard = 1.0 - common / (2.0 - common)  # rows sum to 1, so Σ max = 2 − Σ min
    return (1.0 - ((1.0 - lam) * jaccard + lam * distance[0, 1:])).astype(np.float32)


def rerank(
    query: np.ndarray,
    candidates: np.ndarray,
    *,
    method: str = METHOD,
    query_neighbours: int = QUERY_NEIGHBOURS,
    db_neighbours: int = DB_NEIGHBOURS,
    alpha: float = ALPHA,
    graph_neighbours: int = GRAPH_NEIGHBOURS,
    gamma: float = GAMMA,
    diffusion_alpha: float = DIFFUSION_ALPHA,
    iterations: int = ITERATIONS,
    k1: int = K1,
    k2: int = K2,
    lam: float = LAMBDA,
) -> np.ndarray:
    """New scores of the candidates (rows of ``candidates``) for the query rows ``query``.

    ``method`` ``aqe``: α-query expansion and database-side augmentation; with ``query_neighbours`` = 0
    and ``db_neighbours`` <= 1 the scores are the plain cosines. ``diffusion``: :func:`diffuse`.
    ``kreciprocal``: :func:`k_reciprocal`.
    Several query rows (an uploaded drawing in several orientations): each candidate's best.
    """
    query = np.atleast_2d(np.asarray(query, dtype=np.float32))
    candidates = np.asarray(candidates, dtype=np.float32)
    if len(candidates) == 0:
        return np.zeros(0, dtype=np.float32)
    if method not in METHODS:
        raise ValueError(f"unknown re-ranking method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "diffusion":
        return np.max([diffuse(row, candidates, graph_neighbours=graph_neighbours, gamma=gamma,
                               diffusion_alpha=diffusion_alpha, iterations=iterations) for row in query], axis=0)
    if method == "kreciprocal":
        return np.max([k_reciprocal(row, candidates, k1=k1, k2=k2, lam=lam) for row in query], axis=0)
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


def settings_from_spec(spec: str) -> dict:
    """Keyword settings of :func:`rerank` from a short spec: ``Q,D,ALPHA`` (α-query expansion with ``Q`` query
    neighbours and database-side augmentation over ``D``, weights cos^ALPHA), ``diffusion,K,GAMMA,ALPHA`` or
    ``kreciprocal,K1,K2,LAMBDA``."""
    parts = [part.strip() for part in spec.split(",")]
    try:
        if parts[0] == "kreciprocal" and len(parts) == 4:
            return {"method": "kreciprocal", "k1": int(parts[1]), "k2": int(parts[2]), "lam": float(parts[3])}
        if parts[0] == "diffusion" and len(parts) == 4:
            return {"method": "diffusion", "graph_neighbours": int(parts[1]), "gamma": float(parts[2]),
                    "diffusion_alpha": float(parts[3])}
        if len(parts) == 3:
            return {"method": "aqe", "query_neighbours": int(parts[0]), "db_neighbours": int(parts[1]),
                    "alpha": float(parts[2])}
    except ValueError:
        pass
    raise ValueError(
        f"re-ranking spec {spec!r}: expected Q,D,ALPHA, diffusion,K,GAMMA,ALPHA or kreciprocal,K1,K2,LAMBDA")


def reranked_similarities(vectors: np.ndarray, candidates: int = 200, **settings) -> np.ndarray:
    """(N, N) scores of every row of ``vectors`` against every other as a visual search with re-ranking ranks
    them: each row's best ``candidates`` by cosine (itself left out: the service's visual list, 200 long for
    k = 50) re-scored by :func:`rerank` and placed above all the others, which keep their cosines. The
    diagonal is -inf. For benchmarks that score vectors without a collection."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    out = scores.copy()
    n = min(candidates, len(vectors) - 1)
    if n < 1:
        return out
    lift = 2.0 + float(np.max(np.abs(scores[np.isfinite(scores)]), initial=0.0))  # above every plain cosine
    for q in range(len(vectors)):
        top = np.argpartition(-scores[q], n - 1)[:n]
        out[q, top] = lift + rerank(vectors[q], vectors[top], **settings)
    return out


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
