"""Measures computed by ir_measures (pytrec_eval, i.e. trec_eval's definitions), and their uncertainty.

The mean is taken here, over the declared query set, rather than by ir_measures' aggregate: that
way a query missing from a run, or with no relevant item, is counted as 0 instead of silently
shrinking the denominator, whichever provider computed the measure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from figsearch.errors import InputError
from figsearch.evaluate.qrels import Qrels
from figsearch.evaluate.runs import Run
from figsearch.extras import require

DEFINITION = (
    "Measures are trec_eval's, computed with ir_measures (pytrec_eval). Relevant means grade >= 1. "
    "Hits are ranked by score, equal scores by doc id descending (trec_eval's rule). "
    "AP@k: average precision over the first k hits, divided by the number of ALL relevant items of the "
    "query (not only those retrieved). P@10: relevant hits among the first 10, divided by 10. "
    "R@k: relevant hits among the first k, divided by all relevant items. "
    "RR: 1 / rank of the first relevant hit (mean = MRR). "
    "nDCG@10: gain = grade, discount log2(rank + 1), normalised by the ideal ranking of the judged items. "
    "Each value is the mean over every query of the set: a query that returns nothing, or has no "
    "relevant item, scores 0. The query figure itself never counts as a hit."
)


def default_measures(k: int) -> list[str]:
    return [f"AP@{k}", "P@10", f"R@{k}", "RR", "nDCG@10"]


def parse_measures(names: Sequence[str]) -> list:
    """ir_measures measure objects for names such as ``AP@50``; bad names raise InputError."""
    ir_measures = require("ir_measures", "evaluation measures")
    parsed = []
    for name in names:
        try:
            parsed.append(ir_measures.parse_measure(name))
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError) as exc:
            raise InputError(f"unknown measure {name!r} ({exc}); examples: AP@50, P@10, R@50, RR, nDCG@10") from None
    return parsed


def per_query(qrels: Qrels, run: Run, measures: Sequence[str], queries: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{measure: {query_id: value}}`` for every query of ``queries``, zero where nothing was scored."""
    ir_measures = require("ir_measures", "evaluation measures")
    parsed = parse_measures(measures)
    names = {m: str(m) for m in parsed}
    wanted = set(queries)
    # only the query set's judgments: ir_measures would otherwise average in other judged queries
    judged = {q: dict(docs) for q, docs in qrels.items() if q in wanted and docs}
    scored = {q: {doc: score for doc, score in reversed(hits)} for q, hits in run.items() if q in judged and hits}
    values: dict[str, dict[str, float]] = {names[m]: dict.fromkeys(queries, 0.0) for m in parsed}
    if judged:
        for metric in ir_measures.iter_calc(parsed, judged, scored):
            value = float(metric.value)
            values[str(metric.measure)][metric.query_id] = 0.0 if math.isnan(value) else value
    return values


def mean(values: Mapping[str, float]) -> float:
    if not values:
        raise InputError("cannot average over an empty query set")
    return sum(values.values()) / len(values)


def bootstrap_ci(values: Sequence[float], *, level: float = 0.95, samples: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries (queries resampled with replacement)."""
    return bootstrap_cis([values], level=level, samples=samples, seed=seed)[0]


def bootstrap_cis(
    columns: Sequence[Sequence[float]], *, level: float = 0.95, samples: int = 10000, seed: int = 0
) -> list[tuple[float, float]]:
    """Bootstrap intervals for several score lists over the same queries, from the same resamples."""
    np = require("numpy")
    data = np.asarray(columns, dtype=float).reshape(len(columns), -1).T  # queries x columns
    size = data.shape[0]
    if size == 0:
        raise InputError("cannot bootstrap an empty query set")
    rng = np.random.default_rng(seed)
    means = np.empty((samples, data.shape[1]))
    for start, count in _chunks(samples, size):
        # how often each query is drawn in each resample, then one matrix product for every column
        drawn = rng.integers(0, size, size=(count, size)) + (np.arange(count) * size)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=count * size).reshape(count, size)
        means[start:start + count] = counts @ data / size
    tail = (1 - level) / 2 * 100
    bounds = np.percentile(means, [tail, 100 - tail], axis=0)
    return [(float(low), float(high)) for low, high in bounds.T]


def randomization_test(a: Sequence[float], b: Sequence[float], *, samples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomisation (sign-flip) test of mean(a) == mean(b) over the same queries."""
    if len(a) != len(b):
        raise InputError(f"paired test needs the same queries on both sides ({len(a)} vs {len(b)})")
    return randomization_tests([[x - y for x, y in zip(a, b)]], samples=samples, seed=seed)[0]


def randomization_tests(diffs: Sequence[Sequence[float]], *, samples: int = 10000, seed: int = 0) -> list[float]:
    """p-values of several paired differences (each over the same queries), from the same sign patterns.

    Exact (all 2^n sign patterns) for up to 16 queries; otherwise ``samples`` random patterns with
    the observed one counted, so p is never 0.
    """
    np = require("numpy")
    data = np.asarray(diffs, dtype=float).reshape(len(diffs), -1).T  # queries x pairs
    size = data.shape[0]
    if size == 0:
        raise InputError("cannot test an empty query set")
    observed = np.abs(data.mean(axis=0)) - 1e-12
    if size <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=size)))
        p = np.mean(np.abs(signs @ data / size) >= observed, axis=0)
    else:
        rng = np.random.default_rng(seed)
        hits = np.zeros(data.shape[1])
        for _start, count in _chunks(samples, size):
            signs = rng.integers(0, 2, size=(count, size)) * 2.0 - 1.0
            hits += np.sum(np.abs(signs @ data / size) >= observed, axis=0)
        p = (hits + 1) / (samples + 1)
    # identical lists: no evidence of a difference at all
    return [1.0 if not np.any(data[:, j]) else float(p[j]) for j in range(data.shape[1])]


def _chunks(samples: int, size: int):
    """(start, count) blocks of resamples that keep each block near 2M draws."""
    step = max(1, 2_000_000 // size)
    for start in range(0, samples, step):
        yield start, min(samples, start + step) - start


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (family-wise), same keys."""
    order = sorted(pvalues, key=lambda key: pvalues[key])
    adjusted: dict[str, float] = {}
    running = 0.0
    for i, key in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * pvalues[key]))
        adjusted[key] = running
    return adjusted
