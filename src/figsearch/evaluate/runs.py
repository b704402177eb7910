"""Query sets and TREC runs: every query figure searched in every mode through the search service.

A run is ``{query_id: [(doc_id, score), ...]}`` in the service's rank order. The query figure itself
(and its own sheet or the figures cut from it) never counts as a hit, nor does a figure outside the
pool (front pages, non-drawings): they are dropped and the remaining hits re-ranked from 1, so every
query is scored on up to ``k`` real results.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from figsearch.errors import EmptyCollection, InputError, NotFound
from figsearch.evaluate.qrels import Qrels
from figsearch.search.query import MODES, Query
from figsearch.fsutil import atomic_write_bytes

log = logging.getLogger(__name__)

#: {query_id: [(doc_id, score), ...]} in rank order
Run = dict[str, list[tuple[str, float]]]

_SAMPLE = re.compile(r"^sample:(\d+)(?::(-?\d+))?$")


# -- query sets ------------------------------------------------------------------------------


def choose_queries(spec: str, qrels: Qrels, eligible: Iterable[str]) -> list[str]:
    """The query ids for ``spec``: ``all``, ``sample:N:SEED`` or a file with one id per line.

    ``all`` and samples draw from the eligible figures that have at least one relevant item
    (a query with nothing relevant cannot be evaluated). Ids listed in a file must be eligible;
    one with nothing relevant is kept and scores 0 on every measure, as trec_eval scores it.
    """
    eligible = set(eligible)
    judged = sorted(q for q, docs in qrels.items() if q in eligible and any(r > 0 for r in docs.values()))
    spec = spec.strip()
    if spec == "all":
        chosen = judged
    elif (match := _SAMPLE.match(spec)) is not None:
        size, seed = int(match.group(1)), int(match.group(2) or 0)
        if size < 1:
            raise InputError(f"query sample {spec!r}: the size must be at least 1")
        chosen = sorted(random.Random(seed).sample(judged, min(size, len(judged))))
    else:
        chosen = read_query_ids(spec)
        unknown = [q for q in chosen if q not in eligible]
        if unknown:
            raise NotFound(
                f"query file {spec}: {len(unknown)} id(s) are not eligible drawings of the collection "
                f"(unknown, front pages or non-drawings): {', '.join(unknown[:5])}"
            )
        unjudged = [q for q in chosen if q not in judged]
        if unjudged:
            log.warning("%d listed quer(ies) have no relevant item and score 0: %s", len(unjudged), unjudged[:5])
    if not chosen:
        raise InputError(
            f"query set {spec!r} is empty: no eligible figure has a relevant item under these judgments "
            f"({len(eligible)} eligible figure(s), {len(qrels)} judged quer(ies))"
        )
    return chosen


def read_query_ids(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--queries {str(path)!r} is neither all, sample:N:SEED nor an existing file of ids")
    ids: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text and text not in ids:
            ids.append(text)
    return ids


# -- running -----------------------------------------------------------------------------------


@dataclass
class RunSet:
    """The runs of one evaluation: one per mode that could run, and why the others could not."""

    k: int
    queries: list[str]
    runs: dict[str, Run] = field(default_factory=dict)
    #: mode -> why it could not run (e.g. no text vectors in the collection)
    skipped: dict[str, str] = field(default_factory=dict)
    #: mode -> {query: the service's message} for queries it refused; they score 0
    refused: dict[str, dict[str, str]] = field(default_factory=dict)
    #: query -> hits on figures outside the pool (front pages, non-drawings) or repeated, dropped
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> dict[str, int]:
        """mode -> number of queries that returned no hit at all."""
        return {mode: sum(1 for hits in run.values() if not hits) for mode, run in self.runs.items()}

    @property
    def unordered(self) -> dict[str, int]:
        """mode -> queries whose scores rise somewhere down the ranking (trec_eval ranks by score)."""
        return {mode: sum(1 for hits in run.values() if _rises(hits)) for mode, run in self.runs.items()}

    @property
    def dropped_hits(self) -> int:
        return sum(self.dropped.values())

    def restrict(self, queries: Iterable[str]) -> RunSet:
        """The same runs on a subset of the queries (no new search)."""
        keep = [q for q in queries if q in set(self.queries)]
        wanted = set(keep)
        return RunSet(
            k=self.k,
            queries=keep,
            runs={m: {q: h for q, h in run.items() if q in wanted} for m, run in self.runs.items()},
            skipped=dict(self.skipped),
            refused={m: {q: why for q, why in r.items() if q in wanted} for m, r in self.refused.items()},
            dropped={q: n for q, n in self.dropped.items() if q in wanted},
        )


def run_modes(
    backend,
    queries: list[str],
    *,
    modes: Iterable[str] = MODES,
    k: int = 50,
    never: Mapping[str, set[str]] | None = None,
    allowed: set[str] | None = None,
    margin: int = 0,
    progress: Callable[[int], None] | None = None,
) -> RunSet:
    """Search every query in every mode with ``backend`` (any object with ``search(Query)``).

    ``never[qid]`` are ids that must not count for that query (beyond the query itself);
    ``allowed`` (when given) is the set of ids that may be results at all. Each query asks for
    ``k`` plus what it must skip (plus ``margin``); when dropped hits leave fewer than ``k`` and the
    service has more, it asks again twice as deep.
    """
    modes = list(modes)
    for mode in modes:
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose from: {', '.join(MODES)}")
    if not queries:
        raise InputError("the query set is empty: nothing to evaluate")
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    never = never or {}
    result = RunSet(k=k, queries=list(queries))
    for mode in modes:
        run: Run = {}
        try:
            for qid in queries:
                run[qid] = _one(backend, qid, mode, k, {qid} | set(never.get(qid, ())), allowed, margin, result)
                if progress:
                    progress(1)
        except EmptyCollection as exc:
            # e.g. a collection without text vectors: the other modes can still be evaluated
            result.skipped[mode] = str(exc)
            log.warning("mode %s skipped: %s", mode, exc)
            if progress:
                progress(len(queries) - len(run))
            continue
        result.runs[mode] = run
    return result


def _rises(hits: list[tuple[str, float]]) -> bool:
    # a last-bit difference is a tie summed in another order (rrf), not a disordered ranking
    return any(b[1] - a[1] > 1e-9 * max(1.0, abs(a[1])) for a, b in zip(hits, hits[1:]))


#: the most hits asked of the service for one query (its own limit is 1000)
MAX_ASK = 1000


def _one(backend, qid, mode, k, skip, allowed, margin, result: RunSet) -> list[tuple[str, float]]:
    ask = min(k + len(skip) + margin, MAX_ASK)
    while True:
        try:
            found = backend.search(Query(figure_id=qid, mode=mode, k=ask, exclude_query_patent=False))
        except NotFound as exc:
            raise NotFound(f"query figure {qid!r} ({mode}): {exc}") from exc
        except InputError as exc:
            # e.g. a figure without text searched in text mode: the query returns nothing and scores 0
            result.refused.setdefault(mode, {})[qid] = str(exc)
            return []
        hits, dropped = _keep(found.hits, k, skip, allowed)
        more = len(found.hits) >= ask and found.total > len(found.hits)
        if len(hits) >= k or not more or ask >= MAX_ASK:
            break
        # front pages or repeats took places: ask again, deeper, rather than always asking for extra
        ask = min(ask * 2, MAX_ASK)
    if dropped:
        result.dropped[qid] = result.dropped.get(qid, 0) + dropped
    return hits


def _keep(found, k, skip, allowed) -> tuple[list[tuple[str, float]], int]:
    hits: list[tuple[str, float]] = []
    seen: set[str] = set()
    dropped = 0
    for hit in sorted(found, key=lambda h: h.rank) if _ranked(found) else found:
        doc = hit.figure_id
        if doc in skip:
            continue
        if doc in seen or (allowed is not None and doc not in allowed):
            dropped += 1
            continue
        seen.add(doc)
        hits.append((doc, float(hit.score)))
        if len(hits) == k:
            break
    return hits, dropped


def _ranked(hits) -> bool:
    return bool(hits) and all(h.rank > 0 for h in hits)


# -- TREC run files ------------------------------------------------------------------------------


def format_run(run: Run, tag: str) -> str:
    """``qid Q0 docid rank score tag`` lines; scores written so that they read back exactly."""
    if not tag or any(c.isspace() for c in tag):
        raise InputError(f"run tag {tag!r} must be one word")
    lines = []
    for qid in sorted(run):
        for rank, (doc, score) in enumerate(run[qid], start=1):
            lines.append(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n")
    return "".join(lines)


def write_run(run: Run, path: str | os.PathLike, tag: str) -> None:
    atomic_write_bytes(Path(path), format_run(run, tag).encode("utf-8"))


def parse_run(text: str, source: str = "<run>") -> Run:
    """Read a TREC run; hits are ordered as trec_eval orders them (score descending)."""
    rows: dict[str, list[tuple[str, float]]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise InputError(f"{source} line {number}: expected 'qid Q0 docid rank score tag', got {line.strip()!r}")
        try:
            score = float(fields[4])
        except ValueError:
            raise InputError(f"{source} line {number}: score {fields[4]!r} is not a number") from None
        rows.setdefault(fields[0], []).append((fields[2], score))
    return {q: sorted(h, key=lambda item: (-item[1], _reverse(item[0]))) for q, h in rows.items()}


def read_run(path: str | os.PathLike) -> Run:
    path = Path(path)
    try:
        return parse_run(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        raise NotFound(f"run file {path} does not exist") from None


class _reverse(str):
    """Sort key for trec_eval's tie rule: equal scores rank by doc id, descending."""

    def __lt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__gt__(self, other)
