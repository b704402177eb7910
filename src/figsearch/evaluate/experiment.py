"""One evaluation from end to end: judgments, query set, runs through the search service, scores.

The CLI and the shared-data benchmark both call :func:`evaluate` (or :func:`compare`); nothing
here prints. ``backend_factory`` opens the search service of a collection directory; tests pass
a fake one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from figsearch.errors import InputError, MissingDependency
from figsearch.evaluate import metrics
from figsearch.evaluate.qrels import Qrels, check_ids, read_qrels, without_self
from figsearch.evaluate.rules import Pool, build_qrels, load_pool, parse_rule
from figsearch.evaluate.runs import RunSet, choose_queries, run_modes
from figsearch.evaluate.scoring import PairedTest, Scores, paired_tests, score_runs
from figsearch.search.query import NEIGHBOUR_TEXT_MODES
from figsearch.store import Collection

log = logging.getLogger(__name__)

#: the reference table's row order, then the rank fusion
MODE_ORDER = ("text", "visual", "max", "avg", "rrf", "zavg", "auto")


@dataclass
class Judgments:
    """Where relevance comes from: a qrels file, or rules (combined by ``combine``)."""

    qrels_file: str | None = None
    rules: tuple[str, ...] = ()
    combine: str = "sum"

    def describe(self) -> str:
        if self.qrels_file:
            return f"qrels {self.qrels_file}"
        joined = f" {self.combine} ".join(self.rules) if len(self.rules) > 1 else self.rules[0]
        return f"rule {joined}"

    def load(self, collection: Collection, pool: Pool) -> Qrels:
        if self.qrels_file and self.rules:
            raise InputError("give either --qrels FILE or --rule, not both")
        if self.qrels_file:
            qrels = read_qrels(self.qrels_file)
            check_ids(qrels, pool.figures, f"qrels file {self.qrels_file}")
        elif self.rules:
            qrels = build_qrels(collection, [parse_rule(r) for r in self.rules], combine=self.combine, pool=pool)
        else:
            raise InputError("no judgments: give --qrels FILE or --rule same-patent (or same-class:SCHEME:DEPTH)")
        cleaned, dropped = without_self(qrels, pool.family)
        if dropped:
            log.warning("%d judgment(s) of a query on itself or its own sheet are ignored", dropped)
        return cleaned


@dataclass
class Evaluation:
    label: str
    judgments: str
    k: int
    qrels: Qrels
    runset: RunSet
    scores: Scores
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    definition: str = metrics.DEFINITION

    @property
    def queries(self) -> list[str]:
        return self.scores.queries


@dataclass
class Comparison:
    a: Evaluation
    b: Evaluation
    #: per mode, the paired test of A against B on the primary measure (Holm over modes)
    tests: dict[str, PairedTest]


def open_backend(path: str | os.PathLike):
    """The collection's search service (figsearch.search.service)."""
    try:
        from figsearch.search.service import SearchService
    except ImportError as exc:
        raise MissingDependency(f"the search service is not available in this figsearch ({exc})") from exc
    return SearchService.open(path)


class QueryOptions:
    """A backend whose every search sets the given Query fields (e.g. ``rerank=True``, ``neighbour_text=False``)."""

    def __init__(self, backend, **options) -> None:
        self.backend = backend
        self.options = options

    def search(self, query):
        for name, value in self.options.items():
            if name == "neighbour_text" and query.mode not in NEIGHBOUR_TEXT_MODES:
                continue  # an option of two modes only: the others are evaluated as they are
            setattr(query, name, value)
        return self.backend.search(query)

    def __getattr__(self, name):
        return getattr(self.backend, name)


def query_options_factory(factory: Callable | None = None, **options) -> Callable:
    """A backend factory like ``factory`` (default: :func:`open_backend`) whose searches set ``options``; the
    options given as None are left to the service's defaults."""
    options = {name: value for name, value in options.items() if value is not None}
    if not options:
        return factory or open_backend
    return lambda path: QueryOptions((factory or open_backend)(path), **options)


def reranking_factory(rerank: bool, factory: Callable | None = None) -> Callable:
    """A backend factory like ``factory`` (default: :func:`open_backend`) with re-ranking set on or off."""
    return query_options_factory(factory, rerank=rerank)


@dataclass
class _Prepared:
    path: str
    pool: Pool
    qrels: Qrels


def _prepare(path: str | os.PathLike, judgments: Judgments) -> _Prepared:
    with Collection.open(path) as collection:
        pool = load_pool(collection)
        qrels = judgments.load(collection, pool)
    return _Prepared(str(path), pool, qrels)


def evaluate(
    path: str | os.PathLike,
    judgments: Judgments,
    *,
    queries: str = "all",
    k: int = 50,
    modes: Sequence[str] = MODE_ORDER,
    measures: Sequence[str] | None = None,
    backend_factory: Callable | None = None,
    progress: Callable[[int], None] | None = None,
    samples: int = 10000,
    seed: int = 0,
) -> Evaluation:
    prepared = _prepare(path, judgments)
    chosen = choose_queries(queries, prepared.qrels, prepared.pool.figures)
    return _run(prepared, judgments, chosen, k, modes, measures, backend_factory, progress, samples, seed)


