"""What a collection holds, as one dict (``figsearch info``)."""

from __future__ import annotations

from figsearch.ingest.language import collection_language_counts
from figsearch.store import Collection


def collection_info(collection: Collection, *, failure_limit: int | None = None) -> dict:
    """Counts (patents, figures, failures, ...), formats and the failures with their reasons."""
    info = collection.counts()
    info.update(collection.patents.coverage())
    info["sources"] = collection.ledger.source_count()
    failures = collection.ledger.failures()
    shown = failures if failure_limit is None else failures[:failure_limit]
    info["failed"] = [{"source": f.source, "reason": f.reason} for f in shown]
    languages = collection_language_counts(collection)
    info["languages"] = languages.as_dict()
    info["languages_text"] = languages.describe()
    return info
