"""Judgments built by rule over a collection, instead of by a person.

- ``same-patent``: for a query figure, the other drawings of its patent are relevant (grade 1), as in
  DeepPatent. Front-page / abstract images (role FRONT_PAGE, which repeat a drawing) and images that
  are not drawings (NON_DRAWING) are neither queries nor results.
- ``same-class:SCHEME:DEPTH``: drawings of patents that share a SCHEME code (CPC, IPC, USPC, Locarno)
  down to DEPTH levels are relevant; the grade is ``1 + (shared levels - DEPTH)``, so a deeper match
  is more relevant (nDCG uses the grade; AP, P, R and RR count any grade >= 1).
- several rules combine by ``sum`` of their grades (default: a same-patent drawing that also shares
  the class outranks one that only shares the class), ``max``, or ``all`` (relevant only when every
  rule says so, graded by the smallest grade).

A figure is never judged against itself, nor against its own sheet or the figures cut from it
(``parent_id``): they repeat its pixels, so finding them proves nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from figsearch.errors import EmptyCollection, InputError
from figsearch.evaluate.classes import SCHEMES, canonical_scheme, levels, shared_depth
from figsearch.evaluate.qrels import Qrels
from figsearch.records import Figure, FigureRole
from figsearch.store import Collection

log = logging.getLogger(__name__)

COMBINE = ("sum", "max", "all")


@dataclass
class Pool:
    """The figures an evaluation may use as queries and results."""

    #: eligible figures (role DRAWING) by id
    figures: dict[str, Figure]
    #: eligible figure ids per patent, in the patent's order
    by_patent: dict[str, list[str]]
    #: per figure, the ids that repeat its pixels (its sheet, the figures cut from it)
    family: dict[str, set[str]] = field(default_factory=dict)
    #: ids of figures that are never queries nor results (front pages, non-drawings)
    excluded: set[str] = field(default_factory=set)

    def others(self, figure_id: str) -> set[str]:
        """What a search for ``figure_id`` must not count: itself and its family."""
        return {figure_id} | self.family.get(figure_id, set())


def load_pool(collection: Collection) -> Pool:
    figures: dict[str, Figure] = {}
    by_patent: dict[str, list[str]] = defaultdict(list)
    excluded: set[str] = set()
    children: dict[str, set[str]] = defaultdict(set)
    for figure in collection.figures():
        if figure.parent_id:
            children[figure.parent_id].add(figure.figure_id)
        if figure.role is FigureRole.DRAWING:
            figures[figure.figure_id] = figure
            by_patent[figure.patent].append(figure.figure_id)
        else:
            excluded.add(figure.figure_id)
    family = {}
    for fid, figure in figures.items():
        related = set(children.get(fid, ()))
        if figure.parent_id:
            related.add(figure.parent_id)
        if related:
            family[fid] = related
    return Pool(figures=figures, by_patent=dict(by_patent), family=family, excluded=excluded)


class Rule:
    """Grades pairs of eligible figures; subclasses return only positive grades."""

    name = "rule"

    def judge(self, collection: Collection, pool: Pool) -> Qrels:
        raise NotImplementedError


class SamePatent(Rule):
    name = "same-patent"

    def judge(self, collection: Collection, pool: Pool) -> Qrels:
        qrels: Qrels = {}
        for ids in pool.by_patent.values():
            for qid in ids:
                skip = pool.others(qid)
                judged = {doc: 1 for doc in ids if doc not in skip}
                if judged:
                    qrels[qid] = judged
        return qrels


class SameClass(Rule):
    def __init__(self, scheme: str, depth: int) -> None:
        self.scheme = canonical_scheme(scheme)
        top = SCHEMES[self.scheme]
        if not 1 <= depth <= top:
            raise InputError(f"depth {depth} for {self.scheme} is out of range; {self.scheme} has levels 1..{top}")
        self.depth = depth
        self.name = f"same-class:{self.scheme}:{depth}"

    def _patent_codes(self, collection: Collection) -> dict[str, list[tuple[str, ...]]]:
        codes: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        unreadable = 0
        for publication_number, stored_scheme, code in collection.patents.all_classifications():
            try:
                scheme = canonical_scheme(stored_scheme)
            except InputError:
                continue
            if scheme != self.scheme:
                continue
            cut = levels(scheme, code)
            if len(cut) >= self.depth:
                codes[publication_number].append(cut)
            elif not cut:
                unreadable += 1
        if unreadable:
            log.warning("%d %s code(s) could not be read and are ignored", unreadable, self.scheme)
        return codes

    def judge(self, collection: Collection, pool: Pool) -> Qrels:
        codes = {p: c for p, c in self._patent_codes(collection).items() if p in pool.by_patent}
        if not codes:
            raise InputError(
                f"rule {self.name}: no patent with drawings in {collection.root} has a {self.scheme} code "
                f"of at least {self.depth} level(s); pick another scheme or depth"
            )
        missing = len(pool.by_patent) - len(codes)
        if missing:
            log.info("%s: %d patent(s) have no %s code and are judged by no one", self.name, missing, self.scheme)
        groups: dict[str, set[str]] = defaultdict(set)
        for patent, cuts in codes.items():
            for cut in cuts:
                groups[cut[self.depth - 1]].add(patent)
        qrels: Qrels = {}
        for patent, cuts in codes.items():
            partners = set().union(*(groups[cut[self.depth - 1]] for cut in cuts))
            grades = {}
            for other in partners:
                shared = max(shared_depth(a, b) for a in cuts for b in codes[other])
                grades[other] = 1 + shared - self.depth
            for qid in pool.by_patent[patent]:
                skip = pool.others(qid)
                judged = {
                    doc: grade for other, grade in grades.items() for doc in pool.by_patent[other] if doc not in skip
                }
                if judged:
                    qrels[qid] = judged
        return qrels


def parse_rule(spec: str) -> Rule:
    """``same-patent`` or ``same-class:SCHEME:DEPTH`` (e.g. ``same-class:USPC:1``)."""
    text = spec.strip()
    if text.lower() == "same-patent":
        return SamePatent()
    parts = text.split(":")
    if parts[0].lower() == "same-class":
        if len(parts) != 3:
            raise InputError(f"rule {spec!r}: write same-class:SCHEME:DEPTH, e.g. same-class:USPC:1")
        try:
            depth = int(parts[2])
        except ValueError:
            raise InputError(f"rule {spec!r}: depth {parts[2]!r} is not a whole number") from None
        return SameClass(parts[1], depth)
    raise InputError(
        f"unknown rule {spec!r}; choose same-patent or same-class:SCHEME:DEPTH (SCHEME one of {', '.join(SCHEMES)})"
    )


def build_qrels(collection: Collection, rules: list[Rule], *, combine: str = "sum", pool: Pool | None = None) -> Qrels:
    """Judgments of every eligible figure by ``rules``; queries with nothing relevant are left out."""
    if combine not in COMBINE:
        raise InputError(f"unknown combination {combine!r}; choose one of: {', '.join(COMBINE)}")
    if not rules:
        raise InputError("no relevance rule given; use same-patent or same-class:SCHEME:DEPTH")
    pool = pool or load_pool(collection)
    if not pool.figures:
        raise EmptyCollection(f"collection {collection.root} holds no drawings to evaluate on")
    judged = [rule.judge(collection, pool) for rule in rules]
    if len(judged) == 1:
        return judged[0]
    combined: Qrels = {}
    queries = set().union(*judged)
    for qid in sorted(queries):
        per_rule = [j.get(qid, {}) for j in judged]
        docs = set().union(*per_rule)
        if combine == "all":
            docs = set.intersection(*(set(d) for d in per_rule))
        grades = {}
        for doc in docs:
            values = [d.get(doc, 0) for d in per_rule]
            grades[doc] = {"sum": sum, "max": max, "all": min}[combine](values)
        grades = {doc: g for doc, g in grades.items() if g > 0}
        if grades:
            combined[qid] = grades
    return combined
