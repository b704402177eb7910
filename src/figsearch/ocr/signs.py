"""From words read in a drawing to reference signs: numerals ("14a") and figure labels ("FIG. 3").

Kept: numerals of 1–4 digits with an optional letter, prime or ``-n`` suffix (``12``,
``14a``, ``14'``, ``102-1``) and figure labels (``FIG. 3``, ``Fig. 3A``, ``FIGURE 3``).
Dropped: sheet counters ("2/7", "Sheet 2 of 7"), dates and years of a header, page
headers ("Patent Application Publication"), decimals, and words that are not signs.
"""

from __future__ import annotations

import re

from figsearch.ocr.base import TextBox
from figsearch.records import ReferenceSign

NUMERAL = "numeral"
FIGURE_LABEL = "figure_label"

_PRIMES = "'′’`´"
_NUMERAL = re.compile(r"^(?P<num>[1-9]\d{0,3})(?P<suffix>[a-z]|['′’`´]{1,2}|-[1-9]\d?)?$")
_LABEL_WORD = re.compile(r"^(FIG|FIGS|FIGURE|FIGURES|Fig|Figs|Figure|Figures|fig|F[1l|]G)[.,]?$")
_LABEL_MERGED = re.compile(
    r"^(?:FIG|FIGURE|Fig|Figure)[.,]?\s?(?P<num>[1-9]\d{0,2})(?P<suffix>[A-Za-z]|['′’]|-\d{1,2})?\.?$"
)
_LABEL_NUMBER = re.compile(r"^(?P<num>[1-9]\d{0,2})(?P<suffix>[A-Za-z]|['′’]|-\d{1,2})?\.?$")
_DECIMAL = re.compile(r"^[-+]?\d+[.,]\d+%?$|^[-+]?\d+%$")
_COUNTER = re.compile(r"^\d{1,3}/\d{1,3}$")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
_HEADER_WORDS = re.compile(r"^(sheet|patent|publication|application|pub\.?|jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)\.?,?$", re.I)
# OCR confusions that turn digits into letters inside an otherwise numeric word
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8", "Z": "2"})
_STRIP = "()[]{}.,;:\"“”~_|-—–"


def normalise_numeral(text: str) -> str | None:
    """The canonical form of a reference numeral read as ``text``, or None if it is not one."""
    word = text.strip().strip(_STRIP)
    if not word or len(word) > 8:
        return None
    match = _NUMERAL.match(word)
    if match is None and any(c.isdigit() for c in word):
        # fix look-alikes in the numeric head only, never in a trailing suffix letter
        head = re.match(r"^[0-9OoDIlSBZ|]+", word)
        if head and sum(c.isdigit() for c in head.group()) >= max(1, len(head.group()) - 1):
            word = head.group().translate(_DIGIT_LOOKALIKES) + word[head.end():]
            match = _NUMERAL.match(word)
    if match is None:
        return None
    suffix = match.group("suffix") or ""
    if suffix and suffix[0] in _PRIMES:
        suffix = "'" * len(suffix)
    return match.group("num") + suffix


#: a label line as the label pass reads it, italic and large lettering included: "FIG. 43", "Fig.5",
#: "ig. 2" (an italic F lost), "F1G 3A", "Figure 12", "FIG. 3 (Prior Art)"
_LABEL_LINE = re.compile(
    r"^[^\w]*(?:[FEP]\s?)?[Il1|!i]\s?[Gg]\s?(?:ure|URE)?\s?[.,:;·'`]*\s*(?P<num>[1-9]\d{0,2})\s?(?P<suffix>[A-Za-z](?![A-Za-z]))?"
    r"\s*[.,]?\s*(?:\(?\s*prior\s+art\s*\)?)?[^\w]*$",
    re.IGNORECASE,
)


def match_label_line(text: str) -> str | None:
    """``FIG. n`` when a whole line of text reads as a figure label (tolerant of italic misreadings)."""
    match = _LABEL_LINE.match(text.strip())
    if match is None:
        return None
    return format_label(match.group("num"), match.group("suffix"))


def normalise_label(text: str) -> str | None:
    """``Fig.3a`` -> ``FIG. 3A``; None when ``text`` is not a figure label."""
    match = _LABEL_MERGED.match(text.strip())
    if match is None:
        return None
    return format_label(match.group("num"), match.group("suffix"))


