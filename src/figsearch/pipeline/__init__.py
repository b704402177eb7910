"""The write path: building and updating a collection, one stage after the other.

    ingest ──▶ read signs (OCR) and link ──▶ embed ──▶ index

Every stage is a plain function on a collection opened for writing, incremental (it does only
what is new or changed) and resumable (what it finished is committed, a rerun goes on from
there). The CLI's ``ingest``, ``ocr``, ``index`` and ``build`` commands call these; searches
never do (they read what the last run wrote, see figsearch.search.service).

- ``ingest(collection, paths)``: read patent documents into the store (figsearch.ingest's runner)
- ``read_signs(collection)``: OCR the drawings not read yet and link them to their sentences
  (figsearch.pipeline.signs)
- ``embed_and_index(collection)``: embed new or changed drawings and texts, then append to or
  rebuild each modality's index (figsearch.pipeline.embed, figsearch.pipeline.index)
- ``build(paths, collection_dir)``: all of them in turn, returning a ``BuildReport``
  (figsearch.pipeline.building; the public ``figsearch.build`` and ``figsearch build`` call it)
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from figsearch.ingest.runner import IngestSummary, Progress, ingest_paths
from figsearch.pipeline.building import BuildReport, build, check_ocr_engine
from figsearch.pipeline.index import UpdateReport, update_collection
from figsearch.pipeline.signs import SpotLinkReport, spot_and_link
from figsearch.store import Collection


def ingest(
    collection: Collection,
    paths: Iterable[str | os.PathLike],
    progress: Progress | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
) -> IngestSummary:
    """Read files, folders and archives into ``collection``; unchanged sources are skipped."""
    return ingest_paths(collection, paths, progress, jobs=jobs, force=force)


#: the OCR-and-link stage under its pipeline name
read_signs = spot_and_link
#: the embed-and-index stage under its pipeline name
embed_and_index = update_collection

__all__ = [
    "BuildReport", "IngestSummary", "SpotLinkReport", "build", "UpdateReport", "check_ocr_engine", "embed_and_index", "ingest",
    "read_signs", "spot_and_link", "update_collection",
]
