"""From words read in a drawing to reference signs: numerals ("14a") and figure labels ("FIG. 3").

Kept: numerals of 1–4 digits with an optional letter, prime or ``-n`` suffix (``12``,
``14a``, ``14'``, ``102-1``; an upper-case ``A``-``H`` after two digits or more: ``114A``, see
``UPPER_SUFFIXES``; the last of a numbered series after two digits or more: ``104-N``, see
``DASH_LETTERS``) and figure labels (``FIG. 3``, ``Fig. 3A``, ``FIGURE 3``).
Dropped: sheet counters ("2/7", "Sheet 2 of 7"), dates and years of a header, page
headers ("Patent Application Publication"), decimals, and words that are not signs.
"""

from __future__ import annotations

import re

from figsearch.ocr.axes import tick_words, value_words
from figsearch.ocr.base import TextBox
from figsearch.records import ReferenceSign

NUMERAL = "numeral"
FIGURE_LABEL = "figure_label"

_PRIMES = "'′’`´"
#: upper-case letters a numeral may end with: the letters patents use for variants of one part ("114A",
#: "132D"); only after two digits or more, so that "3D", "5G" or a label's "1A" whose "FIG." was lost
#: are no numerals, and not K, M, V, W (values: "10K", "12V")
UPPER_SUFFIXES = "ABCDEFGH"
#: upper-case suffixes that are also digit look-alikes ("13B" may be "138", "10D" "100"): kept as a
#: letter only when the sheet prints the same number with another upper-case suffix ("114A" beside
#: "114B"), else read as the digit, as before
_LOOKALIKE_SUFFIXES = {"B": "8", "D": "0"}
_NUMERAL = re.compile(r"^(?P<num>[1-9]\d{0,3})(?P<suffix>[a-z]|['′’`´]{1,2}|-[1-9]\d?)?$")
_UPPER_NUMERAL = re.compile(rf"^(?P<num>[1-9]\d{{1,3}})(?P<suffix>[{UPPER_SUFFIXES}])$")
#: the letters that stand for "the last one" of a numbered series ("104-1, 104-2, ..., 104-N"); not the
#: digit look-alikes (I, l, O, S, B, Z, D), which read as the digits of "104-1"
DASH_LETTERS = "NnMmKk"
_DASH_NUMERAL = re.compile(rf"^(?P<num>[1-9]\d{{1,3}})(?P<suffix>-[{DASH_LETTERS}])$")
#: a label's word and number may be joined by a hyphen or an underscore, as some design sheets print
#: them ("FIG-1", "FIG_1"; dev5's 17.pdf)
_LABEL_WORD = re.compile(r"^(FIG|FIGS|FIGURE|FIGURES|Fig|Figs|Figure|Figures|fig|F[1l|]G)[.,_-]?$")
_LABEL_MERGED = re.compile(
    r"^(?:FIG|FIGURE|Fig|Figure)(?:[.,]|[.,]?[_-])?\s?(?P<num>[1-9]\d{0,2})(?P<suffix>[A-Za-z]|['′’]|-\d{1,2})?\.?$"
)
_LABEL_NUMBER = re.compile(r"^(?P<num>[1-9]\d{0,2})(?P<suffix>[A-Za-z]|['′’]|-\d{1,2})?\.?$")
_DECIMAL = re.compile(r"^[-+]?\d+[.,]\d+%?$|^[-+]?\d+%$")
_COUNTER = re.compile(r"^\d{1,3}/\d{1,3}$")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
_HEADER_WORDS = re.compile(r"^(sheet|patent|publication|application|pub\.?|jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)\.?,?$", re.I)
# OCR confusions that turn digits into letters inside an otherwise numeric word
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8", "Z": "2"})
_STRIP = "()[]{}.,;:\"“”~_|-—–"
#: what tesseract makes of an arrowhead that touches a numeral
_ARROW_READINGS = "£€$¥§«»<>^*#"


def normalise_numeral(text: str, lookalike_suffix: bool = False) -> str | None:
    """The canonical form of a reference numeral read as ``text``, or None if it is not one.

    An upper-case suffix (``UPPER_SUFFIXES``) is kept as printed ("114A"); one that is also a digit
    look-alike ("B", "D") only with ``lookalike_suffix`` (``parse_signs`` sets it when the sheet
    prints the same number with another upper-case suffix), else it is read as its digit ("13B" -> "138")."""
    word = _numeral_word(text)
    if word is None:
        return None
    if _DASH_NUMERAL.match(word):
        return word  # "104-N": the last of a numbered series, after two digits or more
    upper = _UPPER_NUMERAL.match(word)
    if upper is not None:
        letter = upper.group("suffix")
        if letter not in _LOOKALIKE_SUFFIXES or lookalike_suffix:
            return word
        word = upper.group("num") + _LOOKALIKE_SUFFIXES[letter]
    match = _NUMERAL.match(word)
    if match is None and any(c.isdigit() for c in word):
        # fix look-alikes in the numeric head only, never in a trailing suffix letter
        head = re.match(r"^[0-9OoDIlSBZ|]+", word)
        if head and sum(c.isdigit() for c in head.group()) >= max(1, len(head.group()) - 1):
            word = head.group().translate(_DIGIT_LOOKALIKES) + word[head.end():]
            match = _NUMERAL.match(word) or _UPPER_NUMERAL.match(word)
    if match is None:
        return None
    suffix = match.group("suffix") or ""
    if suffix and suffix[0] in _PRIMES:
        suffix = "'" * len(suffix)
    return match.group("num") + suffix


