"""A patent's reference-sign glossary ("14 -> thermal head") and its figures' brief descriptions.

Each function takes the text's language (``lang``: "en", the default, "de" or "fr"): German
and French labels ("Fig. 3", "Abb. 3", "Figur 3", "la figure 3"), lists ("Fig. 1 und 2",
"figures 2 et 3") and brief-description verbs ("Fig. 1 eine Seitenansicht", "La figure 1
est une vue"). English is read exactly as before.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from figsearch.link.mentions import Mention, find_mentions, split_sign
from figsearch.records import GlossaryEntry, Sentence

_LABEL_IN_TEXT = re.compile(
    r"^\s*(?:FIGS?|Figs?|FIGURES?|Figures?)\.?\s*(?P<list>\d+[A-Za-z'′]?(?:\s*(?:,|and|to|-|–|through|&)\s*\d+[A-Za-z'′]?)*)"
)
_LABEL_VERB = re.compile(
    r"\s*(?:is|are|shows?|illustrates?|depicts?|represents?|presents?|schematically|respectively|provides?|"
    r"a|an|the|,|:|\()",
    re.IGNORECASE,
)
_LABEL_ANYWHERE = re.compile(
    r"\b(?:FIGS?|Figs?|FIGURES?|Figures?)\.?\s*(?P<list>\d+[A-Za-z'′]?(?:\s*(?:,|and|to|-|–|through|&)\s*\d+[A-Za-z'′]?)*)"
)
# German and French: their label words and list words (the English ones stay recognised too)
_ML_WORDS = r"(?:FIGS?|Figs?|figs?|FIGURES?|Figures?|figures?|FIGUR(?:EN)?|Figur(?:en)?|ABB|Abb|Abbildung(?:en)?)"
_ML_LIST = (r"(?P<list>\d+[A-Za-z'′]?(?:\s*(?:,|and|und|oder|sowie|et|ou|to|bis|à|-|–|through|&)\s*"
            r"\d+[A-Za-z'′]?)*)")
_ML_LABEL_ANYWHERE = re.compile(rf"(?<!\w){_ML_WORDS}\.?\s*{_ML_LIST}")
_ML_LABEL_IN_TEXT = {
    "de": re.compile(rf"^\s*(?:(?:In|in|Die|die|Der|der)\s+)?{_ML_WORDS}\.?\s*{_ML_LIST}"),
    "fr": re.compile(rf"^\s*(?:(?:La|la|Les|les|Sur|sur|En|en)\s+(?:la\s+|les\s+)?)?{_ML_WORDS}\.?\s*{_ML_LIST}"),
}
_ML_LABEL_VERB = {
    "de": re.compile(
        r"\s*(?:zeigt|zeigen|ist|sind|stellt|stellen|veranschaulicht|veranschaulichen|verdeutlicht|eine?[nrs]?\b|"
        r"die\b|der\b|das\b|den\b|schematisch|in\b|im\b|perspektivisch|,|:|\(|-|–"
        # after "Es zeigen:" a plural noun may follow the label directly: "Fig. 2 und 3 Schnitte entlang ..."
        r"|(?-i:[A-ZÄÖÜ])\w+)",
        re.IGNORECASE,
    ),
    "fr": re.compile(
        r"\s*(?:est|sont|montre|montrent|représente|représentent|illustre|illustrent|schématise|une?\b|"
        r"la\b|le\b|les\b|schématiquement|,|:|\(|-|–)",
        re.IGNORECASE,
    ),
}


def _anywhere(lang: str) -> re.Pattern:
    return _ML_LABEL_ANYWHERE if lang in _ML_LABEL_IN_TEXT else _LABEL_ANYWHERE


def glossary(patent: str, sentences: list[Sentence], lang: str = "en",
             mentions: list[list[Mention]] | None = None) -> list[GlossaryEntry]:
    """Each sign's name: the phrase most often printed before it (ties: the earliest).

    The phrase is the noun phrase before the numeral in the text's language ("thermal head
    14", "der Thermokopf 14", "la tête thermique 14"). ``mentions``: each sentence's
    ``find_mentions(sentence.text, lang)`` where the caller has them already (``PatentText``).
    """
    if mentions is None:
        mentions = [find_mentions(sentence.text, lang) for sentence in sentences]
    elif len(mentions) != len(sentences):
        raise ValueError(f"glossary of {patent}: {len(mentions)} mention lists for {len(sentences)} sentences")
    counts: dict[str, Counter] = defaultdict(Counter)
    first_seen: dict[tuple[str, str], int] = {}
    spelled: dict[tuple[str, str], str] = {}
    for sentence, found in zip(sentences, mentions):
        for mention in found:
            if mention.term is None or mention.last is not None:
                continue
            key = mention.term.lower()
            counts[mention.sign][key] += 1
            first_seen.setdefault((mention.sign, key), sentence.index)
            spelled.setdefault((mention.sign, key), mention.term)
    entries = []
    for sign in sorted(counts, key=lambda s: split_sign(s)):
        term, _ = min(counts[sign].items(), key=lambda kv: (-kv[1], first_seen[(sign, kv[0])]))
        entries.append(GlossaryEntry(patent, sign, spelled[(sign, term)], first_seen[(sign, term)]))
    return entries


def expand_label_list(text: str) -> list[str]:
    """``"3A and 3B"`` -> ``["3A", "3B"]``; ``"1-3"`` -> ``["1", "2", "3"]`` (upper-cased suffixes)."""
    parts = re.split(r"\s*(?:,|and|&|\b(?:und|oder|sowie|et|ou)\b)\s*", text.strip())
    out: list[str] = []
    for part in parts:
        if not part:
            continue
        span = re.fullmatch(r"(\d+)([A-Za-z]?)\s*(?:to|-|–|through|bis|à)\s*(\d+)([A-Za-z]?)", part)
        if span:
            a, sa, b, sb = int(span.group(1)), span.group(2).upper(), int(span.group(3)), span.group(4).upper()
            if a == b and sa and sb:
                out += [f"{a}{chr(c)}" for c in range(ord(sa), ord(sb) + 1)]
            elif a < b <= a + 30:
                out += [str(n) for n in range(a, b + 1)]
            continue
        single = re.fullmatch(r"(\d+)([A-Za-z'′]?)", part)
        if single:
            out.append(f"{int(single.group(1))}{single.group(2).upper()}")
    return out


def label_keys(label: str | None) -> list[str]:
    """The figure numbers a label names: ``"FIG. 3A"`` -> ``["3A"]``, ``"FIGS. 8, 9"`` -> ``["8", "9"]``."""
    if not label:
        return []
    match = _LABEL_ANYWHERE.search(label)
    if match is None:  # a German or French label: "Abb. 3", "Figur 3"
        match = _ML_LABEL_ANYWHERE.search(label)
    if match is None:
        match = re.match(r"\s*(?P<list>\d+[A-Za-z'′]?(?:\s*(?:,|and|to|-|&)\s*\d+[A-Za-z'′]?)*)", label)
    return expand_label_list(match.group("list")) if match else []


def brief_descriptions(sentences: list[Sentence], lang: str = "en") -> dict[str, int]:
    """Figure number -> index of the sentence that introduces it ("FIG. 3 is a section along III-III",
    "Fig. 3 einen Schnitt entlang III-III", "La figure 3 est une coupe")."""
    in_text = _ML_LABEL_IN_TEXT.get(lang, _LABEL_IN_TEXT)
    verb = _ML_LABEL_VERB.get(lang, _LABEL_VERB)
    found: dict[str, int] = {}
    for sentence in sentences:
        match = in_text.match(sentence.text)
        if match is None or not verb.match(sentence.text[match.end():]):
            continue
        for key in expand_label_list(match.group("list")):
            found.setdefault(key, sentence.index)
    return found


def brief_clause(text: str, key: str, lang: str = "en") -> str:
    """The part of a brief-description sentence about figure ``key``.

    EPO texts often put every figure in one sentence ("FIG. 1 is ...; FIG. 2 is ..."): the clause
    that starts at this figure's label, up to the next semicolon, describes it alone.
    """
    if lang in _ML_LABEL_IN_TEXT:
        clauses = [c.strip() for c in re.split(
            rf";\s*(?=(?:(?:und|et)\s+)?(?:(?:la|les|La|Les)\s+)?{_ML_WORDS}\.?\s*\d)", text)]
    else:
        clauses = [c.strip() for c in re.split(r";\s*(?=(?:and\s+)?(?:FIGS?|Figs?|FIGURES?|Figures?)\.?\s*\d)", text)]
    if len(clauses) == 1:
        return text
    for clause in clauses:
        clause = re.sub(r"^(?:and|und|et)\s+", "", clause) if lang in _ML_LABEL_IN_TEXT else re.sub(r"^and\s+", "", clause)
        match = _anywhere(lang).search(clause) if lang in _ML_LABEL_IN_TEXT else _LABEL_ANYWHERE.match(clause)
        if match and key in expand_label_list(match.group("list")):
            return clause.rstrip(".;") + "."
    return text


def label_mentions(sentences: list[Sentence], lang: str = "en") -> dict[str, list[int]]:
    """Figure number -> indexes of the sentences that refer to it anywhere ("as shown in FIG. 3")."""
    found: dict[str, list[int]] = defaultdict(list)
    pattern = _anywhere(lang)
    for sentence in sentences:
        for match in pattern.finditer(sentence.text):
            for key in expand_label_list(match.group("list")):
                if not found[key] or found[key][-1] != sentence.index:
                    found[key].append(sentence.index)
    return dict(found)
