"""Why a figure matched, and the details pages: linked sentences, reference signs, glossary."""

from __future__ import annotations

from figsearch.link.text import figure_sentences
from figsearch.records import Figure, GlossaryEntry, ReferenceSign
from figsearch.search.api import LinkedSentence
from figsearch.store import Collection

#: sentences shown with a hit (the details page has them all)
HIT_SENTENCES = 3


def reference_signs(collection: Collection, figure_id: str) -> list[ReferenceSign]:
    return collection.signs.of(figure_id)


def numerals(collection: Collection, figure_id: str) -> list[str]:
    """The distinct reference numerals read in a figure, in reading order."""
    return list(dict.fromkeys(s.text for s in reference_signs(collection, figure_id) if s.kind == "numeral"))


def hit_sentences(collection: Collection, figure: Figure, limit: int = HIT_SENTENCES) -> list[str]:
    return figure_sentences(collection, figure)[:limit]


def linked_sentences(collection: Collection, figure: Figure) -> list[LinkedSentence]:
    """The figure's linked sentences with the reasons and signs that link them; its brief
    description first when the text has one."""
    by_index: dict[int, LinkedSentence] = {}
    for link, text in collection.links.links_of(figure.figure_id):
        index = link.sentence_index
        linked = by_index.setdefault(index, LinkedSentence(index=index, text=text, reason=link.reason))
        if link.sign and link.sign not in linked.signs:
            linked.signs.append(link.sign)
        if link.reason == "sign":  # the strongest reason wins the label
            linked.reason = "sign"
    result = list(by_index.values())
    if figure.description and all(s.text != figure.description for s in result):
        result.insert(0, LinkedSentence(index=-1, text=figure.description, reason="brief_description"))
    return result


def glossary(collection: Collection, publication_number: str) -> list[GlossaryEntry]:
    return collection.links.glossary(publication_number)
