"""Scores of a set of runs: per-query values, means, confidence intervals and paired tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from figsearch.evaluate import metrics
from figsearch.evaluate.qrels import Qrels
from figsearch.evaluate.runs import Run


@dataclass
class ModeScores:
    mode: str
    #: measure name (as ir_measures writes it) -> mean over the query set
    means: dict[str, float]
    #: measure name -> query id -> value
    per_query: dict[str, dict[str, float]]
    #: measure name -> (low, high) bootstrap interval of the mean
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class PairedTest:
    """Paired randomisation test of one measure between two score lists on the same queries."""

    a: str
    b: str
    measure: str
    diff: float  # mean(a) - mean(b)
    p: float
    p_holm: float = 1.0

    @property
    def significant(self) -> bool:
        return self.p_holm < 0.05


@dataclass
class Scores:
    """Everything measured for one collection and one set of judgments."""

    measures: list[str]
    queries: list[str]
    modes: dict[str, ModeScores]
    tests: list[PairedTest] = field(default_factory=list)
    ci_level: float = 0.95

    @property
    def primary(self) -> str:
        return self.measures[0]


def score_runs(
    qrels: Qrels,
    runs: dict[str, Run],
    queries: list[str],
    measures: list[str],
    *,
    samples: int = 10000,
    seed: int = 0,
) -> Scores:
    """Measure every run; CIs for every measure; paired tests between all modes on the first measure."""
    modes: dict[str, ModeScores] = {}
    for mode, run in runs.items():
        values = metrics.per_query(qrels, run, measures, queries)
        means = {name: metrics.mean(per) for name, per in values.items()}
        modes[mode] = ModeScores(mode, means, values)
    columns = [(s, name) for s in modes.values() for name in s.per_query]
    intervals = metrics.bootstrap_cis(
        [[s.per_query[name][q] for q in queries] for s, name in columns], samples=samples, seed=seed
    ) if columns else []
    for (s, name), interval in zip(columns, intervals):
        s.ci[name] = interval
    names = list(next(iter(modes.values())).means) if modes else measures
    scores = Scores(measures=names, queries=list(queries), modes=modes)
    scores.tests = paired_tests(
        {mode: [s.per_query[scores.primary][q] for q in queries] for mode, s in modes.items()},
        scores.primary,
        samples=samples,
        seed=seed,
    )
    return scores


def paired_tests(values: dict[str, list[float]], measure: str, *, samples: int = 10000, seed: int = 0) -> list[PairedTest]:
    """Every pair of ``values`` tested, Holm-adjusted over the pairs."""
    names = list(values)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    if not pairs:
        return []
    pvalues = metrics.randomization_tests(
        [[x - y for x, y in zip(values[a], values[b])] for a, b in pairs], samples=samples, seed=seed
    )
    tests = [PairedTest(a, b, measure, _mean(values[a]) - _mean(values[b]), p) for (a, b), p in zip(pairs, pvalues)]
    adjusted = metrics.holm({f"{t.a}|{t.b}": t.p for t in tests})
    for t in tests:
        t.p_holm = adjusted[f"{t.a}|{t.b}"]
    return tests


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
