"""Publication numbers: one spelling for every source, so that a patent read from XML,
a PDF and a folder of images lands on the same record.

The normal form is ``OFFICE + NUMBER + KIND`` without separators, in the spelling the
office itself uses in its bulk-data file names:

- US utility grants: 8 digits, zero-padded (``US06859910B2``, ``US12094235B2``);
- US design grants: ``D`` + 7 digits (``USD0907292S1``); design patents have one kind,
  written ``S`` before 2001 and ``S1`` since, so both normalise to ``S1``;
- US plant/reissue/SIR/defensive: prefix + 6 digits (``USPP012345P2``, ``USRE045678E1``);
- US applications: 11 digits ``YYYY`` + 7 (``US20250204297A1``); the DOCDB form
  ``US2020041423A1`` (year + 6 digits) gains its missing zero;
- EP: 7 digits (``EP1667425A1``); other offices as given, separators removed.

A number whose kind is unknown (a file name such as ``USD528368.pdf``) gets the kind
the office always uses for that series when there is only one (US designs: ``S1``),
and otherwise no kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PubNumber:
    office: str
    number: str
    kind: str | None

    @property
    def publication_number(self) -> str:
        return f"{self.office}{self.number}{self.kind or ''}"

    def __str__(self) -> str:
        return self.publication_number


_US_SERIES = re.compile(r"^(D|PP|RE|RX|AI|H|T|X|P)?0*(\d+)$")


def normalise(office: str, number: str, kind: str | None = None) -> PubNumber:
    """Bring an (office, number, kind) triple into the normal form described above."""
    office = (office or "").strip().upper()
    raw = re.sub(r"[\s,./\-]", "", number or "").upper()
    kind = re.sub(r"\s", "", kind or "").upper() or None
    if office == "US":
        raw = raw.removeprefix("US")
        match = _US_SERIES.match(raw)
        if match:
            series, digits = match.group(1) or "", match.group(2)
            if series == "D":
                return PubNumber("US", "D" + digits.zfill(7), "S1" if kind in (None, "S", "S1") else kind)
            if series:
                return PubNumber("US", series + digits.zfill(6), kind)
            if len(digits) == 10 and digits[:2] in ("19", "20"):
                digits = digits[:4] + "0" + digits[4:]  # DOCDB application: year + 6 digits
            if len(digits) == 11:
                return PubNumber("US", digits, kind)
            return PubNumber("US", digits.zfill(8), kind)
        return PubNumber("US", raw, kind)
    if office == "EP":
        raw = raw.removeprefix("EP")
        return PubNumber("EP", raw.zfill(7) if raw.isdigit() else raw, kind)
    return PubNumber(office, raw.removeprefix(office), kind)


# A publication number inside free text or a file name: office, number, optional kind.
# US designs may print as "D528,368" or "D 528368"; grants as "6,859,910".
_IN_TEXT = re.compile(
    r"""(?<![A-Z0-9])
        (?P<office>US|EP|WO|CN|JP|KR|CA|GB|DE|FR|AU|TW|IN|RU|BR|ES|IT|NL|CH|AT|SE|DK)
        [\s\-_]?
        (?P<number>(?:D|PP|RE)?\s?[0-9][0-9,/]{3,14})
        (?:[\s\-_]?(?P<kind>[A-Z][0-9]?))?
        (?![A-Z0-9])""",
    re.VERBOSE,
)
# USPTO bulk file names: USD0909824-20210209-D00003.TIF, US20250204297A1-20250626.XML
_USPTO_FILE = re.compile(
    r"^(?P<pub>US(?:D|PP|RE)?\d{6,11}(?:[A-Z]\d?)?)-(?P<date>\d{8})(?:-(?P<key>[A-Z]\d{5}))?$", re.I
)


def find_in_text(text: str) -> PubNumber | None:
    """The first publication number printed in ``text`` (a file name, a front page, a title)."""
    for match in _IN_TEXT.finditer(text.upper()):
        number = match.group("number").replace(",", "").replace("/", "").replace(" ", "")
        if number.isdigit() and len(number) < 5:
            continue
        return normalise(match.group("office"), number, match.group("kind"))
    return None


def from_file_stem(stem: str) -> tuple[PubNumber, str | None] | None:
    """A publication number carried by a file or folder name, and the image key it names.

    ``USD0871717-20200107-D00002`` -> (USD0871717S1, "D00002"); ``US-12094235-B2`` ->
    (US12094235B2, None); ``103-USD528368`` -> (USD0528368S1, None).
    """
    uspto = _USPTO_FILE.match(stem)
    if uspto:
        pub = find_in_text(uspto.group("pub"))
        if pub:
            return pub, uspto.group("key")
    pub = find_in_text(stem)
    return (pub, None) if pub else None


def application_number(office: str | None, number: str | None) -> str | None:
    """An application number in one form whatever the source prints: office + its digits, without separators or
    the EPO's check digit ("29/740,061" -> "US29740061", "05255002.7" -> "EP05255002"); None when there is none.
    An application and its grant carry it alike, so it pairs publications whose numbers differ."""
    digits = re.sub(r"\D", "", (number or "").split(".")[0])
    office = (office or "").strip().upper()
    return f"{office}{digits}" if digits and office else None
