"""The whole write path in one call: ingest → read signs and link → embed → index.

``figsearch build`` and the public ``figsearch.build`` both call :func:`build`; ``figsearch
ingest`` calls it with ``index=False``. Each stage opens the collection for writing in turn
and commits what it finished, so an interrupted build goes on where it stopped when rerun.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from figsearch.errors import MissingDependency, ModelUnavailable
from figsearch.ingest.runner import IngestSummary, Progress, ingest_paths
from figsearch.pipeline.index import DEFAULT_BYTES_PER_VECTOR, ProgressFactory, UpdateReport, update_collection
from figsearch.pipeline.signs import SpotLinkReport, spot_and_link
from figsearch.store import Collection

#: called after each stage with its name ("ingest", "signs", "index") and the BuildReport so far
StageDone = Callable[[str, "BuildReport"], None]


@dataclass
class BuildReport:
    """What a build did, stage by stage."""

    collection: str
    ingest: IngestSummary
    #: the reference-sign stage's report; None when it was skipped or could not run
    signs: SpotLinkReport | None = None
    #: why the signs were not read ("skip_ocr", or the missing OCR engine in words); None when they were
    signs_skipped: str | None = None
    #: the embed-and-index stage's report; None with ``index=False``
    index: UpdateReport | None = None


def check_ocr_engine(name: str | None) -> None:
    """Raise the error that lists the valid engines when ``name`` is not one (before any work is done)."""
    if name is None:
        return
    from figsearch.ocr import OCR_ENGINES

    if name not in OCR_ENGINES:
        OCR_ENGINES.create(name)


def build(
    paths: Iterable[str | os.PathLike],
    collection: str | os.PathLike,
    *,
    jobs: int | None = None,
    force: bool = False,
    skip_ocr: bool = False,
    ocr_engine: str | None = None,
    index: bool = True,
    visual_model: str | None = None,
    text_model: str | None = None,
    index_factory: str | None = None,
    bytes_per_vector: float = DEFAULT_BYTES_PER_VECTOR,
    ingest_progress: Progress | None = None,
    signs_progress: Callable[[int, int], None] | None = None,
    index_progress: ProgressFactory | None = None,
    on_stage: StageDone | None = None,
    cluster=None,
) -> BuildReport:
    """Build or update the collection at ``collection`` (created if missing) from ``paths``.

    Rerunning it only does what is new. A missing OCR engine does not fail the build: the signs
    are left out and ``signs_skipped`` says why (text then comes from captions and titles).
    ``visual_model``/``text_model`` choose the encoders (default: the collection's, else
    drawing and minilm; ``text_model="none"`` leaves text out). ``cluster`` (a
    figsearch.pipeline.distributed.RayCluster) runs decoding, sign reading and embedding on a Ray
    cluster; this process still writes the collection, in the same order as a local build.
    """
    if not skip_ocr:  # a wrong engine name is said before the ingest, not after it
        check_ocr_engine(ocr_engine)
    root = str(collection)
    with Collection.open(root, create=True) as store:
        summary = ingest_paths(store, list(paths), ingest_progress, jobs=jobs, force=force,
                               run_units=cluster.run_units if cluster else None)
    report = BuildReport(collection=root, ingest=summary)
    if on_stage:
        on_stage("ingest", report)
    if skip_ocr:
        report.signs_skipped = "skip_ocr"
    else:
        try:
            with Collection.open(root, write=True) as store:
                report.signs = spot_and_link(store, engine=ocr_engine, progress=signs_progress, jobs=jobs,
                                             read_ahead=cluster.read_ahead if cluster else None)
        except (MissingDependency, ModelUnavailable) as exc:
            report.signs_skipped = str(exc)
        if on_stage:
            on_stage("signs", report)
    if index:
        with Collection.open(root, write=True) as store:
            report.index = update_collection(
                store, visual_model=visual_model, text_model=text_model, index_factory=index_factory,
                bytes_per_vector=bytes_per_vector, progress=index_progress,
                embedder=cluster.embedder if cluster else None,
            )
        if on_stage:
            on_stage("index", report)
    return report
