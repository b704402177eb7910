"""The words of each figure's text as an SQLite FTS5 table, for the lexical (BM25) part of the text channel.

One row per figure that has text: its title, brief description, linked sentences, drawing words and the
names of its reference signs (``figsearch.search.lexical.figure_document``), in one column, tokenised by
``unicode61`` with diacritics removed ("Wärmeübertrager" matches "warmeubertrager"). ``figure_lexical``
maps a figure to its FTS row and the digest of the text it holds, so that an index run rewrites only the
figures whose text changed. The tables are created by the first writer that fills them
(``figsearch index``): a collection indexed before stop 24 has none until then, and a reader (read-only
connection) reads that as "no lexical index" (``present``).
"""

from __future__ import annotations

from figsearch.store.base import Repository, placeholders

FTS_TABLE = "figure_fts"
MAP_TABLE = "figure_lexical"
#: unicode61 folds case and, with remove_diacritics 2, accents; "-" and "'" separate tokens
TOKENIZER = "unicode61 remove_diacritics 2"
DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(body, tokenize='{TOKENIZER}')",
    f"""CREATE TABLE IF NOT EXISTS {MAP_TABLE} (
        figure_id TEXT PRIMARY KEY REFERENCES figures ON DELETE CASCADE,
        fts_row INTEGER NOT NULL UNIQUE,
        digest TEXT NOT NULL
    )""",
)


class LexicalRepository(Repository):
    def present(self) -> bool:
        """Whether the collection has the lexical tables (a collection indexed before stop 24 has not)."""
        return self.db.execute(
            f"SELECT COUNT(*) FROM sqlite_master WHERE name IN ('{FTS_TABLE}', '{MAP_TABLE}')"
        ).fetchone()[0] == 2

    def create(self) -> None:
        with self.transaction() as db:
            for statement in DDL:
                db.execute(statement)

    def digests(self) -> dict[str, str]:
        """figure id -> digest of the text its row holds."""
        if not self.present():
            return {}
        return {r[0]: r[1] for r in self.db.execute(f"SELECT figure_id, digest FROM {MAP_TABLE}")}

    def count(self) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM {MAP_TABLE}").fetchone()[0] if self.present() else 0

    def write(self, rows: list[tuple[str, str, str]]) -> None:
        """(figure id, text, digest) rows replace what those figures had."""
        if not rows:
            return
        with self.transaction() as db:
            self._drop(db, [figure_id for figure_id, _, _ in rows])
            for figure_id, text, digest in rows:
                row = db.execute(f"INSERT INTO {FTS_TABLE} (body) VALUES (?)", (text,)).lastrowid
                db.execute(f"INSERT INTO {MAP_TABLE} (figure_id, fts_row, digest) VALUES (?,?,?)",
                           (figure_id, row, digest))

    def delete(self, figure_ids: list[str]) -> int:
        if not figure_ids or not self.present():
            return 0
        with self.transaction() as db:
            return self._drop(db, figure_ids)

    def drop_orphans(self) -> int:
        """Delete the full-text rows no figure maps to any more: a figure deleted by SQL (a sheet whose image
        changed on re-ingest, cut figures dropped by a new reading) loses its ``figure_lexical`` row by
        cascade, but the FTS5 table cannot cascade, and its row would still count in BM25's statistics."""
        if not self.present():
            return 0
        with self.transaction() as db:
            return db.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid NOT IN (SELECT fts_row FROM {MAP_TABLE})").rowcount

    def _drop(self, db, figure_ids: list[str]) -> int:
        dropped = 0
        for start in range(0, len(figure_ids), 500):
            chunk = figure_ids[start:start + 500]
            rows = [r[0] for r in db.execute(
                f"SELECT fts_row FROM {MAP_TABLE} WHERE figure_id IN ({placeholders(chunk)})", chunk)]
            if rows:
                db.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({placeholders(rows)})", rows)
                db.execute(f"DELETE FROM {MAP_TABLE} WHERE figure_id IN ({placeholders(chunk)})", chunk)
            dropped += len(rows)
        return dropped

    def search(self, match: str, limit: int) -> list[tuple[str, float]]:
        """(figure id, BM25 score, higher is better) of the figures matching the FTS5 expression ``match``,
        best first. FTS5's ``bm25()`` is negative (lower is better); it is negated here."""
        rows = self.db.execute(
            f"""SELECT m.figure_id, -bm25({FTS_TABLE}) AS score FROM {FTS_TABLE} f
                JOIN {MAP_TABLE} m ON m.fts_row = f.rowid
                WHERE {FTS_TABLE} MATCH ? ORDER BY bm25({FTS_TABLE}) LIMIT ?""",
            (match, int(limit)),
        ).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def texts(self, figure_ids: list[str]) -> dict[str, str]:
        """The stored text of each figure (for the words that matched)."""
        found: dict[str, str] = {}
        for start in range(0, len(figure_ids), 500):
            chunk = figure_ids[start:start + 500]
            found.update((r[0], r[1]) for r in self.db.execute(
                f"""SELECT m.figure_id, f.body FROM {MAP_TABLE} m JOIN {FTS_TABLE} f ON f.rowid = m.fts_row
                    WHERE m.figure_id IN ({placeholders(chunk)})""", chunk))
        return found

    def languages(self, figure_ids) -> dict[str, str | None]:
        """figure id -> its patent's language as stored (``lang`` where known, else the reader's ``language``;
        None when neither says), for the figures that exist."""
        figure_ids = list(figure_ids)
        has_lang = any(r[1] == "lang" for r in self.db.execute("PRAGMA table_info(patents)"))
        column = "COALESCE(p.lang, p.language)" if has_lang else "p.language"
        found: dict[str, str | None] = {}
        for start in range(0, len(figure_ids), 500):
            chunk = figure_ids[start:start + 500]
            found.update((r[0], r[1]) for r in self.db.execute(
                f"""SELECT f.figure_id, {column} FROM figures f JOIN patents p
                    ON p.publication_number = f.publication_number
                    WHERE f.figure_id IN ({placeholders(chunk)})""", chunk))
        return found

    def language_counts(self) -> dict[str | None, int]:
        """language -> how many figures with a row are in it (their patents' languages as ``languages`` reads
        them; None: unknown). Empty without the table."""
        if not self.present():
            return {}
        has_lang = any(r[1] == "lang" for r in self.db.execute("PRAGMA table_info(patents)"))
        column = "COALESCE(p.lang, p.language)" if has_lang else "p.language"
        return {r[0]: r[1] for r in self.db.execute(
            f"""SELECT {column}, COUNT(*) FROM {MAP_TABLE} m JOIN figures f ON f.figure_id = m.figure_id
                JOIN patents p ON p.publication_number = f.publication_number GROUP BY 1""")}

    def sign_names(self, figure_id: str) -> list[str]:
        """The glossary names of the reference signs the figure's sentences are linked by ("thermal head")."""
        rows = self.db.execute(
            """SELECT DISTINCT g.term FROM figure_sentences fs JOIN glossary g
               ON g.publication_number = fs.publication_number AND g.sign = fs.sign
               WHERE fs.figure_id = ? AND fs.sign != '' ORDER BY g.term""",
            (figure_id,),
        ).fetchall()
        return [r[0] for r in rows]
