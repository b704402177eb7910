"""The lexical part of the text channel: BM25 over each figure's words (SQLite FTS5), fused with the dense cosine.

The dense text vector of a figure is the mean of its sentences: a figure with many linked sentences is
diluted, and a one-line title ("Golf iron head") sits close to any short query. An examiner who types the
name of a part ("thermal head") expects the figures whose text says it. BM25 finds those.

- ``figure_document``: what a figure's row holds, the texts of its text vector (``figsearch.link.text``:
  linked sentences, brief description, title, drawing words) plus the glossary names of its reference signs.
- ``sync``: brings the FTS table up to date (called by ``figsearch index`` after the text vectors; creates
  the table on a collection indexed before stop 24); rewrites only figures whose text changed.
- ``fuse_text``: the text channel's list for a word query: candidates from the dense list and the BM25
  list, each scored ``(1 - w) * cosine + w * bm25 / max bm25`` (max over this query's BM25 list), so the
  channel keeps the cosine's scale for the fusion with the drawings. ``w`` = ``query_weight``: ``LEXICAL_WEIGHT``,
  or 0 when the dense list's best figure text is already a near paraphrase of the query (``DENSE_CONFIDENT``);
  both chosen on training-side data only (docs/lexical.md).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from figsearch.link.text import figure_text
from figsearch.records import FigureRole
from figsearch.store import Collection

log = logging.getLogger(__name__)

#: the BM25 share of a figure's fused text score (docs/lexical.md, "Stop 24")
LEXICAL_WEIGHT = 0.5
#: a word query whose best dense match has at least this text cosine gets no BM25 share (``query_weight``). Some
#: figure's text then says nearly what the query says (a design title typed as a query meets the same or a near
#: title: cosine 0.75-1.0 with use-multilingual); the dense list is sure, and word overlap only reorders it by
#: surface (the even 2007 design titles lost with BM25 exactly there). A part name ("thermal head") meets diluted
#: linked texts and loose titles (best cosine about 0.5-0.65): there the words decide. Chosen on the training side
#: for the text model use-multilingual (docs/lexical.md, "Stop 24, second part"); another model's cosines differ.
DENSE_CONFIDENT = 0.75
#: whether word queries use the lexical part when the query does not say. Off: the per-query share (``query_weight``)
#: passed the training-side rule (docs/lexical.md, "Stop 24, second part"), but on a collection mixing languages an
#: English query's BM25 list can hold only figures that share its function words ("the", "a", "by") with it: an
#: English figure then outranked the German figure that the multilingual dense channel had found first
#: (tests/test_embed_multilingual.py). Not on by default before stop words and languages are handled
LEXICAL_BY_DEFAULT = False
#: at most this many query words are searched (a pasted paragraph stays a bounded FTS query)
MAX_TERMS = 64
_WORD = re.compile(r"\w+", re.UNICODE)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


@dataclass
class LexicalReport:
    written: int = 0
    removed: int = 0
    unchanged: int = 0
    created: bool = False

    def summary(self) -> str:
        made = "lexical table created; " if self.created else ""
        return (f"{made}lexical (BM25) texts: {self.written} written, {self.removed} removed, "
                f"{self.unchanged} unchanged")


def fold(text: str) -> str:
    """Lower case without diacritics, as the FTS5 tokenizer (unicode61 remove_diacritics 2) sees it. A regular
    expression over the combining marks' blocks, not a loop over characters: explanations fold whole linked
    texts (a per-character loop took 10 ms a search)."""
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.lower()))


def tokens(text: str) -> list[str]:
    """The words of ``text``, folded, in order (as the FTS table's tokenizer splits them, near enough:
    unicode61 splits on what is not a letter or a digit)."""
    return [t for t in _WORD.findall(fold(text)) if t != "_"]


def match_expression(text: str, pairs: bool = True) -> str | None:
    """An FTS5 query for the words of ``text``: each distinct word quoted (no FTS syntax gets through),
    and with ``pairs`` each two adjacent words as a phrase ("thermal head"), all joined by OR: BM25 sums
    the terms a figure has, so a figure that says the name of the part outranks one that has its words
    apart. None when there are no words."""
    words = tokens(text)[:MAX_TERMS]
    if not words:
        return None
    terms = list(dict.fromkeys(words))
    if pairs:
        terms += list(dict.fromkeys(f"{a} {b}" for a, b in zip(words, words[1:]) if a != b))
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def figure_document(collection: Collection, figure) -> str | None:
    """The text of a figure's FTS row: the texts of its text vector and its sign names; None without text."""
    text = figure_text(collection, figure)
    parts = [*text.sentences, *([text.words] if text.words else []), *collection.lexical.sign_names(figure.figure_id)]
    parts = list(dict.fromkeys(p.strip() for p in parts if p and p.strip()))
    return "\n".join(parts) or None