def compare(
    path_a: str | os.PathLike,
    path_b: str | os.PathLike,
    judgments: Judgments,
    *,
    queries: str = "all",
    k: int = 50,
    modes: Sequence[str] = MODE_ORDER,
    measures: Sequence[str] | None = None,
    backend_factory: Callable | None = None,
    progress: Callable[[int], None] | None = None,
    samples: int = 10000,
    seed: int = 0,
) -> Comparison:
    """Both collections judged alike and searched with the same queries (those valid in both)."""
    a, b = _prepare(path_a, judgments), _prepare(path_b, judgments)
    both = set(a.pool.figures) & set(b.pool.figures)
    common = {q: docs for q, docs in a.qrels.items() if q in b.qrels and q in both}
    if not common:
        raise InputError(f"{path_a} and {path_b} share no judged query figure: nothing to compare")
    chosen = choose_queries(queries, common, both)
    ev_a = _run(a, judgments, chosen, k, modes, measures, backend_factory, progress, samples, seed)
    ev_b = _run(b, judgments, chosen, k, modes, measures, backend_factory, progress, samples, seed)
    lost = len(a.qrels) - len(common)
    if lost:
        ev_a.notes.append(f"{lost} judged quer(ies) of {path_a} are not judged in {path_b} and are left out")
    primary = ev_a.scores.primary
    tests: dict[str, PairedTest] = {}
    for mode in ev_a.scores.modes.keys() & ev_b.scores.modes.keys():
        pair = paired_tests(
            {
                "A": [ev_a.scores.modes[mode].per_query[primary][q] for q in chosen],
                "B": [ev_b.scores.modes[mode].per_query[primary][q] for q in chosen],
            },
            primary,
            samples=samples,
            seed=seed,
        )
        tests[mode] = pair[0]
    adjusted = metrics.holm({mode: t.p for mode, t in tests.items()})
    for mode, t in tests.items():
        t.a, t.b, t.p_holm = f"A:{mode}", f"B:{mode}", adjusted[mode]
    return Comparison(ev_a, ev_b, {m: tests[m] for m in MODE_ORDER if m in tests})


def _run(prepared, judgments, chosen, k, modes, measures, backend_factory, progress, samples, seed) -> Evaluation:
    modes = [m for m in MODE_ORDER if m in modes] + [m for m in modes if m not in MODE_ORDER]
    measures = list(measures or metrics.default_measures(k))
    metrics.parse_measures(measures)  # refuse a bad measure name before searching for minutes
    backend = (backend_factory or open_backend)(prepared.path)
    start = getattr(progress, "start", None)
    if callable(start):
        start(len(chosen) * len(modes), prepared.path)
    try:
        runset = run_modes(
            backend,
            chosen,
            modes=modes,
            k=k,
            never=prepared.pool.family,
            allowed=set(prepared.pool.figures),
            progress=progress,
        )
        settings = _info(backend)
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    if not runset.runs:
        reasons = "; ".join(f"{m}: {why}" for m, why in runset.skipped.items())
        raise InputError(f"no mode could be evaluated on {prepared.path} ({reasons})")
    return _assemble(prepared.path, judgments.describe(), prepared.qrels, runset, measures, settings, samples, seed)


def restrict(ev: Evaluation, queries: Sequence[str], *, samples: int = 10000, seed: int = 0) -> Evaluation:
    """The evaluation re-scored on a subset of its queries, from the same runs (no new search)."""
    runset = ev.runset.restrict(queries)
    if not runset.queries:
        raise InputError(f"none of the {len(queries)} given queries is among the {len(ev.queries)} evaluated")
    return _assemble(ev.label, ev.judgments, ev.qrels, runset, ev.scores.measures, ev.settings, samples, seed)


def _assemble(label, judged_by, qrels, runset: RunSet, measures, settings, samples, seed) -> Evaluation:
    chosen = runset.queries
    scores = score_runs(qrels, runset.runs, chosen, measures, samples=samples, seed=seed)
    notes = [f"mode {m} not evaluated: {why}" for m, why in runset.skipped.items()]
    notes += [f"{n} of {len(chosen)} queries returned no hit in mode {m} (scored 0)" for m, n in runset.empty.items() if n]
    notes += [
        f"{n} quer(ies) in mode {m} have scores that rise down the ranking; they are scored in score order"
        for m, n in runset.unordered.items() if n
    ]
    notes += [
        f"{len(r)} quer(ies) were refused by the service in mode {m} and score 0 (first: {_first(r)})"
        for m, r in runset.refused.items() if r
    ]
    if runset.dropped_hits:
        notes.append(f"{runset.dropped_hits} hit(s) on front pages, non-drawings or repeated figures were dropped")
    unjudged = [q for q in chosen if not any(r > 0 for r in qrels.get(q, {}).values())]
    if unjudged:
        notes.append(f"{len(unjudged)} quer(ies) have no relevant item (scored 0)")
    return Evaluation(
        label=label,
        judgments=judged_by,
        k=runset.k,
        qrels=qrels,
        runset=runset,
        scores=scores,
        settings=settings,
        notes=notes,
    )


def _first(refused: dict[str, str]) -> str:
    query, message = next(iter(refused.items()))
    return f"{query}: {message}"


def _info(backend) -> dict:
    info = getattr(backend, "info", None)
    if not callable(info):
        return {}
    try:
        return info()
    except Exception as exc:  # settings are a courtesy in the report, never a reason to fail it
        log.warning("could not read the search service's settings: %s", exc)
        return {}


def output_dir(path: str | os.PathLike) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory {out}: {exc.strerror or exc}") from exc
    return out
