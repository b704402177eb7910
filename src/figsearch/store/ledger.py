"""Which input files are done (``sources``) and which failed and why (``failures``)."""

from __future__ import annotations

import json

from figsearch.fsutil import utcnow
from figsearch.records import Failure
from figsearch.store.base import Repository


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Ledger(Repository):
    def source_sha256(self, source: str) -> str | None:
        row = self.db.execute("SELECT sha256 FROM sources WHERE source=?", (source,)).fetchone()
        return row[0] if row else None

    def publications_by_digest(self) -> dict[str, list[str]]:
        """sha256 -> the publications read from a source with that digest, for every source done (a file moved or
        copied elsewhere has the same digest under another name)."""
        return {r[0]: json.loads(r[1]) for r in self.db.execute("SELECT sha256, publications_json FROM sources")}

    def mark_source_done(self, source: str, sha256: str, publications: list[str]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?)",
                       (source, sha256, json.dumps(publications), utcnow()))
            db.execute("DELETE FROM failures WHERE source=?", (source,))

    def record_failure(self, failure: Failure) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", (failure.source, failure.reason, utcnow()))

    def clear_failures(self, source: str, *, members_of: str | None = None, names=()) -> None:
        """Forget the failures of ``source``, of the members of ``members_of`` (``NAME#...``) and of ``names``."""
        with self.transaction() as db:
            if members_of is not None:
                db.execute("DELETE FROM failures WHERE source = ? OR source LIKE ? ESCAPE '\\'",
                           (source, _like_prefix(members_of)))
            else:
                db.execute("DELETE FROM failures WHERE source = ?", (source,))
            for name in names:
                db.execute("DELETE FROM failures WHERE source = ?", (name,))

    def failures(self) -> list[Failure]:
        return [Failure(r["source"], r["reason"]) for r in self.db.execute("SELECT * FROM failures ORDER BY source")]

    def failure_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM failures").fetchone()[0]

    def source_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