def _digest(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()[:32]


def sync(collection: Collection, progress: Callable[[int], None] | None = None, batch: int = 500) -> LexicalReport:
    """Bring the FTS table up to date with every drawing's text (needs a writable collection)."""
    report = LexicalReport()
    if not collection.lexical.present():
        collection.lexical.create()
        report.created = True
    stored = collection.lexical.digests()
    figures = collection.figures(roles=(FigureRole.DRAWING,))
    seen: set[str] = set()
    rows: list[tuple[str, str, str]] = []
    for figure in figures:
        document = figure_document(collection, figure)
        if document is None:
            continue
        seen.add(figure.figure_id)
        digest = _digest(document)
        if stored.get(figure.figure_id) == digest:
            report.unchanged += 1
            continue
        rows.append((figure.figure_id, document, digest))
        if len(rows) >= batch:
            collection.lexical.write(rows)
            report.written += len(rows)
            if progress:
                progress(len(rows))
            rows = []
    collection.lexical.write(rows)
    report.written += len(rows)
    report.removed = collection.lexical.delete([f for f in stored if f not in seen])
    return report


def matched_words(query: str, document: str) -> list[str]:
    """The query's words that ``document`` contains (folded), in the query's order."""
    folded = fold(document)  # one search per query word: tokenising long linked texts cost more
    return [w for w in dict.fromkeys(tokens(query)) if re.search(rf"\b{re.escape(w)}\b", folded)]


def query_weight(top_cosine: float | None) -> float:
    """The BM25 share of one word query's text channel: 0 when the dense list's best figure has a text cosine of
    at least ``DENSE_CONFIDENT`` (a near paraphrase of the query is already first), else ``LEXICAL_WEIGHT``;
    ``top_cosine`` None (an empty dense list) counts as not confident."""
    if top_cosine is not None and top_cosine >= DENSE_CONFIDENT:
        return 0.0
    return LEXICAL_WEIGHT


def fuse_text(dense: list[tuple[str, float]], lexical: list[tuple[str, float]], cosine: dict[str, float],
              weight: float = LEXICAL_WEIGHT) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """(the fused text list, best first; each listed figure's normalised BM25).

    ``dense``: (figure, cosine) best first; ``lexical``: (figure, BM25) best first; ``cosine``: the
    cosine of lexical candidates missing from ``dense`` (a figure without a text vector counts 0).
    Ties are broken by figure id."""
    top = max((s for _, s in lexical), default=0.0)
    bm25 = {f: (s / top if top > 0 else 0.0) for f, s in lexical}
    cosines = dict(dense)
    for figure_id, _ in lexical:
        cosines.setdefault(figure_id, cosine.get(figure_id, 0.0))
    fused = [(f, (1.0 - weight) * c + weight * bm25.get(f, 0.0)) for f, c in cosines.items()]
    fused.sort(key=lambda item: (-round(item[1], 9), item[0]))
    return fused, bm25
