"""What a collection holds, as one dict (``figsearch info``)."""

from __future__ import annotations

from figsearch.store import Collection


def collection_info(collection: Collection, *, failure_limit: int | None = None) -> dict:
    """Counts (patents, figures, failures, ...), formats and the failures with their reasons."""
    db = collection.db
    info = collection.counts()

    def scalar(sql: str) -> int:
        return db.execute(sql).fetchone()[0]

    info["offices"] = {r[0]: r[1] for r in db.execute("SELECT office, COUNT(*) FROM patents GROUP BY office")}
    info["figures_with_description"] = scalar("SELECT COUNT(*) FROM figures WHERE description IS NOT NULL")
    info["figures_with_label"] = scalar("SELECT COUNT(*) FROM figures WHERE label IS NOT NULL")
    info["patents_with_text"] = scalar(
        "SELECT COUNT(DISTINCT publication_number) FROM paragraphs"
    )
    info["patents_without_figures"] = scalar(
        "SELECT COUNT(*) FROM patents p WHERE NOT EXISTS (SELECT 1 FROM figures f WHERE "
        "f.publication_number = p.publication_number)"
    )
    info["classifications"] = {
        r[0]: r[1] for r in db.execute("SELECT scheme, COUNT(*) FROM classifications GROUP BY scheme")
    }
    info["sources"] = scalar("SELECT COUNT(*) FROM sources")
    rows = db.execute("SELECT source, reason FROM failures ORDER BY source").fetchall()
    shown = rows if failure_limit is None else rows[:failure_limit]
    info["failed"] = [{"source": r[0], "reason": r[1]} for r in shown]
    return info