def format_label(number: str, suffix: str | None) -> str:
    suffix = (suffix or "").upper().replace("′", "'").replace("’", "'")
    return f"FIG. {int(number)}{suffix}"


def _union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _header_lines(words: list[TextBox]) -> set[int]:
    """Lines that are a page header ("Patent Application Publication Jun. 26, 2025 Sheet 3 of 14")."""
    by_line: dict[int, list[str]] = {}
    for w in words:
        by_line.setdefault(w.line, []).append(w.text)
    headers = set()
    for line, texts in by_line.items():
        hits = sum(bool(_HEADER_WORDS.match(t)) for t in texts)
        joined = " ".join(texts).lower()
        if hits >= 2 or "sheet" in joined and " of " in f" {joined} ":
            headers.add(line)
    return headers


#: a one-digit numeral must be read this surely: dashes, dots and strokes of a drawing are read as
#: "1", "4" or "7" at 0.4-0.8, printed single digits at 0.9 and more (benchmarks/ocr_benchmark.py)
MIN_SINGLE_DIGIT_CONFIDENCE = 0.85


def parse_signs(words: list[TextBox], min_confidence: float = 0.4,
                min_single_digit: float = MIN_SINGLE_DIGIT_CONFIDENCE) -> list[ReferenceSign]:
    """Reference numerals and figure labels among ``words``, each with its box, in reading order."""
    headers = _header_lines(words)
    signs: list[ReferenceSign] = []
    used: set[int] = set()
    for i, word in enumerate(words):
        if i in used or word.line in headers:
            continue
        text = word.text.strip()
        # a figure label, either in one word ("Fig.3") or as "FIG." followed by its number on the same line
        label = normalise_label(text)
        if label is None and _LABEL_WORD.match(text) and i + 1 < len(words):
            nxt = words[i + 1]
            number = _LABEL_NUMBER.match(nxt.text.strip())
            if nxt.line == word.line and number and nxt.rotation == word.rotation:
                label = format_label(number.group("num"), number.group("suffix"))
                used.add(i + 1)
                word = TextBox(text + " " + nxt.text, _union(word.box, nxt.box), min(word.confidence, nxt.confidence), word.line, word.rotation)
        if label is not None:
            signs.append(ReferenceSign(label, FIGURE_LABEL, tuple(word.box), round(word.confidence, 3)))
            continue
        if word.confidence < min_confidence or _COUNTER.match(text) or _DATE.match(text):
            continue
        numeral = normalise_numeral(text)
        if numeral is not None and not numeral[1:2].isdigit() and word.confidence < min_single_digit:
            continue  # a lone digit read unsurely: most often a dash or a stroke of the drawing
        if numeral is not None:
            signs.append(ReferenceSign(numeral, NUMERAL, tuple(word.box), round(word.confidence, 3)))
    # a sheet full of decimals and percentages is a table or a chart: its integers are data, not signs
    decimals = sum(bool(_DECIMAL.match(w.text.strip())) for w in words)
    numerals = sum(s.kind == NUMERAL for s in signs)
    if decimals >= 5 and decimals >= 0.3 * numerals:
        signs = [ReferenceSign(s.text, "number", s.box, s.confidence) if s.kind == NUMERAL else s for s in signs]
    return signs


def sign_texts(signs: list[ReferenceSign], kind: str = NUMERAL) -> list[str]:
    """Distinct sign texts of one kind, in numeric order (``2, 10, 14, 14a``)."""
    def key(text: str):
        head = re.match(r"\d+", text)
        return (int(head.group()) if head else 0, text)

    return sorted({s.text for s in signs if s.kind == kind}, key=key)


UNLINKED = "number"  # the pipeline's kind for a numeral that the description does not use


def plausible_signs(signs: list[ReferenceSign], cited: set[str] | None) -> list[ReferenceSign]:
    """Numerals that the patent's description does not cite become kind ``number`` (unlinked, lower
    trust: shown apart, never linked). ``cited``: the description's sign vocabulary; an empty set
    (a design patent, or a text citing no numeral) leaves no numeral linked; None (no patent text,
    e.g. an uploaded drawing) keeps every numeral as read."""
    if cited is None:
        return list(signs)
    return [ReferenceSign(s.text, UNLINKED, s.box, s.confidence) if s.kind == NUMERAL and s.text not in cited else s
            for s in signs]
