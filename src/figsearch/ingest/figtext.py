"""The "brief description of the drawings": which sentence describes which figure.

Patents list their figures in sentences such as "FIG. 3 is a top view thereof;",
"FIGS. 4A and 4B are sections ...", "Fig. 2: shows ..." or, for a one-figure design,
"The FIGURE is a perspective view ...". This module finds those sentences and, where
the mapping from drawing sheets to figures is evident, sets each figure's label and
description. OCR of the labels printed on the sheets may refine it later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from figsearch.records import FigureRole, Paragraph, SourceImage

#: headings under which the brief description stands (EN, DE, FR)
BRIEF_HEADING = re.compile(
    r"brief description|description of (the )?(drawings?|figures?|views?)|\bdrawings?\b|\bfigures?\b"
    r"|zeichnung|figuren|dessins?",
    re.I,
)

_NUM = r"\d{1,3}(?:\s?\(?[A-Za-z]\)?(?![A-Za-z]))?"
_LIST = rf"{_NUM}(?:\s*(?:,|;|&|and|to|through|-|–|—|or)\s*(?:FIGS?\.?\s*)?{_NUM})*"
_START = re.compile(
    rf"^\s*(?:(?:in\s+)?the\s+)?(?P<word>FIG(?:URE)?S?)\s*\.?\s*(?P<nums>{_LIST})?\s*(?P<rest>[:,]?\s*\S.*)$",
    re.I | re.S,
)
_VERB = re.compile(
    r"^[:,]?\s*(?:is|are|shows?|illustrates?|depicts?|represents?|presents?|provides?|schematically|"
    r"diagrammatically|gives|displays?|views?|a\b|an\b|the\b)",
    re.I,
)
# Hague-system designs number "reproductions" instead: "1.1 : Perspective", "reproduction 1.2 is a front view"
_HAGUE = re.compile(r"^\s*(?:reproductions?\s+)?(?P<num>\d{1,2}\.\d{1,3})\s*(?::\s*\S|\s+(?:is|are|shows?)\b)", re.I)
# where one figure's sentence ends and the next begins inside a paragraph; US front pages (PDF text
# layers) also run the heading into the first one ("... described. DESCRIPTION FIG. 1 is ..."), space
# their punctuation as OCR read it ("view thereof ;and , FIG . 9 is ...") or lose it ("a left view
# thereof FIG. 5 is ...")
_SPLIT = re.compile(
    r"(?:;\s*|\.\s+|(?-i:\bDESCRIPTION)\s+|(?<=\bthereof)\s+)(?:and\s*,?\s+)?"
    r"(?=(?:the\s+)?FIG(?:URE)?S?\b|reproductions?\s+\d)",
    re.I,
)
# the end of the first sentence (not the dot of "FIG." or "No.")
_SENTENCE_END = re.compile(r"(?<!\bFIG)(?<!\bFIGS)(?<!\bNo)(?<!\bNos)(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z(\[])")
_TRAILER = re.compile(r"(?:[\s;,.]|\band\b|\bor\b)+$", re.I)


@dataclass(frozen=True)
class FigureSentence:
    label: str  # "FIG. 3", "FIG. 4A", "FIGURE"
    sentence: str


def _expand(nums: str) -> list[str]:
    """"1 and 2" -> [1, 2]; "3A-3C" -> [3A, 3B, 3C]; "1 to 4" -> [1, 2, 3, 4]."""
    tokens = re.findall(rf"{_NUM}|to|through|-|–|—", nums, flags=re.I)
    out: list[str] = []
    pending_range = False
    for token in tokens:
        if token.lower() in ("to", "through", "-", "–", "—"):
            pending_range = bool(out)
            continue
        value = re.sub(r"[\s()]", "", token).upper()
        if pending_range and out:
            out.extend(_range(out[-1], value))
        else:
            out.append(value)
        pending_range = False
    seen: list[str] = []
    for value in out:
        if value not in seen:
            seen.append(value)
    return seen


def _range(start: str, end: str) -> list[str]:
    ms, me = re.match(r"(\d+)([A-Z]?)$", start), re.match(r"(\d+)([A-Z]?)$", end)
    if not ms or not me:
        return [end]
    if ms.group(1) == me.group(1) and ms.group(2) and me.group(2) and ms.group(2) < me.group(2):
        return [f"{ms.group(1)}{chr(c)}" for c in range(ord(ms.group(2)) + 1, ord(me.group(2)) + 1)]
    a, b = int(ms.group(1)), int(me.group(1))
    if not ms.group(2) and not me.group(2) and a < b <= a + 50:
        return [str(n) for n in range(a + 1, b + 1)]
    return [end]


def sentences_of(text: str) -> list[FigureSentence]:
    """The figure-describing sentences of one paragraph, in order."""
    out: list[FigureSentence] = []
    for part in _SPLIT.split(text):
        hague = _HAGUE.match(part)
        if hague:
            sentence = _TRAILER.sub("", _SENTENCE_END.split(part.strip(), maxsplit=1)[0]) + "."
            out.append(FigureSentence(hague.group("num"), sentence))
            continue
        match = _START.match(part)
        if not match or not _VERB.match(match.group("rest") or ""):
            continue
        sentence = _SENTENCE_END.split(part.strip(), maxsplit=1)[0]
        sentence = _TRAILER.sub("", sentence) + "."
        nums = match.group("nums")
        if nums:
            for number in _expand(nums):
                out.append(FigureSentence(f"FIG. {number}", sentence))
        elif match.group("word").upper() == "FIGURE":
            out.append(FigureSentence("FIGURE", sentence))
    return out


def figure_sentences(paragraphs: list[Paragraph]) -> list[FigureSentence]:
    """Figure sentences of the brief description; the whole text when no such section is marked.

    Only the first sentence per label counts, so that "FIG. 3 shows ..." in the detailed
    description does not replace the brief description of FIG. 3.
    """
    brief = [p for p in paragraphs if p.heading and BRIEF_HEADING.search(p.heading)]
    found: dict[str, FigureSentence] = {}
    for paragraph in brief or paragraphs:
        for item in sentences_of(paragraph.text):
            found.setdefault(item.label, item)
    if brief and not found:
        for paragraph in paragraphs:
            for item in sentences_of(paragraph.text):
                found.setdefault(item.label, item)
    return list(found.values())


def assign(images: list[SourceImage], sentences: list[FigureSentence]) -> bool:
    """Give drawings their label and sentence when the mapping is evident; True if done.

    Evident means: as many described figures as drawing images (one figure per sheet,
    in order), or images that already carry a label (EP ``<figure num="3">``).
    """
    drawings = [image for image in images if image.role == FigureRole.DRAWING]
    by_label = {s.label: s for s in sentences}
    labelled = [image for image in drawings if image.label]
    if labelled:
        for image in labelled:
            match = by_label.get(image.label)
            if match and not image.description:
                image.description = match.sentence
        return True
    if drawings and len(sentences) == len(drawings):
        for image, item in zip(drawings, sentences):
            image.label = item.label
            image.description = item.sentence
        return True
    return False
