"""Stored vectors: the ``embeddings`` table.

Each drawing's vector is kept per (figure, modality, encoder key) with the sha256 of the input
it was computed from (the image's digest for visual, a digest of the sentences for text), so
that a rerun embeds only what is new or changed and an index can always be rebuilt from here
without running a model again.

Rows get explicit, never-reused rowids from a counter in ``meta``: an index remembers the
highest rowid it holds, so rows above it are exactly the ones added since (see figsearch.index).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from figsearch.records import FigureRole
from figsearch.store.base import Repository, placeholders

MODALITIES = ("visual", "text")
_SEQ_KEY = "embeddings_rowid_seq"

# embeddings of drawings only: front pages and non-drawings are never indexed
_DRAWINGS = f"""FROM embeddings e JOIN figures f ON f.figure_id = e.figure_id
    WHERE e.modality = ? AND e.encoder = ? AND f.role = '{FigureRole.DRAWING.value}'"""


def to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: list[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32, copy=False)


class VectorRepository(Repository):
    def inputs(self, modality: str, key: str) -> dict[str, str | None]:
        """figure id -> digest of the input its stored vector was computed from."""
        rows = self.db.execute(
            "SELECT figure_id, input_sha256 FROM embeddings WHERE modality=? AND encoder=?", (modality, key)
        )
        return {r[0]: r[1] for r in rows}

    def save(self, modality: str, key: str, rows: list[tuple[str, np.ndarray, str | None]]) -> None:
        """Insert or replace (figure id, vector, input digest) rows, in one transaction."""
        if not rows:
            return
        settings = self._collection.settings
        with self.transaction() as db:
            seq = settings.get(_SEQ_KEY)
            if seq is None:
                seq = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM embeddings").fetchone()[0]
            values = []
            for figure_id, vector, digest in rows:
                seq += 1
                values.append((seq, figure_id, modality, key, int(vector.shape[-1]), to_blob(vector), digest))
            # REPLACE deletes the old row and inserts a new one with the new rowid
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (rowid, figure_id, modality, encoder, dim, vector, input_sha256) "
                "VALUES (?,?,?,?,?,?,?)",
                values,
            )
            settings.set(_SEQ_KEY, seq)

    def delete(self, modality: str, key: str, figure_ids: Iterable[str]) -> int:
        ids = [(f, modality, key) for f in figure_ids]
        if not ids:
            return 0
        with self.transaction() as db:
            db.executemany("DELETE FROM embeddings WHERE figure_id=? AND modality=? AND encoder=?", ids)
        return len(ids)

    def state(self, modality: str, key: str) -> dict:
        """Count and highest rowid of an encoder's stored vectors: changes whenever they change.

        Cheap (it reads only the ``embeddings_by_encoder`` index); it counts all rows, drawings
        or not, since roles are checked again on every hit.
        """
        count, top = self.db.execute(
            "SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM embeddings WHERE encoder=? AND modality=?", (key, modality)
        ).fetchone()
        return {"count": int(count), "max_rowid": int(top)}

    def dim(self, modality: str, key: str) -> int:
        row = self.db.execute(
            "SELECT dim FROM embeddings WHERE modality=? AND encoder=? LIMIT 1", (modality, key)
        ).fetchone()
        return int(row[0]) if row else 0

    def drawing_count(self, modality: str, key: str) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) {_DRAWINGS}", (modality, key)).fetchone()[0])

    def count_up_to(self, modality: str, key: str, max_rowid: int) -> int:
        return int(
            self.db.execute(f"SELECT COUNT(*) {_DRAWINGS} AND e.rowid <= ?", (modality, key, max_rowid)).fetchone()[0]
        )

    def count_after(self, modality: str, key: str, max_rowid: int) -> int:
        """Stored drawing vectors added since an index that holds rowids up to ``max_rowid`` was built."""
        return int(
            self.db.execute(f"SELECT COUNT(*) {_DRAWINGS} AND e.rowid > ?", (modality, key, max_rowid)).fetchone()[0]
        )

    def unembedded_drawings(self, modality: str, key: str) -> int:
        """Drawings with a stored image but no vector of this encoder (ingested since the last embedding)."""
        return int(self.db.execute(
            f"""SELECT COUNT(*) FROM figures f WHERE f.role = '{FigureRole.DRAWING.value}' AND f.image_path IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.figure_id = f.figure_id AND e.modality = ?
                                AND e.encoder = ?)""",
            (modality, key),
        ).fetchone()[0])

    def iterate(
        self, modality: str, key: str, *, after_rowid: int = 0, chunk: int = 20000
    ) -> Iterator[tuple[list[str], np.ndarray, int]]:
        """(figure ids, vectors, highest rowid) of the stored drawing vectors in rowid order, in chunks."""
        last = after_rowid
        while True:
            rows = self.db.execute(
                f"SELECT e.rowid, e.figure_id, e.dim, e.vector {_DRAWINGS} AND e.rowid > ? ORDER BY e.rowid LIMIT ?",
                (modality, key, last, chunk),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[1] for r in rows], from_blobs([r[3] for r in rows], rows[0][2]), last

    def fetch(self, modality: str, key: str, figure_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors of the given figures (those that have one)."""
        ids = list(dict.fromkeys(figure_ids))
        found: dict[str, np.ndarray] = {}
        db = self.db
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = db.execute(
                f"SELECT figure_id, dim, vector FROM embeddings WHERE modality=? AND encoder=? "
                f"AND figure_id IN ({placeholders(part)})",
                (modality, key, *part),
            )
            for figure_id, dim, blob in rows:
                found[figure_id] = np.frombuffer(blob, dtype="<f4", count=dim).astype(np.float32)
        return found

    def keys(self, modality: str) -> dict[str, int]:
        """Encoder keys that have stored vectors of a modality, with their counts."""
        rows = self.db.execute("SELECT encoder, COUNT(*) FROM embeddings WHERE modality=? GROUP BY encoder", (modality,))
        return {r[0]: int(r[1]) for r in rows}
