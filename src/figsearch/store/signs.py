"""What reading a drawing left: its reference signs, its notes, and the OCR state of the figures.

``ocr_done_at`` on a figure says it was read; figures cut from a sheet by its labels are
inserted here with their sheet as parent (only OCR cuts figures, so every figure with a parent
is OCR's to remove).
"""

from __future__ import annotations

import json

from figsearch.fsutil import utcnow
from figsearch.records import Figure, FigureRole, ReferenceSign
from figsearch.store.base import Repository

#: the ``figure_notes`` stage of OCR's notes
STAGE = "ocr"


class SignRepository(Repository):
    def write(self, figure_id: str, signs: list[ReferenceSign], engine: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM reference_signs WHERE figure_id=?", (figure_id,))
            db.executemany(
                "INSERT INTO reference_signs (figure_id, text, kind, x0, y0, x1, y1, confidence, engine) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                [(figure_id, s.text, s.kind, *(s.box or (None,) * 4), s.confidence, engine) for s in signs],
            )

    def of(self, figure_id: str) -> list[ReferenceSign]:
        """A figure's signs in reading order."""
        rows = self.db.execute(
            "SELECT text, kind, x0, y0, x1, y1, confidence FROM reference_signs WHERE figure_id=? ORDER BY rowid",
            (figure_id,),
        ).fetchall()
        return [
            ReferenceSign(r["text"], r["kind"], (r["x0"], r["y0"], r["x1"], r["y1"]) if r["x0"] is not None else None,
                          r["confidence"])
            for r in rows
        ]

    def engine_of(self, figure_id: str) -> str:
        row = self.db.execute("SELECT engine FROM reference_signs WHERE figure_id=? LIMIT 1", (figure_id,)).fetchone()
        return row[0] if row and row[0] else ""

    def write_notes(self, figure_id: str, notes: list[str]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM figure_notes WHERE figure_id=? AND stage=?", (figure_id, STAGE))
            db.executemany("INSERT OR IGNORE INTO figure_notes VALUES (?,?,?)", [(figure_id, STAGE, n) for n in notes])

    def notes_of(self, figure_id: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT note FROM figure_notes WHERE figure_id=? ORDER BY note", (figure_id,))]

    # -- the OCR state of figures ----------------------------------------------------------------

    def mark_done(self, figure_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE figures SET ocr_done_at=? WHERE figure_id=?", (utcnow(), figure_id))

    def pending(self, patent: str | None = None) -> list[str]:
        """Ids of the figures not read yet (sheets only: cut figures are read with their sheet), in order;
        only ``patent``'s when given."""
        if patent is not None:
            return [r[0] for r in self.db.execute(
                "SELECT figure_id FROM figures WHERE ocr_done_at IS NULL AND parent_id IS NULL "
                "AND publication_number=? ORDER BY sequence, figure_id", (patent,)
            )]
        return [r[0] for r in self.db.execute(
            "SELECT figure_id FROM figures WHERE ocr_done_at IS NULL AND parent_id IS NULL "
            "ORDER BY publication_number, sequence, figure_id"
        )]

    def read_figures(self, patent: str) -> list[tuple[str, str | None]]:
        """(figure id, label) of a patent's figures already read."""
        rows = self.db.execute(
            "SELECT figure_id, label FROM figures WHERE publication_number=? AND ocr_done_at IS NOT NULL", (patent,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def set_reading(self, figure_id: str, label: str | None, description: str | None, role: FigureRole) -> None:
        """What reading a sheet found out about it; figures cut from it earlier are dropped."""
        with self.transaction() as db:
            db.execute("DELETE FROM figures WHERE parent_id=?", (figure_id,))
            db.execute("UPDATE figures SET label=?, description=?, role=? WHERE figure_id=?",
                       (label, description, role.value, figure_id))

    def insert_cut_figure(self, child: Figure) -> None:
        """A figure cut from its sheet (``child.parent_id``), not read yet."""
        with self.transaction() as db:
            db.execute(
                """INSERT OR REPLACE INTO figures (figure_id, publication_number, label, role, sequence, source_file,
                       page, description, image_path, thumbnail_path, width, height, image_sha256, parent_id,
                       box_json, ocr_done_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)""",
                (child.figure_id, child.patent, child.label, child.role.value, child.sequence, child.source_file,
                 child.page, child.description, child.image_path, child.thumbnail_path, child.width, child.height,
                 child.image_sha256, child.parent_id, json.dumps(child.box)),
            )

    def reset(self, patent: str | None = None) -> None:
        """Forget OCR results (cut figures included) so that the next run reads everything again."""
        clause, args = ("publication_number=?", (patent,)) if patent else ("1=1", ())
        with self.transaction() as db:
            db.execute(f"DELETE FROM figures WHERE {clause} AND parent_id IS NOT NULL", args)
            db.execute(f"UPDATE figures SET role='drawing' WHERE {clause} AND role='split_sheet'", args)
            db.execute(f"UPDATE figures SET ocr_done_at=NULL WHERE {clause}", args)
            db.execute(f"DELETE FROM link_state WHERE {clause}", args)
