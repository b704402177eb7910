"""The words printed in each drawing (``figure_words``, schema 3): what OCR read that is neither a
reference numeral nor a figure label — box labels, flowchart steps, axis titles.

The sign reader writes them in the same transaction as the figure's signs, replacing what an
earlier reading left, so a rerun or a killed run never leaves them half-written or doubled.
"""

from __future__ import annotations

from figsearch.records import DrawingWord
from figsearch.store.base import Repository


class WordRepository(Repository):
    def _present(self) -> bool:
        """Whether the table exists: a reader of a collection not yet upgraded (schema < 3) reads it
        as it is, a figure without words."""
        return self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='figure_words'"
        ).fetchone() is not None

    def write(self, figure_id: str, words: list[DrawingWord]) -> None:
        """Replace the figure's words with ``words`` (in reading order)."""
        with self.transaction() as db:
            db.execute("DELETE FROM figure_words WHERE figure_id=?", (figure_id,))
            db.executemany(
                "INSERT INTO figure_words (figure_id, seq, text, line, x0, y0, x1, y1, confidence) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                [(figure_id, i, w.text, w.line, *(w.box or (None,) * 4), w.confidence) for i, w in enumerate(words)],
            )

    def of(self, figure_id: str) -> list[DrawingWord]:
        """A figure's words in reading order ([] when none were read, or the schema predates them)."""
        if not self._present():
            return []
        rows = self.db.execute(
            "SELECT text, line, x0, y0, x1, y1, confidence FROM figure_words WHERE figure_id=? ORDER BY seq",
            (figure_id,),
        ).fetchall()
        return [
            DrawingWord(r["text"], (r["x0"], r["y0"], r["x1"], r["y1"]) if r["x0"] is not None else None,
                        r["confidence"], r["line"])
            for r in rows
        ]

    def count(self) -> int:
        """Words stored over the whole collection."""
        if not self._present():
            return 0
        return self.db.execute("SELECT COUNT(*) FROM figure_words").fetchone()[0]
