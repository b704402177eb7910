"""Why a figure matched, and the details pages: linked sentences, reference signs, glossary."""

from __future__ import annotations

from figsearch.link.text import figure_sentences
from figsearch.records import Figure, GlossaryEntry, ReferenceSign
from figsearch.search.api import LinkedSentence
from figsearch.store import Collection

#: sentences shown with a hit (the details page has them all)
HIT_SENTENCES = 3


def reference_signs(collection: Collection, figure_id: str) -> list[ReferenceSign]:
    rows = collection.db.execute(
        "SELECT text, kind, x0, y0, x1, y1, confidence FROM reference_signs WHERE figure_id=? ORDER BY rowid",
        (figure_id,),
    )
    return [
        ReferenceSign(
            text=r["text"],
            kind=r["kind"],
            box=(r["x0"], r["y0"], r["x1"], r["y1"]) if r["x0"] is not None else None,
            confidence=r["confidence"],
        )
        for r in rows
    ]


def numerals(collection: Collection, figure_id: str) -> list[str]:
    """The distinct reference numerals read in a figure, in reading order."""
    return list(dict.fromkeys(s.text for s in reference_signs(collection, figure_id) if s.kind == "numeral"))


def hit_sentences(collection: Collection, figure: Figure, limit: int = HIT_SENTENCES) -> list[str]:
    return figure_sentences(collection, figure)[:limit]


def linked_sentences(collection: Collection, figure: Figure) -> list[LinkedSentence]:
    """The figure's linked sentences with the reasons and signs that link them; its brief
    description first when the text has one."""
    rows = collection.db.execute(
        """SELECT s.idx, s.text, fs.reason, fs.sign FROM figure_sentences fs
           JOIN sentences s ON s.publication_number = fs.publication_number AND s.idx = fs.sentence_idx
           WHERE fs.figure_id = ? ORDER BY s.idx, fs.reason, fs.sign""",
        (figure.figure_id,),
    ).fetchall()
    by_index: dict[int, LinkedSentence] = {}
    for r in rows:
        linked = by_index.setdefault(r["idx"], LinkedSentence(index=r["idx"], text=r["text"], reason=r["reason"]))
        if r["sign"] and r["sign"] not in linked.signs:
            linked.signs.append(r["sign"])
        if r["reason"] == "sign":  # the strongest reason wins the label
            linked.reason = "sign"
    result = list(by_index.values())
    if figure.description and all(s.text != figure.description for s in result):
        result.insert(0, LinkedSentence(index=-1, text=figure.description, reason="brief_description"))
    return result


def glossary(collection: Collection, publication_number: str) -> list[GlossaryEntry]:
    rows = collection.db.execute(
        "SELECT sign, term, sentence_idx FROM glossary WHERE publication_number=? ORDER BY sign", (publication_number,)
    )
    return [GlossaryEntry(publication_number, r["sign"], r["term"], r["sentence_idx"]) for r in rows]
