"""The language of a document and of each of its paragraphs.

An office's XML usually says it (``lang="de"`` on ``ep-patent-document``, ``description`` and
each ``claims`` block); where it does not, the language is detected from the text. Detection
is a small, dependency-free stop-word count: in a paragraph of patent prose the articles,
prepositions and conjunctions of its language outnumber every other language's many times
over ("der", "die", "und", "mit" against "the", "and", "with"). Text in a script of its own
(Japanese kana, Chinese, Korean, Cyrillic, Greek, Arabic) is told by its script.

figsearch links reference signs in English, German and French (``SUPPORTED``); a document in
any other language keeps its text (the multilingual text encoder embeds it) and gets a note.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from figsearch.records import Paragraph, Patent, Section

log = logging.getLogger(__name__)

#: languages whose sentences, reference signs and glossary figsearch reads
SUPPORTED = ("en", "de", "fr")
#: the language assumed when nothing says otherwise and detection is unsure
DEFAULT = "en"

# Frequent function words, chosen to be rare in the other languages listed: words several
# of them share ("de", "en", "in", "a") are left out, so that they decide nothing.
_STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        """the of and to is are be by with which that this for from at as an or it its
        said wherein has have been being can may when where between into such each""".split()
    ),
    "de": frozenset(
        """der die das des dem den und ist sind wird werden mit von zu zum zur auf durch eine einer
        eines einem einen nicht sich bei aus oder auch dass wobei welche welcher ein im vom
        über unter zwischen kann""".split()
    ),
    "fr": frozenset(
        """le la les des du et est sont une un dans pour par sur avec qui que au aux ou ce cette
        ces son sa ses entre être peut lequel laquelle lesquels dont selon également""".split()
    ),
    "es": frozenset(
        """el los las del y es son una por para con que se su sus al como está entre cual puede según
        dicho dicha""".split()
    ),
    "it": frozenset(
        """il lo gli della delle dello degli nel nella e è sono una uno per con che si suo sua
        come tra detto detta può""".split()
    ),
    "nl": frozenset(
        """het een van zijn met voor aan door dat wordt worden bij uit als tussen kan welke""".split()
    ),
    "pt": frozenset(
        """os do da dos das é são uma um em por para com que se seu sua como entre pode dito dita ao""".split()
    ),
}
_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
# (script, language) by Unicode block; kana decides Japanese even among Chinese characters
_SCRIPTS = (
    (re.compile(r"[\u3040-\u30ff]"), "ja"),
    (re.compile(r"[\uac00-\ud7af]"), "ko"),
    (re.compile(r"[\u4e00-\u9fff]"), "zh"),
    (re.compile(r"[\u0400-\u04ff]"), "ru"),
    (re.compile(r"[\u0370-\u03ff]"), "el"),
    (re.compile(r"[\u0600-\u06ff]"), "ar"),
)
#: fewer stop words than this and detection says nothing (a title, a formula, a number list)
MIN_HITS = 3


def normalise_code(code: str | None) -> str | None:
    """``"DE"``, ``"de-DE"``, ``" fr "`` -> ``"de"``, ``"de"``, ``"fr"``; empty -> None."""
    code = (code or "").strip().lower().replace("_", "-")
    if not code:
        return None
    return code.split("-")[0] or None


def detect(text: str | None) -> str | None:
    """The language of ``text`` by its script or its stop words, or None when unsure."""
    text = text or ""
    letters = sum(ch.isalpha() for ch in text)
    if not letters:
        return None
    for pattern, lang in _SCRIPTS:
        found = len(pattern.findall(text))
        if found and found >= 0.2 * letters:
            return lang
    # word boundaries: "l'arbre" and "d'un" count as "le"/"de" articles in French
    words = [w.lower() for w in _WORDS.findall(text.replace("’", "'"))]
    counts: Counter[str] = Counter()
    for word in words:
        if "'" in word:
            head = word.split("'", 1)[0]
            if head in ("l", "d", "qu", "n", "s", "c", "j"):
                counts["fr"] += 1
            continue
        if len(word) < 2:
            continue  # single letters are variables and sequence codes more often than words
        for lang, stop in _STOP_WORDS.items():
            if word in stop:
                counts[lang] += 1
    if not counts:
        return None
    (best, hits), *rest = counts.most_common(2) + [("", 0)]
    runner_up = rest[0][1]
    if hits < MIN_HITS or hits < 1.5 * runner_up:
        return None
    return best


def is_supported(lang: str | None) -> bool:
    """Whether figsearch links reference signs in ``lang`` (None counts as the default, English)."""
    return (lang or DEFAULT) in SUPPORTED


def linking_language(lang: str | None) -> str:
    """The rules linking uses for text in ``lang``: its own when supported, else English's."""
    return lang if lang in SUPPORTED else DEFAULT


