"""The whole write path in one call: ingest → read signs and link → embed → index.

``figsearch build`` and the public ``figsearch.build`` both call :func:`build`; ``figsearch
ingest`` calls it with ``index=False``. Each stage opens the collection for writing in turn
and commits what it finished, so an interrupted build goes on where it stopped when rerun.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from figsearch.errors import MissingDependency, ModelUnavailable
from figsearch.ingest.runner import IngestSummary, Progress, default_jobs, ingest_paths
from figsearch.pipeline.index import DEFAULT_BYTES_PER_VECTOR, ProgressFactory, UpdateReport, update_collection
from figsearch.pipeline.signs import SpotLinkReport, spot_and_link
from figsearch.store import Collection

log = logging.getLogger(__name__)

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
    overlap: bool = False,
) -> BuildReport:
    """Build or update the collection at ``collection`` (created if missing) from ``paths``.

    Rerunning it only does what is new. A missing OCR engine does not fail the build: the signs
    are left out and ``signs_skipped`` says why (text then comes from captions and titles).
    ``visual_model``/``text_model`` choose the encoders (default: the collection's, else
    drawing and minilm; ``text_model="none"`` leaves text out). ``cluster`` (a
    figsearch.pipeline.distributed.RayCluster) runs decoding, sign reading and embedding on a Ray
    cluster; this process still writes the collection, in the same order as a local build.

    With ``overlap`` and more than one job (and no ``cluster``), the ingest, the reading of the
    signs and the embedding run at the same time (figsearch.pipeline.overlapped); it gives the same
    collection for about the same CPU time, but was not measured faster on the shared 2-core
    development machine, where a build gets a fixed share of the CPUs (docs/performance.md), so
    it is not the default.
    """
    if not skip_ocr:  # a wrong engine name is said before the ingest, not after it
        check_ocr_engine(ocr_engine)
    root = str(collection)
    if cluster is not None:  # the Ray build starts its workers, which load the models while they ingest
        cluster.start(root, ocr_engine=ocr_engine, skip_ocr=skip_ocr, index=index, visual_model=visual_model,
                      text_model=text_model)
    streamed = None
    if overlap and cluster is None and index and not skip_ocr and (jobs or default_jobs()) > 1:
        streamed = _stream(paths, root, jobs=jobs or default_jobs(), force=force, ocr_engine=ocr_engine,
                           visual_model=visual_model, text_model=text_model, ingest_progress=ingest_progress,
                           progress=signs_progress)
    if streamed is not None:
        summary = streamed[0]
    else:
        with Collection.open(root, create=True) as store:
            # the Ray build writes the signs its workers read while the ingest goes on
            summary = ingest_paths(store, list(paths), cluster.ingest_progress(store, ingest_progress) if cluster
                                   else ingest_progress, jobs=jobs, force=force,
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
            if streamed is not None:  # the stream read most figures; spot_and_link did what it left
                report.signs = _merge_signs(streamed[1].signs, report.signs)
            if cluster is not None:  # and so did the Ray build's driver while ingesting
                report.signs = cluster.signs_done(report.signs)
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
                loaded=streamed[1].encoders if streamed is not None else None,
            )
        if streamed is not None:
            _count_streamed(report.index, streamed[1])
        if on_stage:
            on_stage("index", report)
    return report


def _stream(paths, root: str, **options):
    """(ingest summary, StreamReport) of the overlapped stages, or None when the OCR engine cannot
    run (then the stages run in turn, and the signs stage says why it was skipped)."""
    from figsearch.pipeline.overlapped import stream

    with Collection.open(root, create=True) as store:
        try:
            return stream(store, list(paths), **options)
        except (MissingDependency, ModelUnavailable) as exc:
            log.info("stages in turn: %s", exc)
            return None


def _merge_signs(first: SpotLinkReport, then: SpotLinkReport) -> SpotLinkReport:
    for name in ("figures", "signs", "links", "split_sheets", "new_figures", "relinked_patents"):
        setattr(first, name, getattr(first, name) + getattr(then, name))
    first.notes.update(then.notes)
    return first


def _count_streamed(index_report: UpdateReport, streamed) -> None:
    """Vectors the stream stored count as embedded by this build, not as found unchanged."""
    done = {"visual": (streamed.key, streamed.embedded), "text": (streamed.text_key, streamed.texts)}
    for embedded in index_report.embedded:
        key, count = done[embedded.modality]
        if embedded.encoder == key:
            moved = min(count, embedded.unchanged)
            embedded.embedded += moved
            embedded.unchanged -= moved
            if embedded.modality == "visual":  # cut figures the stream stored mixed with their sheet's
                embedded.mixed += streamed.mixed
