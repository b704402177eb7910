"""Sentence splitting for patent descriptions.

A regex splitter that knows the abbreviations of patent prose: "FIG. 3", "FIGS. 1 and 2",
"e.g.", "i.e.", "No. 5", "U.S. Pat. No.", "approx.", reference ranges and decimals.
``split('.')`` would cut "as shown in FIG. 1" in two. pysbd 0.3.4 was tried: it split
"turns approx. 5 mm" and "U.S. Pat. No. 5,123,456" in two, so this small rule set is used.
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
# a sentence ends at . ! ? (optionally followed by a closing quote or bracket), then space
_BOUNDARY = re.compile(r"[.!?][\"'”’)\]]?\s+")
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")


def _is_boundary(text: str, end: int, next_start: int) -> bool:
    """Whether the punctuation ending at ``end`` (exclusive) really ends a sentence."""
    nxt = text[next_start : next_start + 1]
    if not nxt:
        return True
    if not (nxt.isupper() or nxt.isdigit() or nxt in "\"'“(["):
        return False  # "e.g. the roller", "approx. 5 mm" continue the sentence
    if text[end - 1] != ".":
        return True
    match = _WORD_BEFORE.search(text[:end].rstrip("\"'”’)]"))
    if match is None:
        return True
    word = match.group(1).lower()
    if word in ABBREVIATIONS or word.rstrip(".") in ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isalpha() and nxt.isupper():
        return False  # an initial: "J. Smith", "the part A. The" is rarer than initials in citations
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
        return False  # "e.g", "i.e", "U.S" written with inner periods
    return True


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (whitespace collapsed; empty input gives [])."""
    text = re.sub(r"\s+", " ", text or "").strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end() - len(match.group()) + len(match.group().rstrip())
        if _is_boundary(text, end, match.end()):
            piece = text[start:end].strip()
            if piece:
                sentences.append(piece)
            start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def description_sentences(patent: str, paragraphs: Iterable[Paragraph]) -> list[Sentence]:
    """The sentences of a patent's description paragraphs, numbered from 0 in reading order."""
    out: list[Sentence] = []
    for paragraph in paragraphs:
        if paragraph.section != Section.DESCRIPTION:
            continue
        for text in split_sentences(paragraph.text):
            out.append(Sentence(patent=patent, index=len(out), text=text, paragraph_number=paragraph.number))
    return out