def _numeral_word(text: str) -> str | None:
    # a leader line's end touching a numeral's left side is read as a quote mark ("‘16"); a prime
    # follows its numeral, never stands before it
    word = text.strip().strip(_STRIP).lstrip(_PRIMES + "‘").strip(_STRIP)
    # an arrowhead touching a numeral is read as a symbol before it ("£200", "<12")
    if len(word) >= 3 and word[0] in _ARROW_READINGS and word[1:2].isdigit():
        word = word[1:]
    if not word or len(word) > 8:
        return None
    return word


def _suffix_families(words: list[TextBox]) -> set[str]:
    """Numbers printed with two or more different upper-case suffixes on one sheet ("114A", "114B"):
    there a look-alike suffix ("114B") is a letter, not a misread digit."""
    letters: dict[str, set[str]] = {}
    for i, w in enumerate(words):
        before = words[i - 1] if i else None
        if before is not None and before.line == w.line and _LABEL_WORD.match(before.text.strip()):
            continue  # the number of a label ("FIG. 12A") is no sign
        word = _numeral_word(w.text)
        match = _UPPER_NUMERAL.match(word) if word else None
        if match is not None:
            letters.setdefault(match.group("num"), set()).add(match.group("suffix"))
    return {num for num, found in letters.items() if len(found) >= 2}


