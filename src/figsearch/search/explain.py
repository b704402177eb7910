"""Why a figure matched, and the details pages: linked sentences, reference signs, glossary."""

from __future__ import annotations

import re

from figsearch.errors import NotFound
from figsearch.link.glossary import brief_clause, label_keys, label_mentions
from figsearch.link.text import figure_sentences
from figsearch.ingest.language import detect, normalise_code
from figsearch.records import Figure, FigureRole, GlossaryEntry, ReferenceSign, Sentence
from figsearch.search.api import LinkedSentence
from figsearch.store import Collection

#: sentences shown with a hit (the details page has them all)
HIT_SENTENCES = 3


def reference_signs(collection: Collection, figure_id: str) -> list[ReferenceSign]:
    return collection.signs.of(figure_id)


def numerals(collection: Collection, figure_id: str) -> list[str]:
    """The distinct reference numerals read in a figure, in reading order."""
    return list(dict.fromkeys(s.text for s in reference_signs(collection, figure_id) if s.kind == "numeral"))


class _Shown:
    """How a figure's sentences are shown to a reader: what this figure is first, then what names it.

    The stored order is the description's order, where a sentence about another figure ("In FIG. 1, a
    thermal printer 10 includes ...", linked by a sign both drawings show) or the list of every figure
    ("FIG. 1 is ...; FIG. 2 is ...; FIG. 8 is ...") comes before "FIG. 8 is a block diagram ...": the
    first sentences of a hit were about FIG. 1 on every figure of EP1667425A1 (stop 25)."""

    def __init__(self, figure: Figure) -> None:
        self.keys = label_keys(figure.label)
        self.description = _same(figure.description)

    def text(self, text: str) -> str:
        """The clause about this figure of a sentence that lists several figures; else the sentence.
        English clauses first, then German and French ones ("...; und Fig. 3 ..."): no need to ask the
        store for the patent's language (a query per hit)."""
        if ";" not in text:
            return text
        for key in self.keys:
            for lang in ("en", "de"):
                clause = brief_clause(text, key, lang)
                if clause != text:
                    return clause
        return text

    def rank(self, text: str) -> int:
        """0 its brief description, 1 a sentence naming this figure (in English, German or French: "de"
        reads all three), 2 any other (the patent's title, last of the stored ones, stays last)."""
        if self.description and _same(text) == self.description:
            return 0
        if (any(key in text for key in self.keys) and _LABEL_WORD.search(text)
                and set(self.keys) & set(label_mentions([Sentence("", 0, text)], "de"))):
            return 1
        return 2


#: a label word of any language label_mentions reads ("FIG.", "Figur", "Abb."): a cheap test before it
_LABEL_WORD = re.compile(r"fig|abb", re.IGNORECASE)


def _same(text: str | None) -> str:
    return (text or "").strip().rstrip(".;").strip()


def hit_sentences(collection: Collection, figure: Figure, limit: int = HIT_SENTENCES) -> list[str]:
    """The sentences shown with a hit: what this figure is first (``_Shown``), at most ``limit``."""
    shown = _Shown(figure)
    # one of each, whatever its closing mark ("FIG. 4 is a left side view thereof." stored as the description,
    # "... thereof;" as the linked sentence, were two of a design's three)
    seen: set[str] = set()
    texts = []
    for text in (shown.text(t) for t in figure_sentences(collection, figure)):
        if _same(text) not in seen:
            seen.add(_same(text))
            texts.append(text)
    return (sorted(texts, key=shown.rank) if len(texts) > 1 else texts)[:limit]


def linked_sentences(collection: Collection, figure: Figure) -> list[LinkedSentence]:
    """The figure's linked sentences with the reasons and signs that link them: its brief description
    first, then the sentences that name the figure, then the rest (``_Shown``), each in text order.
    A sentence listing several figures is shown by its clause about this one."""
    shown = _Shown(figure)
    by_text: dict[str, LinkedSentence] = {}
    for link, text in collection.links.links_of(figure.figure_id):
        text = shown.text(text)
        linked = by_text.setdefault(_same(text), LinkedSentence(index=link.sentence_index, text=text, reason=link.reason))
        if link.sign and link.sign not in linked.signs:
            linked.signs.append(link.sign)
        if link.reason == "sign":  # the strongest reason wins the label
            linked.reason = "sign"
    result = list(by_text.values())
    if figure.description and _same(figure.description) not in by_text:
        result.insert(0, LinkedSentence(index=-1, text=figure.description, reason="brief_description"))
    result.sort(key=lambda s: shown.rank(s.text))
    if result and result[0].reason == "label" and shown.rank(result[0].text) == 0:
        result[0].reason = "brief_description"  # the clause of the list of figures that is this one's
    if result:
        patent_lang = normalise_code(collection.patents.language(figure.patent))
        for sentence in result:
            sentence.lang = detect(sentence.text) or patent_lang
    return result


