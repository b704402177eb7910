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
- ``query_terms``: the query's words without the function words of English, German and French
  (``FUNCTION_WORDS``): "the" and "a" say nothing about a figure, and a BM25 list of figures that share only
  them with the query must not lift them (docs/lexical.md, "Stop 25"); a word written in capitals in a query
  that is not all capitals ("CAN bus") is an acronym and stays (docs/lexical.md, "Stop 26").
- ``query_language`` / ``other_language``: BM25 can only meet a figure's words in the query's language; a figure
  whose patent is in another language keeps its cosine (BM25 share 0 for it) in a collection of several languages.
- ``on_by_default``: word queries use the lexical part unless told not to, except in a collection whose drawings are
  in several languages (there the typed language's figures would be favoured over those the multilingual text
  model finds in the others).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from figsearch.ingest.language import detect, normalise_code
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
#: whether word queries use the lexical part when the query does not say (``on_by_default``: not in a collection whose
#: drawings are in several languages). Off after stop 24 because an English figure that shared only "the" and "a" with
#: an English query outranked the German figure the multilingual channel found first (tests/test_embed_multilingual.py);
#: on again since stop 25: function words are left out of the terms, and the rule of stop 24 passed again on every
#: training-side and evaluation word-query set (docs/lexical.md, "Stop 25")
LEXICAL_BY_DEFAULT = True
#: at most this many query words are searched (a pasted paragraph stays a bounded FTS query)
MAX_TERMS = 64
#: the function words left out of a query's BM25 terms (written here, no package: short lists of articles,
#: pronouns, prepositions, conjunctions and auxiliaries, plus patent prose's "said", "wherein", "sowie", "selon").
#: Folded as the FTS tokenizer folds (``fold``: "über" -> "uber"); French elisions ("l'", "d'") are split off as
#: single letters by the tokenizer, hence "l", "d", "qu".
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("""
        a an the this that these those which who whom whose what it its they them their there here
        and or nor but if then than as so not no also both either neither each any all some such
        of to in on at by for from with without into onto upon about above below over under between through
        against among within along via
        is are was were be been being am has have had having do does did can could may might must shall should
        will would said wherein whereby thereof therein thereby""".split()),
    "de": frozenset("""
        der die das des dem den ein eine einer eines einem einen dieser diese dieses diesem diesen
        welcher welche welches welchem welchen er sie es ihr ihre ihrem ihren ihres sein seine seiner seinem seinen
        und oder aber sowie bzw wenn dann als wie dass daß nicht auch noch nur so
        von vom zu zum zur in im an am auf aus bei beim durch für gegen mit ohne nach über unter vor zwischen
        um bis seit sich
        ist sind war waren wird werden wurde wurden hat haben hatte kann können muss soll wobei""".split()),
    "fr": frozenset("""
        le la les l un une des du de d ce cet cette ces son sa ses leur leurs il elle ils elles on se lui
        lequel laquelle lesquels lesquelles dont qui que qu quoi où
        et ou mais si ne pas ni aussi ainsi également
        à au aux dans sur sous par pour avec sans entre vers chez contre en y selon
        est sont être été a ont avoir peut peuvent""".split()),
}
#: function words of one of these languages that are content words in another ("die casting", "car seat",
#: "top hat", "pour spout", "son"): left out only when the query is known to be in the language they are
#: function words of (``ingest.language.detect`` tells it from three or more function words), else kept
CONTENT_ELSEWHERE = frozenset({"die", "car", "son", "war", "hat", "pour"})
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


_FOLDED = {lang: frozenset(fold(w) for w in words) for lang, words in FUNCTION_WORDS.items()}
_ANY_LANGUAGE = frozenset().union(*_FOLDED.values()) - CONTENT_ELSEWHERE


def query_language(text: str | None) -> str | None:
    """The language of a query when its words tell it (``ingest.language.detect``: three or more function words
    of one language, "the screw of the lid with a handle"), else None (most short queries: "thermal head")."""
    return normalise_code(detect(text)) if text else None


def function_words(language: str | None) -> frozenset[str]:
    """The folded words left out of a query in ``language``: every listed language's function words, and the
    ones that are content words elsewhere (``CONTENT_ELSEWHERE``) only when the query is in their language."""
    return _ANY_LANGUAGE | _FOLDED.get(language or "", frozenset())


def query_words(text: str) -> list[tuple[str, bool]]:
    """The words of ``text`` as ``tokens`` gives them, each with whether the user wrote it in capitals, two letters
    or more ("CAN", "DAS", "ART"): an acronym, not the function word it also spells. No word counts as written in
    capitals when every word with letters is (a query typed with caps lock on, "THE LID OF A BOX", says nothing by
    its case)."""
    raw = _WORD.findall(text)
    cased = [w for w in raw if w.lower() != w.upper()]  # words with letters
    caps_lock = bool(cased) and all(w == w.upper() for w in cased)
    out = []
    for word in raw:
        capital = (not caps_lock and word.lower() != word.upper() and word == word.upper()
                   and sum(c.isalpha() for c in word) >= 2)
        out.extend((token, capital) for token in tokens(word))
    return out


