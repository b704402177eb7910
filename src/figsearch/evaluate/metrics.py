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
    """Bootstrap intervals for several score lists over the same queries, from the same resamples.

    scipy.stats.bootstrap (percentile method), one resample of the queries shared by every column.
    Batches of about 2M drawn values bound memory (~35 MB); the batch size does not change the
    draws, and the intervals equal those of figsearch's former numpy bootstrap to 1e-15 for the same
    seed (measured on 12-1,337 queries x 1-25 columns), so the intervals quoted in the docs hold.
    It is slower than that code was (12.5 s vs 2.5 s for 1,337 queries x 25 columns on 2 busy cores),
    which an evaluation run, minutes of searching, can afford.
    """
    np = require("numpy")
    stats = require("scipy.stats", "bootstrap intervals")
    data = np.asarray(columns, dtype=float).reshape(len(columns), -1)  # columns x queries
    size = data.shape[1]
    if size == 0:
        raise InputError("cannot bootstrap an empty query set")
    if size == 1:  # every resample is the one query (scipy refuses a single observation)
        return [(float(v), float(v)) for v in data[:, 0]]
    result = stats.bootstrap(
        (data,), np.mean, n_resamples=samples, batch=max(1, 2_000_000 // (size * len(columns))),
        vectorized=True, axis=-1, confidence_level=level, method="percentile", rng=np.random.default_rng(seed),
    )
    low, high = np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)
    return [(float(lo), float(hi)) for lo, hi in zip(low, high)]


def randomization_test(a: Sequence[float], b: Sequence[float], *, samples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomisation (sign-flip) test of mean(a) == mean(b) over the same queries."""
    if len(a) != len(b):
        raise InputError(f"paired test needs the same queries on both sides ({len(a)} vs {len(b)})")
    return randomization_tests([[x - y for x, y in zip(a, b)]], samples=samples, seed=seed)[0]


def randomization_tests(diffs: Sequence[Sequence[float]], *, samples: int = 10000, seed: int = 0) -> list[float]:
    """p-values of several paired differences (each over the same queries), from the same sign patterns.

    Exact (all 2^n sign patterns) for up to 16 queries; otherwise ``samples`` random patterns with
    the observed one counted, so p is never 0.

    Kept rather than scipy.stats.permutation_test (permutation_type="samples"), measured with 10,000
    resamples: exact cases agree, but sampled p-values differ (scipy draws other sign patterns and
    doubles the smaller one-sided p, so its smallest p is 2/10001, which after Holm over 10 pairs no
    longer backs the README's "adjusted p < 0.001"), and it took 13 s vs 0.3 s (385 queries x 9 pairs)
    and 158 s vs 1.5 s (1,337 queries x 24 pairs) on 2 cores: it resamples each pair separately where
    this shares one matrix of sign patterns.
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
