"""Sentence splitting for patent descriptions.

A regex splitter that knows the abbreviations of patent prose: "FIG. 3", "FIGS. 1 and 2",
"e.g.", "i.e.", "No. 5", "U.S. Pat. No.", "approx.", reference ranges and decimals.
``split('.')`` would cut "as shown in FIG. 1" in two. pysbd 0.3.4 was tried: it split
"turns approx. 5 mm" and "U.S. Pat. No. 5,123,456" in two, so this small rule set is used.

German and French (``lang="de"``, ``"fr"``) add their own abbreviations ("z. B.", "bzw.",
"vgl.", "usw.", "Abb.", "p. ex.", "cf.", "env.") and one rule each: a German ordinal before a
month ("am 1. Januar") ends nothing; English (the default) is read exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from figsearch.records import Paragraph, Section, Sentence

# lower-cased words that end with a period without ending a sentence
ABBREVIATIONS = frozenset(
    """fig figs no nos e.g i.e eg ie etc approx ca cf vs viz al et resp incl ref refs eq eqs
    pat appl ser u.s u.s.a jp ep wo de pct mr mrs dr prof st inc ltd co corp jpn ger
    sec sect ch art para paras pp vol min max temp dia pg col cols ex exs""".split()
)
#: per language, the abbreviations it adds to the English ones (German nouns are capitalised,
#: so "bzw. Kunststoff" must be known; "z. B." and "d. h." are single letters and need nothing)
LANGUAGE_ABBREVIATIONS = {
    "de": frozenset(
        """abb bzw vgl usw ggf evtl bspw sog insb insbes inkl einschl ca zb z.b d.h u.a u.u o.a o.g s.o s.u
        nr tab gl abs anm bsp pos kap bd hrsg jh mio mrd std gem entspr ggü bezügl hinsichtl
        ausf fa ff sek""".split()
    ),
    "fr": frozenset(
        """p ex p.ex cf env fig figs réf éq éqs chap vol nb mme mlle etc cad c.-à-d c.à.d resp
        art al sq suiv coll dir ibid op cit""".split()
    ),
}
# "usw." and "etc." end a sentence only when a word that starts sentences follows them
_ENDING_ABBREVIATIONS = frozenset({"usw", "etc"})
_SENTENCE_STARTS = re.compile(
    r"(?:Der|Die|Das|Dies|Diese|Dieser|Dieses|Ein|Eine|Es|Er|Sie|Im|In|Bei|Nach|Dabei|Damit|Hierbei|Ferner|Zudem|"
    r"Außerdem|Weiterhin|Le|La|Les|Il|Elle|Ils|Elles|Un|Une|Ce|Cet|Cette|Ces|Dans|Selon|Par|Pour|En|De|On)\b"
)
_GERMAN_MONTHS = re.compile(
    r"(?:Januar|Jänner|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember)\b"
)
# a sentence ends at . ! ? (optionally followed by a closing quote or bracket), then space
_BOUNDARY = re.compile(r"[.!?][\"'”’)\]]?\s+")
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")


def _is_boundary(text: str, end: int, next_start: int, lang: str = "en") -> bool:
    """Whether the punctuation ending at ``end`` (exclusive) really ends a sentence."""
    nxt = text[next_start : next_start + 1]
    if not nxt:
        return True
    if not (nxt.isupper() or nxt.isdigit() or nxt in "\"'“(["):
        return False  # "e.g. the roller", "approx. 5 mm" continue the sentence
    if text[end - 1] != ".":
        return True
    stop = end
    while stop > 0 and text[stop - 1] in "\"'”’)]":
        stop -= 1
    # the word before the period holds no space: searching from the last space before it finds what
    # a search of the whole text up to it finds, without scanning (and copying) that text at every
    # period, which made long paragraphs quadratic
    match = _WORD_BEFORE.search(text, text.rfind(" ", 0, stop) + 1, stop)
    if match is None:
        return True
    word = match.group(1).lower()
    extra = LANGUAGE_ABBREVIATIONS.get(lang)
    if extra is not None and word.rstrip(".") in _ENDING_ABBREVIATIONS:
        return bool(_SENTENCE_STARTS.match(text, next_start))
    if word in ABBREVIATIONS or word.rstrip(".") in ABBREVIATIONS:
        return False
    if extra is not None and (word in extra or word.rstrip(".") in extra):
        return False
    if lang == "de" and word.isdigit() and len(word) <= 2 and _GERMAN_MONTHS.match(text, next_start):
        return False  # "am 1. Januar 1998": a German ordinal
    if len(word) == 1 and word.isalpha() and nxt.isupper():
        return False  # an initial: "J. Smith", "the part A. The" is rarer than initials in citations
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
        return False  # "e.g", "i.e", "U.S" written with inner periods
    return True


def split_sentences(text: str, lang: str = "en") -> list[str]:
    """Split ``text`` into sentences (whitespace collapsed; empty input gives []).

    ``lang``: the text's language ("en", "de", "fr"); any other is read with the English rules.
    """
    text = re.sub(r"\s+", " ", text or "").strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end() - len(match.group()) + len(match.group().rstrip())
        if _is_boundary(text, end, match.end(), lang):
            piece = text[start:end].strip()
            if piece:
                sentences.append(piece)
            start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def description_sentences(patent: str, paragraphs: Iterable[Paragraph], lang: str | None = None) -> list[Sentence]:
    """The sentences of a patent's description paragraphs, numbered from 0 in reading order.

    Each paragraph is split by the rules of its own language (``Paragraph.lang``), else of
    ``lang``, else English's.
    """
    out: list[Sentence] = []
    for paragraph in paragraphs:
        if paragraph.section != Section.DESCRIPTION:
            continue
        for text in split_sentences(paragraph.text, paragraph.lang or lang or "en"):
            out.append(Sentence(patent=patent, index=len(out), text=text, paragraph_number=paragraph.number))
    return out