def glossary(collection: Collection, publication_number: str) -> list[GlossaryEntry]:
    return collection.links.glossary(publication_number)


def children(collection: Collection, figure: Figure) -> list[str]:
    """The ids of the figures cut from ``figure`` (a sheet of several), in id order."""
    return [f.figure_id for f in collection.figures(patent=figure.patent) if f.parent_id == figure.figure_id]


def figure_name(figure: Figure) -> str:
    """How a note names a figure: "EP1667425A1 FIG. 1" when its label was read (the reference that
    ``resolve_figure`` takes back), else its id."""
    return f"{figure.patent} {figure.label}" if figure.label else figure.figure_id


def resolve_figure(collection: Collection, reference: str) -> Figure:
    """A figure id, or a readable reference such as ``EP1667425A1 FIG. 1``."""
    try:
        return collection.figure(reference)
    except NotFound as exc:
        unknown = exc
    number = reference.strip().upper()
    own = collection.figures(patent=number) if re.fullmatch(r"[A-Z]{2}\w+", number) else []
    if own:  # a patent alone (a design number's last digit would otherwise be read as its figure label)
        shown = [f for f in own if f.role == FigureRole.DRAWING] or own
        examples = " or ".join(f"'{number} {f.label}'" for f in shown[:2] if f.label) or shown[0].figure_id
        raise NotFound(f"{number} is a patent, not a figure: name one of its {len(own)} figures, "
                       f"e.g. {examples} (or a figure id such as {shown[0].figure_id})")
    # office, an optional series (US design "D", reissue "RE", plant "PP"), number, kind code
    publication = r"[A-Za-z]{2}(?:D|RE|PP|[A-Z]{0,2})\d+[A-Za-z]\d?"
    if re.fullmatch(publication, number):  # "EP9999999A1" was read as patent EP9999999A, FIG. 1
        raise NotFound(f"no patent or figure {number} in collection {collection.root}")
    match = re.match(rf"\s*({publication})\s*[,:]?\s*(.+)$", reference, re.IGNORECASE)
    if match is None:
        raise NotFound(f"{unknown}; give a figure id or a reference such as 'EP1667425A1 FIG. 1'") from None
    patent, label = match.group(1).upper(), match.group(2)
    wanted = label_keys(label) or label_keys(f"FIG. {label}")
    if not wanted:
        if not re.search(r"\s", reference.strip()):  # an id ("USD0907292S1-D00003") of a figure not there (removed)
            raise NotFound(f"{unknown}") from None
        raise NotFound(f"cannot read a figure label in {label!r} (expected e.g. 'FIG. 3')")
    figures = collection.figures(patent=patent)
    if not figures:
        raise NotFound(f"no patent {patent} in collection {collection.root} (asked for {reference.strip()!r})")
    candidates = [f for f in figures if wanted[0] in label_keys(f.label)]
    if not candidates:
        raise NotFound(f"patent {patent} has no figure labelled FIG. {wanted[0]} in collection {collection.root}")
    # a figure cut from a sheet names it more precisely than the sheet itself; of two drawings that OCR gave
    # the same label, the one whose place among the sheets fits the numbering (EP1667425A1: the "Fig.5"
    # printed on sheet 4 read as "FIG. 8", the real FIG. 8 on sheet 6, after FIG. 7)
    candidates.sort(key=lambda f: (f.role == FigureRole.SPLIT_SHEET, len(label_keys(f.label)),
                                   _out_of_order(f, wanted[0], figures), f.figure_id))
    return candidates[0]


def _out_of_order(candidate: Figure, key: str, figures: list[Figure]) -> int:
    """How many drawings of the patent contradict ``candidate`` being FIG. ``key``: a lower number on a later
    sheet, or a higher one on an earlier sheet (only plain numbers compare; 0 when ``key`` is not one)."""
    if not key.isdigit():
        return 0
    number, place = int(key), (candidate.sequence, candidate.figure_id)
    contradictions = 0
    for other in figures:
        if other.role != FigureRole.DRAWING or other.figure_id == candidate.figure_id:
            continue
        numbers = [int(k) for k in label_keys(other.label) if k.isdigit()]
        if not numbers:
            continue
        later = (other.sequence, other.figure_id) > place
        contradictions += (later and max(numbers) < number) or (not later and min(numbers) > number)
    return contradictions
