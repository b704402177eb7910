"""What linking wrote: a patent's sentences and glossary, and which sentences belong to which figure.

Tables: ``sentences``, ``glossary``, ``figure_sentences`` (why a sentence belongs to a figure:
'sign', 'brief_description', 'label') and ``link_state`` (which description text the
sentences were built from).
"""

from __future__ import annotations

from figsearch.fsutil import utcnow
from figsearch.records import GlossaryEntry, Sentence, SentenceLink
from figsearch.store.base import Repository


class LinkRepository(Repository):
    def write_patent_text(self, patent: str, sentences: list[Sentence], glossary: list[GlossaryEntry],
                          text_sha256: str) -> None:
        with self.transaction() as db:
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

    def text_sha(self, patent: str) -> str | None:
        """The digest of the description text the patent's sentences were built from."""
        row = self.db.execute("SELECT text_sha256 FROM link_state WHERE publication_number=?", (patent,)).fetchone()
        return row[0] if row else None

    def write_links(self, figure_id: str, patent: str, links: list[SentenceLink]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM figure_sentences WHERE figure_id=?", (figure_id,))
            db.executemany(
                "INSERT OR IGNORE INTO figure_sentences (figure_id, publication_number, sentence_idx, reason, sign) "
                "VALUES (?,?,?,?,?)",
                [(figure_id, patent, link.sentence_index, link.reason, link.sign) for link in links],
            )

    # -- reading -------------------------------------------------------------------------------

    def sentences(self, patent: str) -> list[Sentence]:
        return [
            Sentence(patent, r["idx"], r["text"], r["paragraph_number"])
            for r in self.db.execute("SELECT * FROM sentences WHERE publication_number=? ORDER BY idx", (patent,))
        ]

    def glossary(self, patent: str) -> list[GlossaryEntry]:
        """A patent's glossary, by sign."""
        rows = self.db.execute(
            "SELECT sign, term, sentence_idx FROM glossary WHERE publication_number=? ORDER BY sign", (patent,)
        )
        return [GlossaryEntry(patent, r["sign"], r["term"], r["sentence_idx"]) for r in rows]

    def links_of(self, figure_id: str) -> list[tuple[SentenceLink, str]]:
        """(link, sentence text) of a figure, in sentence order."""
        rows = self.db.execute(
            """SELECT fs.sentence_idx, fs.reason, fs.sign, s.text FROM figure_sentences fs
               JOIN sentences s ON s.publication_number = fs.publication_number AND s.idx = fs.sentence_idx
               WHERE fs.figure_id=? ORDER BY fs.sentence_idx, fs.reason, fs.sign""",
            (figure_id,),
        ).fetchall()
        return [(SentenceLink(r[0], r[1], r[2]), r[3]) for r in rows]

    def linked_texts(self, figure_id: str) -> list[str]:
        """The distinct texts of a figure's linked sentences, in sentence order."""
        rows = self.db.execute(
            """SELECT DISTINCT s.idx, s.text FROM figure_sentences fs
               JOIN sentences s ON s.publication_number = fs.publication_number AND s.idx = fs.sentence_idx
               WHERE fs.figure_id = ? ORDER BY s.idx""",
            (figure_id,),
        ).fetchall()
        return [r["text"] for r in rows]
