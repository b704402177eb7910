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
- ``remove_patents(collection, numbers)``: take patents out, then update the indexes from the stored
  vectors (figsearch.pipeline.remove; ``figsearch remove`` and ``figsearch.remove`` call it)
- ``build(paths, collection_dir)``: all of them in turn, returning a ``BuildReport``
  (figsearch.pipeline.building; the public ``figsearch.build`` and ``figsearch build`` call it)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from figsearch.ingest.runner import IngestSummary, Progress
    from figsearch.store import Collection

#: what this package gives, and the module each comes from: imported when first asked for
#: (PEP 562), so that importing one stage's module (a Ray worker imports figsearch.pipeline's
#: ray_worker, which needs only the ingest, the signs and the embedding) does not import the
#: whole write path with it
_NAMES = {
    "IngestSummary": ("figsearch.ingest.runner", "IngestSummary"),
    "BuildReport": ("figsearch.pipeline.building", "BuildReport"),
    "build": ("figsearch.pipeline.building", "build"),
    "check_ocr_engine": ("figsearch.pipeline.building", "check_ocr_engine"),
    "UpdateReport": ("figsearch.pipeline.index", "UpdateReport"),
    "update_collection": ("figsearch.pipeline.index", "update_collection"),
    #: the embed-and-index stage under its pipeline name
    "embed_and_index": ("figsearch.pipeline.index", "update_collection"),
    "RemoveReport": ("figsearch.pipeline.remove", "RemoveReport"),
    "remove_patents": ("figsearch.pipeline.remove", "remove_patents"),
    "SpotLinkReport": ("figsearch.pipeline.signs", "SpotLinkReport"),
    "spot_and_link": ("figsearch.pipeline.signs", "spot_and_link"),
    #: the OCR-and-link stage under its pipeline name
    "read_signs": ("figsearch.pipeline.signs", "spot_and_link"),
}


def ingest(
    collection: Collection,
    paths: Iterable[str | os.PathLike],
    progress: Progress | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
) -> IngestSummary:
    """Read files, folders and archives into ``collection``; unchanged sources are skipped."""
    from figsearch.ingest.runner import ingest_paths

    return ingest_paths(collection, paths, progress, jobs=jobs, force=force)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _NAMES[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMES])


__all__ = [
    "BuildReport", "IngestSummary", "SpotLinkReport", "build", "UpdateReport", "check_ocr_engine", "embed_and_index", "ingest",
    "read_signs", "RemoveReport", "remove_patents", "spot_and_link", "update_collection",
]
