"""Relevance judgments in TREC qrels format: ``qid 0 docid rel`` per line, rel a (graded) integer.

Judgments are held as ``{query_id: {doc_id: rel}}`` (pytrec_eval's layout, which ir_measures reads
directly). A rel of 0 or less is a judged non-relevant item; only rel >= 1 counts as relevant for
AP, P, R and RR, while nDCG uses the grade as the gain.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from figsearch.errors import InputError, NotFound
from figsearch.fsutil import atomic_write_bytes

#: {query_id: {doc_id: grade}}
Qrels = dict[str, dict[str, int]]

_SHOW = 5  # how many offending ids an error message lists


def parse_qrels(text: str, source: str = "<qrels>") -> Qrels:
    """Parse qrels text; every malformed line raises InputError naming ``source`` and the line."""
    qrels: Qrels = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{source} line {number}"
        if len(fields) != 4:
            raise InputError(
                f"{where}: expected 4 fields 'qid 0 docid rel', found {len(fields)}: {line.strip()!r}"
            )
        qid, _iteration, docid, rel_text = fields
        try:
            rel = int(rel_text)
        except ValueError:
            raise InputError(f"{where}: relevance {rel_text!r} is not an integer: {line.strip()!r}") from None
        judged = qrels.setdefault(qid, {})
        if docid in judged and judged[docid] != rel:
            raise InputError(
                f"{where}: {docid!r} is judged twice for query {qid!r} ({judged[docid]} and {rel})"
            )
        judged[docid] = rel
    return qrels


def read_qrels(path: str | os.PathLike) -> Qrels:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"qrels file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read qrels file {path}: {exc}") from exc
    qrels = parse_qrels(text, str(path))
    if not qrels:
        raise InputError(f"qrels file {path} holds no judgments")
    return qrels


def format_qrels(qrels: Mapping[str, Mapping[str, int]], *, positive_only: bool = False) -> str:
    """TREC qrels text, sorted by query, then by grade (highest first), then doc id, for review."""
    lines = []
    for qid in sorted(qrels):
        items = sorted(qrels[qid].items(), key=lambda item: (-item[1], item[0]))
        lines.extend(f"{qid} 0 {doc} {rel}" for doc, rel in items if rel > 0 or not positive_only)
    return "".join(line + "\n" for line in lines)


def write_qrels(qrels: Mapping[str, Mapping[str, int]], path: str | os.PathLike) -> None:
    atomic_write_bytes(Path(path), format_qrels(qrels).encode("utf-8"))


def relevant(qrels: Mapping[str, Mapping[str, int]], qid: str) -> set[str]:
    return {doc for doc, rel in qrels.get(qid, {}).items() if rel > 0}


def check_ids(qrels: Qrels, known: Iterable[str], source: str) -> None:
    """Raise NotFound when the qrels name query or doc ids that the collection does not hold."""
    known = set(known)
    bad_queries = sorted(q for q in qrels if q not in known)
    bad_docs = sorted({d for judged in qrels.values() for d in judged if d not in known})
    problems = []
    if bad_queries:
        problems.append(f"{len(bad_queries)} unknown query id(s): {_sample(bad_queries)}")
    if bad_docs:
        problems.append(f"{len(bad_docs)} unknown doc id(s): {_sample(bad_docs)}")
    if problems:
        raise NotFound(
            f"{source} names figures that are not eligible figures of the collection "
            f"({'; '.join(problems)}); check the ids with: figsearch info --collection DIR"
        )


def without_self(qrels: Qrels, exclude: Mapping[str, set[str]] | None = None) -> tuple[Qrels, int]:
    """Drop judgments of a query on itself (and on ``exclude[qid]``): the query never counts as a hit.

    Returns the cleaned qrels and how many judgments were dropped.
    """
    cleaned: Qrels = {}
    dropped = 0
    for qid, judged in qrels.items():
        skip = {qid} | set((exclude or {}).get(qid, ()))
        kept = {doc: rel for doc, rel in judged.items() if doc not in skip}
        dropped += len(judged) - len(kept)
        cleaned[qid] = kept
    return cleaned, dropped


def _sample(ids: list[str]) -> str:
    shown = ", ".join(ids[:_SHOW])
    return shown + (f", ... ({len(ids) - _SHOW} more)" if len(ids) > _SHOW else "")
