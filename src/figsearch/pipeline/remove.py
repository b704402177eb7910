"""Take patents out of a collection (``figsearch remove``): a document ingested by mistake, or withdrawn.

Their rows go in one transaction (figures, signs, links, words, vectors, BM25 rows: ``PatentRepository.remove``),
then their image files, then the indexes are brought in line with the stored vectors as ``figsearch index``
does, from the stored vectors alone (no model is loaded): the index is rebuilt (0.2 s for the 505 vectors of
docs/serving.md's "Stop 28" collection; an IVF index is retrained). A search served meanwhile never shows a
removed figure: it keeps only hits that are still drawings of the collection
(``PatentRepository.drawings_passing``), and it opens the new indexes on its next search after they are published.

The files the patents were read from stay recorded as read, so a rerun over the same, unchanged files does
not bring them back; ``figsearch ingest --force FILE`` (or a changed file) does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from figsearch.errors import NotFound
from figsearch.index.sync import IndexReport
from figsearch.store import Collection

log = logging.getLogger(__name__)


@dataclass
class RemoveReport:
    #: the patents removed, as asked for
    patents: list[str] = field(default_factory=list)
    figures: int = 0
    files: int = 0
    indexes: list[IndexReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def remove_patents(collection: Collection, publication_numbers: list[str], *, missing_ok: bool = False,
                   reindex: bool = True) -> RemoveReport:
    """Remove the patents ``publication_numbers`` from ``collection`` (opened for writing), then bring its indexes
    up to date (``reindex``). Unknown numbers raise NotFound naming them, before anything is removed, unless
    ``missing_ok`` (then they are named in the notes)."""
    report = RemoveReport()
    stored = set(collection.patent_numbers())
    wanted = list(dict.fromkeys(n.strip() for n in publication_numbers if n.strip()))
    unknown = [n for n in wanted if n not in stored]
    if unknown and not missing_ok:
        raise NotFound(f"not in collection {collection.root}: {', '.join(unknown)} (figsearch info lists what "
                       f"it holds; a publication number is written as stored, e.g. EP1667425A1, USD0907292S1)")
    report.patents = [n for n in wanted if n in stored]
    if unknown:
        report.notes.append(f"not in the collection, nothing to remove: {', '.join(unknown)}")
    if not report.patents:
        return report
    report.figures = sum(len(collection.figures(patent=n)) for n in report.patents)
    paths = collection.patents.remove(report.patents)
    report.files = collection.files.remove(paths)
    log.info("removed %d patents, %d figures, %d files", len(report.patents), report.figures, report.files)
    if reindex:
        report.indexes = sync_stored_indexes(collection, report.notes)
    else:
        report.notes.append("indexes not updated: searches skip the removed figures; figsearch index updates them")
    return report


def sync_stored_indexes(collection: Collection, notes: list[str]) -> list[IndexReport]:
    """Bring each modality's index in line with the stored vectors of the encoder it was built with, and the
    BM25 table with the figures' texts; no model is loaded and nothing is embedded."""
    from figsearch.index.settings import encoder_settings, factory_setting
    from figsearch.index.sync import IndexRequest, sync_indexes

    requests = []
    for modality in ("visual", "text"):
        settings = encoder_settings(collection, modality)
        if settings and settings.get("key"):
            requests.append(IndexRequest(modality, settings["key"], settings.get("identity") or {},
                                         factory_setting(collection, modality)))
    if not requests:
        notes.append("the collection has no indexes yet (figsearch index builds them)")
        return []
    if any(r.modality == "text" for r in requests):
        from figsearch.search import lexical

        notes.append(lexical.sync(collection).summary())
    return sync_indexes(collection, requests)
