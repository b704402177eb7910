"""Patents with their classifications and paragraphs, and their figures."""

from __future__ import annotations

import json
from pathlib import Path

from figsearch.errors import NotFound
from figsearch.fsutil import utcnow
from figsearch.records import Classification, Figure, FigureRole, Paragraph, Patent, Section
from figsearch.store.base import Repository, column, placeholders

#: figure ids per query in IN (...) lists (SQLite's default limit on variables is far above)
_BATCH = 500


class PatentRepository(Repository):
    def upsert(self, patent: Patent, figures: list[Figure]) -> list[str]:
        """Insert or replace a patent with its text and figures, in one transaction.

        Figures whose stored image is unchanged keep their derived data (signs, vectors);
        figures no longer present are deleted with everything derived from them. Returns the stored files
        (images, thumbnails) of the deleted figures: the caller deletes, after its commit, those no figure
        names any more (``unreferenced``; a changed sheet's new image has the same name as its old one).
        """
        pub = patent.publication_number
        with self.transaction() as db:
            rows = db.execute(
                "SELECT figure_id, image_sha256, parent_id FROM figures WHERE publication_number=?", (pub,)
            ).fetchall()
            # figures cut from a sheet later (by OCR) are not in an ingest's list: they belong to their sheet
            old = {r["figure_id"]: r["image_sha256"] for r in rows if r["parent_id"] is None}
            db.execute(
                """INSERT INTO patents (publication_number, office, number, kind, title, publication_date,
                       filing_date, language, abstract, claims_json, source_path, source_format, ingested_at, lang,
                       application_number)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(publication_number) DO UPDATE SET
                       office=excluded.office, number=excluded.number, kind=excluded.kind, title=excluded.title,
                       publication_date=excluded.publication_date, filing_date=excluded.filing_date,
                       language=excluded.language, abstract=excluded.abstract, claims_json=excluded.claims_json,
                       source_path=excluded.source_path, source_format=excluded.source_format,
                       ingested_at=excluded.ingested_at, lang=excluded.lang,
                       application_number=excluded.application_number""",
                (
                    pub, patent.office, patent.number, patent.kind, patent.title, patent.publication_date,
                    patent.filing_date, patent.language, patent.abstract, json.dumps(patent.claims),
                    patent.source_path, patent.source_format, utcnow(), patent.lang, patent.application_number,
                ),
            )
            db.execute("DELETE FROM classifications WHERE publication_number=?", (pub,))
            db.executemany(
                "INSERT OR IGNORE INTO classifications VALUES (?,?,?)",
                [(pub, c.scheme, c.code) for c in patent.classifications],
            )
            db.execute("DELETE FROM paragraphs WHERE publication_number=?", (pub,))
            db.executemany(
                "INSERT INTO paragraphs (publication_number, seq, number, section, heading, text, lang) "
                "VALUES (?,?,?,?,?,?,?)",
                [(pub, i, p.number, p.section.value, p.heading, p.text, p.lang) for i, p in enumerate(patent.paragraphs)],
            )
            new_ids = {f.figure_id for f in figures}
            stale = set(old) - new_ids
            stale |= {f.figure_id for f in figures if f.figure_id in old and old[f.figure_id] != f.image_sha256}
            files: list[str] = []
            for sheet in stale:
                # the image changed or vanished: what was derived from it (cut figures included) is stale
                files.extend(p for r in db.execute("SELECT image_path, thumbnail_path FROM figures WHERE "
                                                   "figure_id=? OR parent_id=?", (sheet, sheet))
                             for p in (r[0], r[1]) if p)
                db.execute("DELETE FROM figures WHERE parent_id=?", (sheet,))
                db.execute("DELETE FROM figures WHERE figure_id=?", (sheet,))
            for figure in figures:
                db.execute(
                    """INSERT INTO figures (figure_id, publication_number, label, role, sequence, source_file,
                           page, description, image_path, thumbnail_path, width, height, image_sha256,
                           parent_id, box_json)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT(figure_id) DO UPDATE SET
                           label=COALESCE(excluded.label, figures.label),
                           role=CASE WHEN figures.role='split_sheet' AND excluded.role='drawing'
                                     THEN figures.role ELSE excluded.role END,
                           sequence=excluded.sequence, source_file=excluded.source_file, page=excluded.page,
                           description=COALESCE(excluded.description, figures.description),
                           image_path=excluded.image_path, thumbnail_path=excluded.thumbnail_path,
                           width=excluded.width, height=excluded.height, parent_id=excluded.parent_id,
                           box_json=excluded.box_json""",
                    _figure_values(figure),
                )
        return files

    def unreferenced(self, paths: list[str]) -> list[str]:
        """Those of ``paths`` that no figure names as its image or thumbnail."""
        db = self.db
        return [p for p in dict.fromkeys(paths) if not db.execute(
            "SELECT 1 FROM figures WHERE image_path=? OR thumbnail_path=? LIMIT 1", (p, p)).fetchone()]

    def remove(self, publication_numbers: list[str]) -> list[str]:
        """Delete patents with everything stored of them, in one transaction; returns the relative paths of
        their image and thumbnail files, which the caller deletes after the commit (so that a kill between
        leaves unused files, never rows that name missing ones).

        The figures' rows take their signs, links, words, notes and vectors with them (ON DELETE CASCADE);
        their BM25 rows are dropped here, as the full-text table cannot cascade. The ``sources`` rows stay:
        a rerun over the same unchanged files does not bring a removed patent back.
        """
        files: list[str] = []
        with self.transaction() as db:
            for start in range(0, len(publication_numbers), _BATCH):
                part = publication_numbers[start : start + _BATCH]
                rows = db.execute(
                    f"SELECT figure_id, image_path, thumbnail_path FROM figures "
                    f"WHERE publication_number IN ({placeholders(part)})", part).fetchall()
                files.extend(p for r in rows for p in (r["image_path"], r["thumbnail_path"]) if p)
                self._collection.lexical.delete([r["figure_id"] for r in rows])
                db.execute(f"DELETE FROM patents WHERE publication_number IN ({placeholders(part)})", part)
        return files

    # -- patents -------------------------------------------------------------------------------

    def get(self, publication_number: str) -> Patent:
        db = self.db
        row = db.execute("SELECT * FROM patents WHERE publication_number=?", (publication_number,)).fetchone()
        if row is None:
            raise NotFound(f"unknown patent {publication_number!r} in collection {self._collection.root}")
        pub = row["publication_number"]
        return Patent(
            publication_number=pub,
            office=row["office"],
            number=row["number"],
            kind=row["kind"],
            title=row["title"],
            publication_date=row["publication_date"],
            filing_date=row["filing_date"],
            language=row["language"],
            abstract=row["abstract"],
            claims=json.loads(row["claims_json"]),
            source_path=row["source_path"],
            source_format=row["source_format"],
            classifications=[
                Classification(r["scheme"], r["code"])
                for r in db.execute(
                    "SELECT scheme, code FROM classifications WHERE publication_number=? ORDER BY scheme, code", (pub,)
                )
            ],
            paragraphs=[
                Paragraph(text=r["text"], number=r["number"], section=Section(r["section"]), heading=r["heading"],
                          lang=column(r, "lang"))
                for r in db.execute("SELECT * FROM paragraphs WHERE publication_number=? ORDER BY seq", (pub,))
            ],
            lang=column(row, "lang"),
            application_number=column(row, "application_number"),
        )

    def title(self, publication_number: str) -> str | None:
        row = self.db.execute("SELECT title FROM patents WHERE publication_number=?", (publication_number,)).fetchone()
        return row[0] if row else None

    def _has_lang(self, table: str) -> bool:
        """Whether ``table`` has the ``lang`` column (schema v2); a reader of a collection not yet
        upgraded reads it as it is."""
        return self._has_column(table, "lang")

    def _has_column(self, table: str, name: str) -> bool:
        return any(row[1] == name for row in self.db.execute(f"PRAGMA table_info({table})"))

    def language(self, publication_number: str) -> str | None:
        """The patent's language: ``lang`` where known, else the one its reader recorded."""
        column = "COALESCE(lang, language)" if self._has_lang("patents") else "language"
        row = self.db.execute(f"SELECT {column} FROM patents WHERE publication_number=?", (publication_number,)).fetchone()
        return row[0] if row else None

    def stored_source(self, publication_number: str) -> tuple[bool, str | None]:
        """(whether the patent is stored, the source it was read from)."""
        row = self.db.execute(
            "SELECT source_path FROM patents WHERE publication_number=?", (publication_number,)
        ).fetchone()
        return (row is not None, row[0] if row else None)

    def source_paths(self) -> dict[str, str | None]:
        """publication number -> the source it was read from, for every patent."""
        return {r[0]: r[1] for r in self.db.execute("SELECT publication_number, source_path FROM patents")}

    def other_kinds(self, publication_number: str) -> list[str]:
        """The collection's other publications of the same application: those of the same office and number
        (EP1667425A1's B1, the application published again as granted) and, where the collection knows
        applications (schema 5), those of the same application under another number (a US application's grant),
        in order; empty for an unknown patent."""
        with_application = self._has_column("patents", "application_number")
        row = self.db.execute(
            f"SELECT office, number, {'application_number' if with_application else 'NULL'} FROM patents "
            "WHERE publication_number=?", (publication_number,)).fetchone()
        if row is None:
            return []
        same = "office=? AND number=?"
        args: tuple = (row[0], row[1])
        if row[2]:
            same, args = f"({same}) OR application_number=?", args + (row[2],)
        return [r[0] for r in self.db.execute(
            f"SELECT publication_number FROM patents WHERE ({same}) AND publication_number != ? "
            "ORDER BY publication_number", (*args, publication_number))]

    def read_from(self, path: str) -> list[str]:
        """The stored patents read from ``path``, from a file under it (a folder) or in it (an archive's members):
        by the sources recorded as read (a folder moved since is known by its new name too) and by the patents'
        own source; compared exactly (LIKE would fold case)."""
        path = path.rstrip("/") or "/"
        where = "{0} = ? OR substr({0}, 1, ?) IN (?, ?)"
        args = (path, len(path) + 1, path + "/", path + "!")
        found = {n for r in self.db.execute(f"SELECT publications_json FROM sources WHERE {where.format('source')}",
                                            args) for n in json.loads(r[0])}
        found |= {r[0] for r in self.db.execute(
            f"SELECT publication_number FROM patents WHERE {where.format('source_path')}", args)}
        stored = set(self.numbers()) if found else set()
        return sorted(found & stored)

    def numbers(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT publication_number FROM patents ORDER BY publication_number")]

    def language_rows(self) -> tuple[list[tuple[str | None, int]], list[tuple[str | None, int]]]:
        """(language, count) of documents and of paragraphs: a patent's ``lang``, else the language
        its reader recorded. A reader of a collection not yet upgraded (no ``lang`` columns) gets
        the recorded languages and no paragraph rows."""
        column = "COALESCE(lang, language)" if self._has_lang("patents") else "language"
        documents = [(lang, n) for lang, n in self.db.execute(f"SELECT {column}, COUNT(*) FROM patents GROUP BY 1")]
        paragraphs = []
        if self._has_lang("paragraphs"):
            paragraphs = [(lang, n) for lang, n in self.db.execute("SELECT lang, COUNT(*) FROM paragraphs GROUP BY 1")]
        return documents, paragraphs

    def section_paragraphs(self, publication_number: str, section: Section) -> list[tuple[str | None, str]]:
        """(number, text) of a patent's paragraphs of one section, in order."""
        rows = self.db.execute(
            "SELECT number, text FROM paragraphs WHERE publication_number=? AND section=? ORDER BY seq",
            (publication_number, section.value),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def all_classifications(self) -> list[tuple[str, str, str]]:
        """(publication number, scheme, code) of every stored classification."""
        return [tuple(r) for r in self.db.execute("SELECT publication_number, scheme, code FROM classifications")]

    # -- figures -------------------------------------------------------------------------------

    def figure(self, figure_id: str) -> Figure:
        row = self.db.execute("SELECT * FROM figures WHERE figure_id=?", (figure_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown figure id {figure_id!r} in collection {self._collection.root}")
        return figure_from_row(row)

    def figures_with_image(self, image_sha256: str) -> list[Figure]:
        """The figures whose stored PNG has this digest (``figures_by_image``; a collection a reader found at an
        older schema version has no index yet and is scanned), in collection order."""
        rows = self.db.execute("SELECT * FROM figures WHERE image_sha256=? ORDER BY publication_number, sequence, "
                               "figure_id", (image_sha256,))
        return [figure_from_row(r) for r in rows]

    def figures(self, *, patent: str | None = None, roles: tuple[FigureRole, ...] | None = None) -> list[Figure]:
        sql = "SELECT * FROM figures"
        clauses, args = [], []
        if patent is not None:
            clauses.append("publication_number=?")
            args.append(patent)
        if roles is not None:
            clauses.append(f"role IN ({placeholders(roles)})")
            args.extend(r.value for r in roles)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY publication_number, sequence, figure_id"
        return [figure_from_row(r) for r in self.db.execute(sql, args)]

    def drawings_passing(
        self,
        figure_ids: list[str],
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        office: str | None = None,
        classification_prefix: str | None = None,
    ) -> dict[str, str]:
        """figure id -> patent, for those of ``figure_ids`` that are drawings of patents within the bounds.

        ``date_to`` may be partial ("2021", "2021-06"): it takes in the whole year or month.
        ``classification_prefix`` is compared without spaces, in upper case.
        """
        clauses, args = [], []
        if date_from:
            clauses.append("p.publication_date >= ?")
            args.append(date_from)
        if date_to:
            clauses.append("substr(p.publication_date, 1, ?) <= ?")
            args.extend([len(date_to), date_to])
        if office is not None:
            clauses.append("p.office = ?")
            args.append(office)
        if classification_prefix:
            prefix = classification_prefix.replace(" ", "").upper()
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(
                "EXISTS (SELECT 1 FROM classifications c WHERE c.publication_number = p.publication_number "
                "AND upper(replace(c.code, ' ', '')) LIKE ? ESCAPE '\\')"
            )
            args.append(escaped + "%")
        where = "".join(f" AND {c}" for c in clauses)
        allowed: dict[str, str] = {}
        db = self.db
        for start in range(0, len(figure_ids), _BATCH):
            part = figure_ids[start : start + _BATCH]
            rows = db.execute(
                f"""SELECT f.figure_id, f.publication_number FROM figures f
                    JOIN patents p ON p.publication_number = f.publication_number
                    WHERE f.role = ? AND f.figure_id IN ({placeholders(part)}){where}""",
                (FigureRole.DRAWING.value, *part, *args),
            )
            allowed.update((r[0], r[1]) for r in rows)
        return allowed

    # -- counts --------------------------------------------------------------------------------

    def counts(self, root: Path) -> dict:
        db = self.db

        def scalar(sql: str, *args) -> int:
            return db.execute(sql, args).fetchone()[0]

        formats = {
            r[0] or "unknown": r[1] for r in db.execute("SELECT source_format, COUNT(*) FROM patents GROUP BY source_format")
        }
        roles = {r[0]: r[1] for r in db.execute("SELECT role, COUNT(*) FROM figures GROUP BY role")}
        return {
            "collection": str(root),
            "patents": scalar("SELECT COUNT(*) FROM patents"),
            "figures": scalar("SELECT COUNT(*) FROM figures"),
            "figures_by_role": roles,
            "paragraphs": scalar("SELECT COUNT(*) FROM paragraphs"),
            "formats": formats,
            "failures": scalar("SELECT COUNT(*) FROM failures"),
        }

    def coverage(self) -> dict:
        """What ``figsearch info`` adds to the counts: offices, labels, descriptions, text, classifications."""
        db = self.db

        def scalar(sql: str) -> int:
            return db.execute(sql).fetchone()[0]

        return {
            "offices": {r[0]: r[1] for r in db.execute("SELECT office, COUNT(*) FROM patents GROUP BY office")},
            "figures_with_description": scalar("SELECT COUNT(*) FROM figures WHERE description IS NOT NULL"),
            "figures_with_label": scalar("SELECT COUNT(*) FROM figures WHERE label IS NOT NULL"),
            "patents_with_text": scalar("SELECT COUNT(DISTINCT publication_number) FROM paragraphs"),
            "patents_without_figures": scalar(
                "SELECT COUNT(*) FROM patents p WHERE NOT EXISTS (SELECT 1 FROM figures f WHERE "
                "f.publication_number = p.publication_number)"
            ),
            "classifications": {
                r[0]: r[1] for r in db.execute("SELECT scheme, COUNT(*) FROM classifications GROUP BY scheme")
            },
        }


def _figure_values(figure: Figure) -> tuple:
    return (
        figure.figure_id, figure.patent, figure.label, figure.role.value, figure.sequence, figure.source_file,
        figure.page, figure.description, figure.image_path, figure.thumbnail_path, figure.width,
        figure.height, figure.image_sha256, figure.parent_id, json.dumps(figure.box) if figure.box else None,
    )


def figure_from_row(row) -> Figure:
    return Figure(
        figure_id=row["figure_id"],
        patent=row["publication_number"],
        label=row["label"],
        role=FigureRole(row["role"]),
        source_file=row["source_file"],
        page=row["page"],
        description=row["description"],
        sequence=row["sequence"],
        image_path=row["image_path"],
        thumbnail_path=row["thumbnail_path"],
        width=row["width"],
        height=row["height"],
        parent_id=row["parent_id"],
        image_sha256=row["image_sha256"],
        box=tuple(json.loads(row["box_json"])) if row["box_json"] else None,
    )