def annotate(patent: Patent, declared: str | None = None) -> Patent:
    """Fill in ``lang`` of the patent and of each paragraph where the source did not say it.

    ``declared`` is the language the source states for the whole document (an XML root's
    ``lang``); a reader that only assumes a language (a PDF, a folder of images) passes None,
    so that the text decides. A paragraph keeps the language its source gave it, else takes
    the declared one, else its own text decides when it is long enough to tell, else the
    document's. Without a declaration the document's language is the one most of its
    description is in (else its title, abstract and claims decide; else it stays None).
    """
    declared = normalise_code(declared) or normalise_code(patent.lang)
    for paragraph in patent.paragraphs:
        paragraph.lang = normalise_code(paragraph.lang) or declared or detect(paragraph.text)
    if declared is None:
        described = Counter(
            p.lang for p in patent.paragraphs if p.lang and p.section == Section.DESCRIPTION
        ) or Counter(p.lang for p in patent.paragraphs if p.lang)
        if described:
            declared = described.most_common(1)[0][0]
        else:
            declared = detect(" ".join(filter(None, [patent.title, patent.abstract, *patent.claims])))
    patent.lang = declared
    for paragraph in patent.paragraphs:
        if paragraph.lang is None:
            paragraph.lang = declared
    note = language_note(patent)
    if note:
        log.info("%s: %s", patent.publication_number, note)
    return patent


def language_note(patent: Patent) -> str | None:
    """What a user should know about a document's languages, or None when all is supported."""
    unsupported = sorted({lang for lang in [patent.lang, *(p.lang for p in patent.paragraphs)]
                          if lang and not is_supported(lang)})
    if not unsupported:
        return None
    return (f"text in {', '.join(unsupported)} (reference signs are linked in {', '.join(SUPPORTED)} only): "
            f"its text is indexed as it is, and its sentences are split and linked with the English rules")


def description_language(paragraphs: Iterable[Paragraph], default: str | None = None) -> str:
    """The language most description paragraphs are in: the one to split and link them with."""
    counts = Counter(p.lang for p in paragraphs if p.section == Section.DESCRIPTION and p.lang)
    if counts:
        return counts.most_common(1)[0][0]
    return default or DEFAULT


@dataclass
class LanguageCounts:
    """How many documents and paragraphs of a collection are in each language (``figsearch info``)."""

    documents: Counter = field(default_factory=Counter)
    paragraphs: Counter = field(default_factory=Counter)

    @property
    def unsupported_documents(self) -> int:
        """Documents in a language linking does not read (unknown languages not included)."""
        return sum(n for lang, n in self.documents.items() if lang != "unknown" and not is_supported(lang))

    def as_dict(self) -> dict:
        return {
            "documents": dict(sorted(self.documents.items())),
            "paragraphs": dict(sorted(self.paragraphs.items())),
            "unsupported_documents": self.unsupported_documents,
        }

    def describe(self) -> str:
        """``"en 40, de 6, fr 1 (1 document in a language without sign linking: ja)"``."""
        parts = ", ".join(f"{lang} {n}" for lang, n in self.documents.most_common())
        others = sorted(lang for lang in self.documents if lang != "unknown" and not is_supported(lang))
        if others:
            parts += (f" ({self.unsupported_documents} document(s) in a language without sign linking: "
                      f"{', '.join(others)})")
        return parts or "none"


def count_languages(documents: Iterable[tuple[str | None, Iterable[str | None]]]) -> LanguageCounts:
    """Count languages from ``(document lang, [paragraph lang, ...])`` pairs, e.g. rows of a store.

    A missing language counts as ``"unknown"``.
    """
    counts = LanguageCounts()
    for lang, paragraph_langs in documents:
        counts.documents[normalise_code(lang) or "unknown"] += 1
        for paragraph_lang in paragraph_langs:
            counts.paragraphs[normalise_code(paragraph_lang) or "unknown"] += 1
    return counts


def language_counts(patents: Iterable[Patent]) -> LanguageCounts:
    """Count the languages of ``patents`` (as annotated) and of their paragraphs."""
    return count_languages((p.lang or p.language, [q.lang for q in p.paragraphs]) for p in patents)


def counts_from_rows(documents: Iterable[tuple[str | None, int]],
                     paragraphs: Iterable[tuple[str | None, int]]) -> LanguageCounts:
    """Language counts from ``(language, count)`` rows; a missing language counts as ``"unknown"``."""
    counts = LanguageCounts()
    for lang, n in documents:
        counts.documents[normalise_code(lang) or "unknown"] += n
    for lang, n in paragraphs:
        counts.paragraphs[normalise_code(lang) or "unknown"] += n
    return counts


def collection_language_counts(collection) -> LanguageCounts:
    """The languages of a collection's documents and paragraphs (figsearch.store.Collection), read only."""
    return counts_from_rows(*collection.patents.language_rows())