#: a label line as the label pass reads it, italic and large lettering included: "FIG. 43", "Fig.5",
#: "ig. 2" (an italic F lost), "F1G 3A", "Figure 12", "FIG. 3 (Prior Art)"
_LABEL_LINE = re.compile(
    r"^[^\w]*(?:[FEP]\s?)?[Il1|!i]\s?[Gg]\s?(?:ure|URE)?\s?[.,:;·'`_-]*\s*(?P<num>[1-9]\d{0,2})\s?(?P<suffix>[A-Za-z](?![A-Za-z]))?"
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
#: any numeral must be read at least this surely (on the truth set and dev1 no printed numeral was
#: read below 0.58; "13" and "14" read from a grey profile and from dotted shading at 0.46-0.47)
MIN_NUMERAL_CONFIDENCE = 0.5
#: a sheet on which at most this many distinct numerals are read has no numbering of its own (a
#: design drawing, a chart): what is read there is mostly a dash, a dot or a stroke of the drawing
SPARSE_NUMERALS = 2
#: on such a sheet a numeral must have two digits or more and be read at least this surely
SPARSE_MIN_CONFIDENCE = 0.7


def parse_signs(words: list[TextBox], min_confidence: float = MIN_NUMERAL_CONFIDENCE,
                min_single_digit: float = MIN_SINGLE_DIGIT_CONFIDENCE) -> list[ReferenceSign]:
    """Reference numerals and figure labels among ``words``, each with its box, in reading order."""
    headers = _header_lines(words)
    families = _suffix_families(words)
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
        numeral = normalise_numeral(text, lookalike_suffix=bool(families) and _head(text) in families)
        if numeral is not None and not numeral[1:2].isdigit() and word.confidence < min_single_digit:
            continue  # a lone digit read unsurely: most often a dash or a stroke of the drawing
        if numeral is not None:
            signs.append(ReferenceSign(numeral, "number" if word.data else NUMERAL, tuple(word.box), round(word.confidence, 3)))
    # a table's values and row headings ("0 ~ 33" beside a table) are numbers, not signs
    signs = _table_rows(signs, [w.box for w in words if w.data and any(c.isdigit() for c in w.text)])
    # axis ticks and table entries are numbers, not signs
    figures = {int(m.group(1)) for s in signs if s.kind == FIGURE_LABEL and (m := re.match(r"FIG\. (\d+)", s.text))}
    data = _data_numerals([s for s in signs if s.kind == NUMERAL], figures)
    # a chart's tick labels found among all the number-like words read (a lost or misread tick leaves
    # the numerals' own run too short), and values after "=" ("N0 = 400"): numbers, not signs
    ticks = tick_words(words, figures) | value_words(words)
    if ticks:
        tick_boxes = {tuple(words[i].box) for i in ticks}
        data |= {id(s) for s in signs if s.kind == NUMERAL and s.box in tick_boxes}
    if data:
        signs = [ReferenceSign(s.text, "number", s.box, s.confidence) if id(s) in data else s for s in signs]
    # a sheet full of decimals and percentages is a table or a chart: its integers are data, not signs
    decimals = sum(bool(_DECIMAL.match(w.text.strip())) for w in words)
    numerals = sum(s.kind == NUMERAL for s in signs)
    if decimals >= 5 and decimals >= 0.3 * numerals:
        signs = [ReferenceSign(s.text, "number", s.box, s.confidence) if s.kind == NUMERAL else s for s in signs]
    signs = _small_numerals(signs, {tuple(w.box): w.rotation for w in words})
    return _sparse_sheet(_lone_digits(signs))


def _head(text: str) -> str | None:
    word = _numeral_word(text)
    match = _UPPER_NUMERAL.match(word) if word else None
    return match.group("num") if match else None


#: a numeral lettered smaller than this share of the height of the sheet's other numerals is none
SMALL_NUMERAL = 0.6
#: ... judged only where the sheet has at least this many numerals
SMALL_NUMERAL_MIN_COUNT = 4


def _glyph_height(box, rotation: int) -> int:
    """The height of a word's lettering: its box's height, or its width when it was read sideways."""
    return max(1, (box[2] - box[0]) if rotation % 180 == 90 else (box[3] - box[1]))


def _small_numerals(signs: list[ReferenceSign], rotations: dict) -> list[ReferenceSign]:
    """Reference numerals are lettered in one size on a sheet: a numeral less than ``SMALL_NUMERAL``
    of the median height of the sheet's numerals is a speck of stipple or texture read as digits
    ("#45" under a quarter of the numerals' height on dev4's US-10563407-B2 fig7, a "9" of half
    their height on the truth set's US20250204297A1 D00001), an exponent or a subscript: dropped.
    On the truth set and dev1-dev4 no printed numeral was below 0.74 of its sheet's median."""
    numerals = [s for s in signs if s.kind == NUMERAL and s.box]
    if len(numerals) < SMALL_NUMERAL_MIN_COUNT:
        return signs
    heights = {id(s): _glyph_height(s.box, rotations.get(tuple(s.box), 0)) for s in numerals}
    median = sorted(heights.values())[len(heights) // 2]
    return [s for s in signs if heights.get(id(s), median) >= SMALL_NUMERAL * median]


#: a sheet numbered in hundreds: this many distinct numerals of three digits or more and none of two
HUNDREDS_NUMBERING = 3


def _lone_digits(signs: list[ReferenceSign]) -> list[ReferenceSign]:
    """On a sheet whose numbering is in hundreds (``HUNDREDS_NUMBERING`` distinct numerals of three
    digits or more, none of two digits), a one-digit numeral is dropped: dev4's sideways flowchart
    (700 ... 745) read the "?" of its three decisions as "9". On the truth set and dev1-dev4 every
    printed one-digit sign stands among two-digit signs."""
    digits = {s.text: len(re.match(r"\d*", s.text).group()) for s in signs if s.kind == NUMERAL}
    if sum(n >= 3 for n in digits.values()) < HUNDREDS_NUMBERING or any(n == 2 for n in digits.values()):
        return signs
    return [s for s in signs if not (s.kind == NUMERAL and digits[s.text] == 1)]


def _sparse_sheet(signs: list[ReferenceSign]) -> list[ReferenceSign]:
    """Reference numerals come as a numbering (10, 12, 14 ...; 1, 2, 3 ...): on a sheet where at
    most ``SPARSE_NUMERALS`` distinct numerals are read, a one-digit numeral, or one read less surely
    than ``SPARSE_MIN_CONFIDENCE``, is dropped. On the truth set and dev1 every one-digit sign stood
    on a sheet with 9 or more numerals, while the "1", "3", "4", "5", "9" read on design drawings
    (dashes, dots of broken lines and shading) stood alone or in pairs."""
    distinct = {s.text for s in signs if s.kind == NUMERAL}
    if not distinct or len(distinct) > SPARSE_NUMERALS:
        return signs
    return [s for s in signs if s.kind != NUMERAL
            or (s.text[1:2].isdigit() and s.confidence >= SPARSE_MIN_CONFIDENCE)]


def _table_rows(signs: list[ReferenceSign], values: list) -> list[ReferenceSign]:
    """Numerals in the row of a table value (``values``: boxes of the words with digits that
    ``TextBox.data`` marks), of its height and within 6 heights of it, are values too: the other
    end of a range "0 ~ 33" written beside a table."""
    if not values:
        return signs
    out = []
    for s in signs:
        if s.kind == NUMERAL and s.box:
            x0, y0, x1, y1 = s.box
            h = max(1, y1 - y0)
            for v in values:
                vh = max(1, v[3] - v[1])
                gap = max(v[0] - x1, x0 - v[2])
                if (abs((v[1] + v[3]) / 2 - (y0 + y1) / 2) <= 0.4 * h and 0.7 * h <= vh <= 1.4 * h
                        and gap <= 6 * h):
                    s = ReferenceSign(s.text, "number", s.box, s.confidence)
                    break
        out.append(s)
    return out


def _data_numerals(numerals: list[ReferenceSign], figures: frozenset[int] | set[int] = frozenset()) -> set[int]:
    """ids of numerals that are data: axis ticks (4 or more in a row or a column, evenly spaced, their
    values an arithmetic progression with a step other than 1 or 2, which reference numerals
    use) and table entries (a numeral with two others in its row and two in its column close by).
    ``figures``: the numbers of the sheet's figure labels. A run whose every value is one of them
    followed by two digits ("2205, 2210, 2215, 2220" on FIG. 22, "705 ... 720" on FIG. 7) is the
    figure's own numbering, stepping by 5 down a column of boxes, not an axis."""
    items = [(s, s.box) for s in numerals if s.box and s.text.isdigit()]
    if len(items) < 4:
        return set()
    out: set[int] = set()
    for axis in (0, 1):  # 0: rows (same y), 1: columns (same x)
        groups: list[list] = []
        for s, box in sorted(items, key=lambda it: (it[1][1] + it[1][3]) / 2 if axis == 0 else (it[1][0] + it[1][2]) / 2):
            h = max(1, box[3] - box[1])
            centre = (box[1] + box[3]) / 2 if axis == 0 else (box[0] + box[2]) / 2
            right = box[2]
            for g in groups:
                gc, gr, gh = g[0]
                if abs(centre - gc) <= 0.4 * gh or (axis == 1 and abs(right - gr) <= 0.4 * gh):
                    g[1].append((s, box))
                    break
            else:
                groups.append([(centre, right, h), [(s, box)]])
        for _, members in groups:
            if len(members) < 4:
                continue
            members.sort(key=lambda it: it[1][0] if axis == 0 else it[1][1])
            values = [int(s.text) for s, _ in members]
            pos = [(b[0] + b[2]) / 2 if axis == 0 else (b[1] + b[3]) / 2 for _, b in members]
            for start in range(len(members) - 3):
                run = values[start:start + 4]
                steps = {b - a for a, b in zip(run, run[1:])}
                gaps = [b - a for a, b in zip(pos[start:start + 4], pos[start + 1:start + 4])]
                if len(steps) == 1 and abs(next(iter(steps))) > 2 and min(gaps) > 0 and max(gaps) <= 1.12 * min(gaps):
                    if figures and all(v >= 100 and v // 100 in figures for v in run):
                        continue  # the figure's own numbering (FIG. 22: 2205, 2210, ...)
                    out |= {id(s) for s, _ in members[start:start + 4]}
    # tables: two other numerals in the same row and two in the same column, close by
    for s, box in items:
        h = max(1, box[3] - box[1])
        cy, cx = (box[1] + box[3]) / 2, (box[0] + box[2]) / 2
        row = [o for o, b in items if o is not s and abs((b[1] + b[3]) / 2 - cy) <= 0.4 * h and abs((b[0] + b[2]) / 2 - cx) <= 8 * h]
        col = [o for o, b in items if o is not s and (abs((b[0] + b[2]) / 2 - cx) <= 0.6 * h or abs(b[2] - box[2]) <= 0.4 * h)
               and abs((b[1] + b[3]) / 2 - cy) <= 6 * h]
        if len(row) >= 2 and len(col) >= 2:
            out.add(id(s))
    # a grid of cells: two rows of three or more aligned numerals each, one above the other
    rows: dict[int, list] = {}
    for s, box in items:
        h = max(1, box[3] - box[1])
        key = next((k for k in rows if abs(k - (box[1] + box[3]) / 2) <= 0.4 * h), (box[1] + box[3]) // 2)
        rows.setdefault(key, []).append((s, box))
    dense = {k: v for k, v in rows.items() if len(v) >= 3
             and max(b[2] for _, b in v) - min(b[0] for _, b in v) <= 15 * max(1, v[0][1][3] - v[0][1][1])}
    keys = sorted(dense)
    for a, b in zip(keys, keys[1:]):
        h = max(1, dense[a][0][1][3] - dense[a][0][1][1])
        if b - a <= 3 * h:
            out |= {id(s) for s, _ in dense[a] + dense[b]}
    return out


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
