"""INID codes: the bibliographic field numbers of a patent's front page, which are not reference signs.

US and EP publications print a WIPO ST.9 code in parentheses before each field of the first page:
"(12) United States Design Patent", "(10) Patent No.: US D778,788 S", "(45) Date of Patent", "(51) LOC
(10) Cl.", "(57) CLAIM". A PDF's text layer keeps them, and linking read "United States Design Patent
(10)" as the sign 10 named "United States Design Patent" (stop 25). ``strip_codes`` takes them out of a
page's text before it becomes a paragraph, so they never become signs, glossary names or linked
sentences; a real sign in parentheses ("the housing (10) is ...") is left as it is.

A code is taken out where it is recognisable as one:
- anywhere, when the words of its own field follow it ("(10) Patent No.", "(22) Filed", "(56) References
  Cited"), as OCR text layers space and misread them ("( 21 ) Appl . No", "(57) CLAM");
- the Locarno edition inside field 51, "LOC (12) Cl.";
- on the front page only, at the start of a line and followed by a capital, another code or the line's end
  ("(54) BICYCLE RACK", "(54) (75) (73) (**) (21)" where the layer lists the codes apart from their fields):
  a sign that wraps to the start of a line of an abstract is followed by a lower-case word or punctuation.
"""

from __future__ import annotations

import re

#: the numeric INID codes of WIPO ST.9 (two digits)
CODES = frozenset(
    [*range(10, 20), *range(21, 29), *range(30, 35), *range(40, 49), *range(51, 59), *range(60, 69),
     *range(71, 77), *range(81, 90)]
)

# a code as text layers print it: "(10)", "( 10 )", "(5 1)" (OCR splits the digits at times)
_CODE = r"\(\s*(?P<code>[1-9]\s?\d)\s*\)"


def _words(*phrases: str) -> str:
    """Field names as regex alternatives that allow OCR's spacing around punctuation ("Appl . No .")."""
    out = []
    for phrase in phrases:
        parts = [r"\.?" if part == "." else r"C[lIi1]" if part == "Cl" else re.escape(part)  # OCR's "CI" for "Cl"
                 for part in re.split(r"\s+|(?<=\.)|(?=\.)", phrase) if part.strip()]
        out.append(r"\s*".join(parts) + r"s?\b")
    return "|".join(out)


#: what follows each code in its own field, on US and EP front pages (ST.9's field names)
_FIELD_WORDS = {
    10: _words("Patent No", "Pub. No", "Patent Number"),
    11: _words("Patent No", "Publication number") + r"|EP\s*\d",
    12: _words("United States", "European Patent", "Patent Application Publication", "Reissued Patent",
               "Plant Patent"),
    19: _words("United States", "European Patent Office", "Europäisches Patentamt"),
    21: _words("Appl. No", "Application No", "Application number"),
    22: _words("Filed", "PCT Filed", "Date of filing"),
    30: _words("Foreign Application Priority"),
    43: _words("Pub. Date", "Date of publication"),
    45: _words("Date of Patent", "Reissued", "Date of publication"),
    51: _words("Int. Cl", "LOC"),
    52: _words("U.S. Cl", "CPC"),
    54: _words("Title"),
    56: _words("References Cited"),
    57: _words("ABSTRACT", "CLAIM", "CLAM"),
    58: _words("Field of Classification", "Field of Search"),
    60: _words("Provisional application", "Related U.S."),
    62: _words("Division of"),
    63: _words("Continuation"),
    64: _words("Reissue of"),
    65: _words("Prior Publication Data"),
    71: _words("Applicant"),
    72: _words("Inventor"),
    73: _words("Assignee"),
    74: _words("Attorney", "Agent", "Representative"),
    75: _words("Inventor"),
    76: _words("Inventor"),
    84: _words("Designated Contracting States", "Designated States"),
    86: _words("PCT No", "International application number"),
    87: _words("PCT Pub", "International publication number"),
}
# "LOC (12) Cl.": the Locarno classification's edition ("Cl", "CI", "Ci" as OCR reads it)
_LOCARNO = re.compile(r"(?<=\bLOC)\s*\(\s*\d{1,2}\s*\)(?=\s*C[lIi1]\b)")
# a run of codes at a line's start ("(54) (75) (73) (**) (21)"), then a capital, another bracket or the end
_LINE_START = re.compile(rf"(?m)^[ \t]*(?:(?:{_CODE}|\(\s*\*\s*\*?\s*\))[ \t]*)+(?=[A-Z(]|\r?$)")
_ANY_CODE = re.compile(_CODE)
_CODE_AND_SPACE = re.compile(_CODE + r"[ \t]*")
# a field's name starts with a capital ("Filed", "LOC", "CLAM"); its words in any case, as OCR reads them
_OWN_FIELD = {code: re.compile(rf"\s*(?=(?-i:[A-Z]))(?:{words})", re.I) for code, words in _FIELD_WORDS.items()}


def _number(code: str) -> int:
    return int(code.replace(" ", ""))


def _drop(pattern: re.Pattern, text: str, keep) -> str:
    return pattern.sub(lambda m: m.group() if keep(m) else "", text)


def strip_codes(text: str, front_page: bool = False) -> str:
    """``text`` without its INID codes (see the module's docstring); ``front_page``: the page is a
    publication's first page, where a code also stands alone at the start of a line."""
    text = _LOCARNO.sub("", text)

    def not_before_own_field(m: re.Match) -> bool:
        field = _OWN_FIELD.get(_number(m.group("code")))
        return field is None or field.match(text, m.end()) is None

    text = _drop(_ANY_CODE, text, not_before_own_field)
    if front_page:
        text = _LINE_START.sub(
            lambda run: _drop(_CODE_AND_SPACE, run.group(), lambda c: _number(c.group("code")) not in CODES), text)
    return text

