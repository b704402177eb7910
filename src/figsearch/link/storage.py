"""Reading and writing the OCR/linking tables of a collection.

Tables (see figsearch.store): ``reference_signs``, ``sentences``, ``glossary``,
``figure_sentences`` (why a sentence belongs to a figure: 'sign', 'brief_description', 'label'),
``figure_notes`` (why a figure has no signs or links) and ``link_state`` (which description
text the sentences were built from).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from figsearch.records import GlossaryEntry, ReferenceSign, Sentence
from figsearch.store import Collection
from figsearch.fsutil import utcnow

STAGE = "ocr"


@dataclass(frozen=True)
class Link:
    sentence_index: int
    reason: str  # 'sign', 'brief_description', 'label'
    sign: str = ""


def write_patent_text(db: sqlite3.Connection, patent: str, sentences: list[Sentence],
                      glossary: list[GlossaryEntry], text_sha256: str) -> None:
    db.execute("DELETE FROM sentences WHERE publication_number=?", (patent,))
    db.executemany(
        "INSERT INTO sentences (publication_number, idx, paragraph_number, text) VALUES (?,?,?,?)",
        [(patent, s.index, s.paragraph_number, s.text) for s in sentences],
    )
    db.execute("DELETE FROM glossary WHERE publication_number=?", (patent,))
    db.executemany(
        "INSERT INTO glossary (publication_number, sign, term, sentence_idx) VALUES (?,?,?,?)",
        [(patent, g.sign, g.term, g.sentence_index) for g in glossary],
    )
    db.execute("INSERT OR REPLACE INTO link_state VALUES (?,?,?)", (patent, text_sha256, utcnow()))


def stored_text_sha(db: sqlite3.Connection, patent: str) -> str | None:
    row = db.execute("SELECT text_sha256 FROM link_state WHERE publication_number=?", (patent,)).fetchone()
    return row[0] if row else None


def write_signs(db: sqlite3.Connection, figure_id: str, signs: list[ReferenceSign], engine: str) -> None:
    db.execute("DELETE FROM reference_signs WHERE figure_id=?", (figure_id,))
    db.executemany(
        "INSERT INTO reference_signs (figure_id, text, kind, x0, y0, x1, y1, confidence, engine) VALUES (?,?,?,?,?,?,?,?,?)",
        [(figure_id, s.text, s.kind, *(s.box or (None,) * 4), s.confidence, engine) for s in signs],
    )


def write_links(db: sqlite3.Connection, figure_id: str, patent: str, links: list[Link]) -> None:
    db.execute("DELETE FROM figure_sentences WHERE figure_id=?", (figure_id,))
    db.executemany(
        "INSERT OR IGNORE INTO figure_sentences (figure_id, publication_number, sentence_idx, reason, sign) VALUES (?,?,?,?,?)",
        [(figure_id, patent, link.sentence_index, link.reason, link.sign) for link in links],
    )


def write_notes(db: sqlite3.Connection, figure_id: str, notes: list[str]) -> None:
    db.execute("DELETE FROM figure_notes WHERE figure_id=? AND stage=?", (figure_id, STAGE))
    db.executemany("INSERT OR IGNORE INTO figure_notes VALUES (?,?,?)", [(figure_id, STAGE, n) for n in notes])


def mark_done(db: sqlite3.Connection, figure_id: str) -> None:
    db.execute("UPDATE figures SET ocr_done_at=? WHERE figure_id=?", (utcnow(), figure_id))


# -- reading -------------------------------------------------------------------------------


def signs_of(collection: Collection, figure_id: str) -> list[ReferenceSign]:
    rows = collection.db.execute(
        "SELECT * FROM reference_signs WHERE figure_id=? ORDER BY rowid", (figure_id,)
    ).fetchall()
    return [
        ReferenceSign(r["text"], r["kind"], (r["x0"], r["y0"], r["x1"], r["y1"]) if r["x0"] is not None else None,
                      r["confidence"])
        for r in rows
    ]


def sentences_of(collection: Collection, patent: str) -> list[Sentence]:
    return [
        Sentence(patent, r["idx"], r["text"], r["paragraph_number"])
        for r in collection.db.execute(
            "SELECT * FROM sentences WHERE publication_number=? ORDER BY idx", (patent,)
        )
    ]


def glossary_of(collection: Collection, patent: str) -> dict[str, GlossaryEntry]:
    return {
        r["sign"]: GlossaryEntry(patent, r["sign"], r["term"], r["sentence_idx"])
        for r in collection.db.execute("SELECT * FROM glossary WHERE publication_number=?", (patent,))
    }


def links_of(collection: Collection, figure_id: str) -> list[tuple[Link, str]]:
    """(link, sentence text) of a figure, in sentence order."""
    rows = collection.db.execute(
        """SELECT fs.sentence_idx, fs.reason, fs.sign, s.text FROM figure_sentences fs
           JOIN sentences s ON s.publication_number = fs.publication_number AND s.idx = fs.sentence_idx
           WHERE fs.figure_id=? ORDER BY fs.sentence_idx, fs.reason, fs.sign""",
        (figure_id,),
    ).fetchall()
    return [(Link(r[0], r[1], r[2]), r[3]) for r in rows]


def notes_of(collection: Collection, figure_id: str) -> list[str]:
    return [r[0] for r in collection.db.execute(
        "SELECT note FROM figure_notes WHERE figure_id=? ORDER BY note", (figure_id,)
    )]
