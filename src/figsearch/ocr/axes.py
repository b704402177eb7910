"""Axis tick labels of a plotted chart and values after "=": numbers, not reference signs.

A graph prints its tick labels as numbers evenly spaced along a straight axis (a column beside the
y axis, a row under the x axis), their values a progression: 0, 5, 10, 15 or -160, -165, ..., -185.
Reading loses some of them and misreads others ("-160" read "-180", "-170" read "~178" below the
confidence a numeral needs, "0" is no numeral at all), so the run of *numerals* alone is often too
short or broken for the axis rule of ``signs._data_numerals`` (4 numerals in a row, evenly spaced,
stepping alike). ``tick_words`` looks at every number-like word read (any confidence from
``MIN_TICK_CONFIDENCE``, "0" and decimals included, a minus read as "-" or "~"), lines them up by
column or row, and fits slots: positions that are whole multiples of one spacing (a tick not read
leaves an empty slot), values a linear function of the slot. ``MIN_TICKS`` words that fit, with a
step other than 0, 1 or 2 when all are integers (reference numerals step by 1 or 2: "10, 12, 14,
16" down a column of boxes is a numbering), make an axis; every word on the axis's slots between
(and one slot beyond) the fitting ones is a tick, a misread one included.

``value_words``: a number right after "=" ("N0 = 400"), "≈", "≤" or "≥" on its line is a value.
"""

from __future__ import annotations

import re

from figsearch.ocr.base import TextBox

#: a tick label as read: optional minus (tesseract reads a thin minus as "~" or a dash), digits,
#: optional decimals
_TICK = re.compile(r"^(?P<sign>[-~−–—])?(?P<num>\d{1,5}(?:[.,]\d{1,3})?)$")
#: words read less surely than this do not count, even as support for an axis
MIN_TICK_CONFIDENCE = 0.3
#: fitting words an axis needs
MIN_TICKS = 4
#: a word is on a slot when its position is within this share of the spacing
SLOT_TOLERANCE = 0.12
#: relations after which a number is a value
_RELATIONS = ("=", "≈", "≤", "≥")


def value_words(words: list[TextBox]) -> set[int]:
    """Indices of words right after a relation sign on the same line ("N0 = 400")."""
    out = set()
    for i in range(1, len(words)):
        before = words[i - 1].text.strip()
        if words[i - 1].line == words[i].line and before and before.endswith(_RELATIONS):
            out.add(i)
    return out


def _number(text: str) -> tuple[float, float] | None:
    """(value with the sign as read, value without it), or None when ``text`` is no number."""
    match = _TICK.match(text.strip().rstrip(".,;:"))
    if match is None:
        return None
    value = float(match.group("num").replace(",", "."))
    return (-value if match.group("sign") else value), value


def tick_words(words: list[TextBox], figures: frozenset[int] | set[int] = frozenset()) -> set[int]:
    """Indices of ``words`` that are tick labels of a chart's axis (see the module docstring).
    ``figures``: the numbers of the sheet's figure labels; a run whose values are all one of them
    followed by two digits ("2205, 2210, ..." on FIG. 22) is the figure's own numbering, no axis."""
    items = []
    for i, w in enumerate(words):
        if w.confidence < MIN_TICK_CONFIDENCE or not w.box:
            continue
        number = _number(w.text)
        if number is not None:
            items.append((i, w.box, number))
    if len(items) < MIN_TICKS:
        return set()
    out: set[int] = set()
    for axis in (0, 1):  # 0: a row (same y, along x), 1: a column (same x, along y)
        for members in _lines(items, axis):
            if len(members) >= MIN_TICKS:
                out |= _fit(members, axis, figures)
    return out


def _lines(items, axis: int) -> list[list]:
    """Items grouped into rows (axis 0: centres at one height) or columns (axis 1: centres, right or
    left edges at one x: tick labels are set flush right or centred)."""
    groups: list[list] = []
    key = (lambda it: (it[1][1] + it[1][3]) / 2) if axis == 0 else (lambda it: (it[1][0] + it[1][2]) / 2)
    for it in sorted(items, key=key):
        box = it[1]
        h = max(1, box[3] - box[1])
        for g in groups:
            ref, gh = g[0]
            if axis == 0:
                same = abs((box[1] + box[3]) / 2 - (ref[1] + ref[3]) / 2) <= 0.4 * gh
            else:
                same = (abs((box[0] + box[2]) / 2 - (ref[0] + ref[2]) / 2) <= 0.4 * gh
                        or abs(box[2] - ref[2]) <= 0.4 * gh or abs(box[0] - ref[0]) <= 0.4 * gh)
            if same and 0.6 * gh <= h <= 1.6 * gh:
                g[1].append(it)
                break
        else:
            groups.append([(box, h), [it]])
    return [g[1] for g in groups]


def _fit(members: list, axis: int, figures) -> set[int]:
    """Indices of the members that lie on an axis's slots with values stepping alike."""
    members = sorted(members, key=lambda it: (it[1][0] + it[1][2]) / 2 if axis == 0 else (it[1][1] + it[1][3]) / 2)
    pos = [(b[0] + b[2]) / 2 if axis == 0 else (b[1] + b[3]) / 2 for _, b, _ in members]
    height = sorted(max(1, b[3] - b[1]) for _, b, _ in members)[len(members) // 2]
    best: set[int] = set()
    for a in range(len(members) - 1):
        spacing = pos[a + 1] - pos[a]
        if spacing < 0.8 * height:  # neighbours closer than a line of text: no axis spacing
            continue
        slots = {}
        for j, p in enumerate(pos):
            k = round((p - pos[a]) / spacing)
            if abs(p - pos[a] - k * spacing) <= SLOT_TOLERANCE * spacing and k not in slots:
                slots[k] = j
        if len(slots) < MIN_TICKS:
            continue
        for signed in (0, 1):
            found = _progression(slots, [m[2][signed] for m in members], figures)
            if len(found) > len(best):
                best = found
    return {members[j][0] for j in best}


def _progression(slots: dict[int, int], values: list[float], figures) -> set[int]:
    """Members (indices) on ``slots`` whose values are a linear function of the slot, at least
    ``MIN_TICKS`` of them, plus those on the slots between and one beyond (misread ticks)."""
    ks = sorted(slots)
    best: list[int] = []
    for k0, k1 in zip(ks, ks[1:]):
        v0, v1 = values[slots[k0]], values[slots[k1]]
        step = (v1 - v0) / (k1 - k0)
        if step == 0:
            continue
        fits = [k for k in ks if abs(values[slots[k]] - (v0 + step * (k - k0))) <= 1e-6 + 1e-3 * abs(step)]
        if len(fits) < MIN_TICKS or len(fits) <= len(best):
            continue
        fitted = [values[slots[k]] for k in fits]
        integers = all(v == int(v) for v in fitted)
        if integers and abs(step) <= 2:
            continue  # a numbering (10, 12, 14, 16), not an axis
        if integers and figures and all(abs(v) >= 100 and int(abs(v)) // 100 in figures for v in fitted):
            continue  # the figure's own numbering (FIG. 22: 2205, 2210, ...)
        best = fits
    if not best:
        return set()
    lo, hi = best[0] - 1, best[-1] + 1
    return {slots[k] for k in ks if lo <= k <= hi}