def query_terms(text: str, language: str | None = None) -> tuple[list[str], list[str]]:
    """(the query's content words, distinct, in order; the adjacent pairs of them, "thermal head").

    Function words (``function_words`` of ``language``, detected from ``text`` when not given) are left out,
    but not one the user wrote in capitals (``query_words``: "CAN bus controller", "ART module"); a pair is two words adjacent in the query, neither of them a function word ("pressed against the platen
    roller" gives "platen roller" only)."""
    dropped = function_words(language if language is not None else query_language(text))
    words = [(w, capital or w not in dropped) for w, capital in query_words(text)[:MAX_TERMS]]
    kept = [w for w, content in words if content]
    pairs = [f"{a} {b}" for (a, a_content), (b, b_content) in zip(words, words[1:])
             if a != b and a_content and b_content]
    return list(dict.fromkeys(kept)), list(dict.fromkeys(pairs))


def match_expression(text: str, pairs: bool = True) -> str | None:
    """An FTS5 query for the content words of ``text`` (``query_terms``): each distinct word quoted (no FTS
    syntax gets through), and with ``pairs`` each two adjacent words as a phrase ("thermal head"), all joined by
    OR: BM25 sums the terms a figure has, so a figure that says the name of the part outranks one that has its
    words apart. None when no word is left (no words, or function words only: "the a by")."""
    words, adjacent = query_terms(text)
    if not words:
        return None
    terms = words + (adjacent if pairs else [])
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
    report.removed += collection.lexical.drop_orphans()  # rows of figures deleted by SQL, which FTS5 cannot cascade
    return report


def matched_words(query: str, document: str) -> list[str]:
    """The query's content words (``query_terms``: no function words) that ``document`` contains (folded), in
    the query's order."""
    folded = fold(document)  # one search per query word: tokenising long linked texts cost more
    return [w for w in query_terms(query)[0] if re.search(rf"\b{re.escape(w)}\b", folded)]


def query_weight(top_cosine: float | None) -> float:
    """The BM25 share of one word query's text channel: 0 when the dense list's best figure has a text cosine of
    at least ``DENSE_CONFIDENT`` (a near paraphrase of the query is already first), else ``LEXICAL_WEIGHT``;
    ``top_cosine`` None (an empty dense list) counts as not confident."""
    if top_cosine is not None and top_cosine >= DENSE_CONFIDENT:
        return 0.0
    return LEXICAL_WEIGHT


def other_language(figure_language: str | None, language: str | None) -> bool:
    """Whether BM25 cannot judge a figure for a query in ``language``: both languages known and different (an
    English query's words are not in a German figure's text, and their absence says nothing about it)."""
    return bool(figure_language and language and figure_language != language)


def collection_languages(collection: Collection) -> list[str]:
    """The known languages of the drawings that have a lexical row, most drawings first (``["en", "de"]``)."""
    counts: Counter[str] = Counter()
    for lang, n in collection.lexical.language_counts().items():
        if normalise_code(lang):
            counts[normalise_code(lang)] += n
    return [lang for lang, _ in counts.most_common()]


def on_by_default(languages: list[str]) -> bool:
    """Whether a word query that does not say uses the lexical part, in a collection whose drawings with text are
    in ``languages`` (``collection_languages``): ``LEXICAL_BY_DEFAULT``, but not where they are in two or more
    languages. Words are matched in one language only: an English query's BM25 list holds English figures, and
    one word they share with it ("housing") lifts them over the German figure that the multilingual text model
    ranks first. Asked for (``lexical=True``), it runs there too, figures in other languages keeping their cosine."""
    return LEXICAL_BY_DEFAULT and len(languages) <= 1


def figure_languages(collection: Collection, figure_ids) -> dict[str, str | None]:
    """figure id -> its patent's language code ("de"), None where unknown."""
    return {f: normalise_code(lang) for f, lang in collection.lexical.languages(figure_ids).items()}


def matched_language(languages: list[str | None]) -> str | None:
    """The language most of the BM25 list's figures are in (their patents' languages; unknown ones not counted):
    a query too short to tell its language ("Thermokopf") is in the language whose texts hold its words. None on
    a tie or when no language is known."""
    counts = Counter(lang for lang in languages if lang).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def fused_score(cosine: float, bm25: float, weight: float) -> float:
    """A figure's text score: ``(1 - weight) * cosine + weight * bm25`` (``bm25`` normalised to the list's best)."""
    return (1.0 - weight) * cosine + weight * bm25


def fuse_text(dense: list[tuple[str, float]], lexical: list[tuple[str, float]], cosine: dict[str, float],
              weight: float = LEXICAL_WEIGHT, others: set[str] | frozenset[str] = frozenset(),
              ) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """(the fused text list, best first; each listed figure's normalised BM25).

    ``dense``: (figure, cosine) best first; ``lexical``: (figure, BM25) best first; ``cosine``: the
    cosine of lexical candidates missing from ``dense`` (a figure without a text vector counts 0).
    ``others``: figures BM25 cannot judge (``other_language``): each keeps its cosine (share 0 for it), which
    is what its fused score would be if its normalised BM25 equalled its cosine; the caller leaves them out of
    ``lexical``. Ties are broken by figure id."""
    top = max((s for _, s in lexical), default=0.0)
    bm25 = {f: (s / top if top > 0 else 0.0) for f, s in lexical}
    cosines = dict(dense)
    for figure_id, _ in lexical:
        cosines.setdefault(figure_id, cosine.get(figure_id, 0.0))
    fused = [(f, c if f in others else fused_score(c, bm25.get(f, 0.0), weight)) for f, c in cosines.items()]
    fused.sort(key=lambda item: (-round(item[1], 9), item[0]))
    return fused, bm25
