"""Reference signs mentioned in a sentence: "the rotor blade 12", "rollers 22, 24 and 26", "12-16".

A number is a reference sign when it follows the noun it names ("thermal head 14",
"roller (16)") or continues a list or range that started with one. It is not a sign
when it is a quantity ("12 mm", "of 2 rotors", "about 5"), a decimal or a thousands
figure, part of a date or a year ("in 2005"), or what a figure, claim, table,
equation or patent number refers to ("FIG. 3", "claims 1 to 5", "No. 5,123,456").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"[1-9]\d{0,3}(?:[a-z]|'{1,2}|′)?"

#: things whose numbers are never reference signs; masked before numbers are read
_KEYWORD_LISTS = re.compile(
    rf"""\b(?:FIGS?|Figs?|figs?|FIGURES?|Figures?|figures?|claims?|Claims?|CLAIMS?|tables?|Tables?|TABLES?
          |equations?|Equations?|Eqs?|eqs?|formula[es]?|Formula[es]?|expressions?|examples?|Examples?
          |paragraphs?|paras?|pages?|cols?\.|Nos?|nos?|numbers?|embodiments?|Embodiments?|steps?(?=\s+\d+\s*(?:of|in)\b))
        \.?\s*\(?\s*\[?\d[\w'′]*\]?\)?(?:\s*(?:,|and|or|to|through|-|–|&)\s*\(?\d[\w'′]*\)?)*""",
    re.VERBOSE,
)
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATES = re.compile(
    rf"\b{_MONTHS}\s+\d{{1,2}},?\s+\d{{4}}\b|\b\d{{1,2}}\s+{_MONTHS}\s+\d{{4}}\b|\b{_MONTHS}\s+\d{{4}}\b"
    r"|\b\d{1,4}[./-]\d{1,2}[./-]\d{2,4}\b"
)
# patent and document numbers, decimals, thousands, versions, ratios: "2003-123456", "5,123,456", "2.5", "1:2"
_OTHER_NUMBERS = re.compile(
    r"\b[A-Z]{2}\s?\d{2,4}[/-]\d{3,}\b|\b\d{1,3}(?:,\d{3})+\b|\d+\.\d+|\b\d+\s?[:/]\s?\d+\b|\b\d{5,}\b"
)
_CANDIDATE = re.compile(
    rf"(?<![\w.,/+-])(?P<first>{_NUM})(?:\s*(?P<dash>-|–|to|through|thru)\s*(?P<last>{_NUM}))?(?![\w/]|[.,:]\d|-\d)"
)
_UNITS = frozenset(
    """mm cm m km µm um μm nm pm in inch inches ft feet foot mil mils yd g kg mg µg t lb lbs oz n kn nm pa kpa mpa gpa
    bar mbar psi torr atm v mv kv µv a ma µa w kw mw j kj hz khz mhz ghz s sec secs second seconds ms µs ns min mins
    minute minutes h hr hrs hour hours day days week weeks month months year years % ° deg degree degrees °c °f k
    rpm dpi ppi lpi bit bits byte bytes kb mb gb tb db l ml ul µl cc mol mmol wt vol ppm ppb px pixel pixels dot dots
    times fold x × mesh gauge awg cal kcal lm lx cd ohm ohms ω kω mω f µf uf nf pf hp nmi mph kmh kph""".split()
)
# counted things: "2 rows", "12 teeth" are quantities (a sign follows the noun it names, never precedes it)
_COUNT_NOUNS = frozenset(
    """rows columns layers lines pixels dots steps parts pieces teeth blades rotors sides revolutions
    cycles stages levels bits channels elements units holes slots pairs sheets pages colors
    colours frames rollers wheels pins screws bolts legs arms plates members segments sections
    portions regions zones areas times""".split()
)
# words after which a number is a quantity, an ordinal position or a citation, never a sign
_FUNCTION_WORDS = frozenset(
    """a an the said this that these those each every any all some many several no both either neither
    of to from by at in on onto into over under above below between among within without through via per
    with than as about around approximately approx nearly almost roughly substantially least most only
    and or nor but if then when where while which who whose whom what
    is are was were be been being has have had having do does did
    comprise comprises comprised comprising include includes included including contain contains containing
    provide provides provided providing use uses used using
    equal equals equaling exceed exceeds exceeding reach reaches total totals
    year years month months day days week weeks hour hours minute minutes second seconds
    mode modes type types version versions level levels group groups order rank class size
    up down out off new plus minus times multiplied divided
    show shows showed shown showing illustrate illustrates depict depicts represent represents indicate indicates
    define defines form forms require requires take takes give gives yield yields produce produces generate
    generates measure measures receive receives store stores hold holds carry carries set sets contain
    reach count counts number numbers amount amounts
    first second third fourth fifth one two three four five six seven eight nine ten
    more less fewer other another such same further additional respective corresponding""".split()
)
# ordinals end no name ("first guide roller 22") although a number right after one is no sign
_ORDINALS = frozenset("first second third fourth fifth".split())
_CONNECTORS = frozenset({",", "and", "or", "&", "as well as", "/", ", and", ", or", "and/or"})
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*")


@dataclass(frozen=True)
class Mention:
    """One reference sign (or a range of them) named in a sentence."""

    sign: str  # "14a"; for a range its first sign
    start: int
    end: int
    last: str | None = None  # the range's last sign ("12-16" -> "16")
    term: str | None = None  # the noun phrase naming it ("thermal head"), when one precedes it

    def covers(self, sign: str) -> bool:
        """Whether ``sign`` read in a drawing is what this mention names.

        ``14`` and ``14a`` match each other (the part and its sub-parts); ``14a`` and
        ``14b`` do not; a range ``12-16`` covers every sign from 12 to 16.
        """
        number, suffix = split_sign(sign)
        first_number, first_suffix = split_sign(self.sign)
        if self.last is None:
            return number == first_number and (suffix == first_suffix or not suffix or not first_suffix)
        last_number, last_suffix = split_sign(self.last)
        if first_number == last_number:  # "14a-14d"
            return number == first_number and (not suffix or first_suffix <= suffix <= last_suffix)
        return first_number <= number <= last_number


def split_sign(sign: str) -> tuple[int, str]:
    match = re.match(r"(\d+)(.*)", sign)
    if match is None:
        return (0, sign)
    return int(match.group(1)), match.group(2)


def _mask(text: str, pattern: re.Pattern) -> str:
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _words_before(text: str, end: int, limit: int = 4) -> tuple[list[str], str]:
    """The words just before ``end`` (nearest last), and the non-word token right before the number."""
    before = text[:end].rstrip()
    gap = text[len(before):end]
    if before.endswith("("):
        before = before[:-1].rstrip()
    tail_token = before[-1:] if before and not before[-1].isalnum() else ""
    words: list[str] = []
    cursor = len(before)
    while len(words) < limit and cursor > 0:
        match = re.search(r"([A-Za-z][A-Za-z-]*|\d\S*|[^\sA-Za-z\d])\s*$", before[:cursor])
        if match is None:
            break
        words.append(match.group(1))
        cursor = match.start()
    del gap
    return words, tail_token


def _term(words: list[str]) -> str | None:
    """The noun phrase among ``words`` (nearest first): letters only, stopping at a function word."""
    phrase: list[str] = []
    for word in words:
        if not _WORD.fullmatch(word) or (word.lower() in _FUNCTION_WORDS and word.lower() not in _ORDINALS):
            break
        phrase.append(word)
    if not phrase:
        return None
    return " ".join(reversed(phrase))


def _followed_by_unit(text: str, end: int) -> bool:
    rest = text[end:end + 16]
    if re.match(r"\s*(%|°|‰|″|\"|×|x\s*\d)", rest):
        return True
    match = re.match(r"\s*([^\s,.;:()]+)", rest)
    word = match.group(1).lower().rstrip(".") if match else ""
    return word in _UNITS or word in _COUNT_NOUNS


def find_mentions(sentence: str) -> list[Mention]:
    """The reference signs named in ``sentence``, in order."""
    text = _mask(_mask(_mask(sentence, _DATES), _KEYWORD_LISTS), _OTHER_NUMBERS)
    mentions: list[Mention] = []
    chain_term: str | None = None
    chain_end = -1
    for match in _CANDIDATE.finditer(text):
        start, end = match.span()
        first, last = match.group("first"), match.group("last")
        if last is not None:
            (n1, s1), (n2, s2) = split_sign(first), split_sign(last)
            if match.group("dash") in "-–" and not s1 and not s2 and n2 < n1 and n2 < 100:
                first, last = f"{first}-{n2}", None  # "102-1" is one sign with a numbered suffix
            elif not (n1 < n2 <= n1 + 200 or (n1 == n2 and s1 < s2)):
                end = match.start("dash") if match.start("dash") > 0 else end
                end = start + len(match.group("first"))
                last = None
        if _followed_by_unit(text, end):
            chain_term, chain_end = None, -1
            continue
        if re.search(r"[=<>±≤≥~≈]\s*\(?$", text[:start]) or re.match(r"\s*[=<>≤≥]", text[end:]):
            continue
        words, token = _words_before(text, start)
        previous = words[0].lower() if words else ""
        between = text[chain_end:start].strip(" (").lower() if chain_end >= 0 else None
        if between is not None and between in _CONNECTORS:
            term = chain_term  # "rollers 22, 24 and 26": a list goes on
        elif len(previous) > 1 and _WORD.fullmatch(words[0]) and previous not in _FUNCTION_WORDS:
            # (a single letter before a number is a variable or an axis: "H 2", "X 1")
            term = _term(words)
        else:
            chain_term, chain_end = None, -1
            continue
        if len(first) == 4 and first[:2] in ("19", "20") and previous in {"in", "since", "until", "year"}:
            continue
        mentions.append(Mention(first, start, end, last, term))
        chain_term, chain_end = term, end
    return mentions


def mentioned_signs(sentences: list[str]) -> set[str]:
    """Every single sign (not range) named anywhere in ``sentences``: the patent's sign vocabulary."""
    found: set[str] = set()
    for sentence in sentences:
        for mention in find_mentions(sentence):
            found.add(mention.sign)
            if mention.last:
                found.add(mention.last)
    return found
