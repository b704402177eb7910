"""Running an ingest: plan units, skip unchanged ones, process the rest, write the store.

``ingest_paths`` is what the CLI and the pipeline call. One bad document never aborts a
run: it becomes a ``Failure`` (stored, reported, retried next time). A unit is marked done
in the ``sources`` table with the sha256 of everything it read, in the same transaction as
its records, so an interrupted run resumes where it stopped and an unchanged unit is
skipped without decoding anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from figsearch.errors import CollectionError, FigsearchError
from figsearch.ingest import archives, remote
from figsearch.ingest.base import Unit
from figsearch.ingest.plan import Namer, Plan, plan_paths
from figsearch.ingest.process import Ingested, UnitResult
from figsearch.ingest.workers import run_units
from figsearch.records import Failure, Figure, Patent
from figsearch.store import Collection
from figsearch.fsutil import sha256_file

log = logging.getLogger(__name__)

#: run_units(units, collection root, jobs) -> the UnitResult of each unit, in the order given
RunUnits = Callable[[list[Unit], str, int], Iterator[UnitResult]]


class Progress(Protocol):
    """What a caller (the CLI's progress bar) is told while a run goes on."""

    def start(self, total: int) -> None: ...

    def advance(self, unit: Unit, result: UnitResult | None) -> None: ...

    def failure(self, failure: Failure) -> None: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def advance(self, unit: Unit, result: UnitResult | None) -> None:
        pass

    def failure(self, failure: Failure) -> None:
        pass


class CommittedForwarder:
    """A ``Progress`` that passes everything on to ``inner`` (if any) and, after each unit, hands the
    publication numbers of the documents that unit committed (each once, in order; maybe none) to
    ``committed``: how the overlapped and the Ray builds start work on a document as soon as it is in."""

    def __init__(self, inner: Progress | None) -> None:
        self.inner = inner

    def start(self, total: int) -> None:
        if self.inner:
            self.inner.start(total)

    def failure(self, failure: Failure) -> None:
        if self.inner:
            self.inner.failure(failure)

    def advance(self, unit: Unit, result: UnitResult | None) -> None:
        if self.inner:
            self.inner.advance(unit, result)
        self.committed(list(dict.fromkeys(d.patent.publication_number for d in (result.documents if result else []))))

    def committed(self, numbers: list[str]) -> None:
        pass


@dataclass
class IngestSummary:
    documents: int = 0
    figures: int = 0
    failures: list[Failure] = field(default_factory=list)
    skipped_unchanged: int = 0
    #: of those, read before under another name (the input folder moved, a copy elsewhere): same bytes, same names
    skipped_moved: int = 0
    #: archives whose bytes are unchanged since a completed run: not even unpacked
    skipped_archives: int = 0
    units: int = 0
    ignored_files: int = 0
    metadata_files: int = 0
    missing_images: int = 0
    unreferenced_images: int = 0
    seconds: float = 0.0
    #: stored files of figures that re-read documents no longer have; deleted at the end of the run where no
    #: figure names them (then, a unit decoded ahead that writes the same name has committed its row)
    dropped_files: list[str] = field(default_factory=list, repr=False)
    #: how many of them were deleted
    removed_files: int = 0

    def as_dict(self) -> dict:
        return {
            "documents": self.documents,
            "figures": self.figures,
            "failures": len(self.failures),
            "skipped_unchanged": self.skipped_unchanged,
            "skipped_moved": self.skipped_moved,
            "skipped_archives": self.skipped_archives,
            "units": self.units,
            "ignored_files": self.ignored_files,
            "metadata_files": self.metadata_files,
            "missing_images": self.missing_images,
            "unreferenced_images": self.unreferenced_images,
            "removed_files": self.removed_files,
            "seconds": round(self.seconds, 2),
        }


def default_jobs() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def ingest_paths(
    collection: Collection,
    paths: Iterable[str | os.PathLike],
    progress: Progress | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
    run_units: RunUnits | None = None,
) -> IngestSummary:
    """Ingest files, folders and archives into ``collection`` (opened for writing).

    ``paths`` may be URLs (``s3://``, ``file://``, ...): they are read through fsspec
    (figsearch.ingest.remote). ``run_units`` replaces the local worker processes (the Ray build
    passes its own, which yields the same ``UnitResult`` for each unit, in the same order).
    """
    if not collection.writable:
        raise FigsearchError(f"collection {collection.root} is open read-only; ingest needs write access")
    progress = progress or _Silent()
    started = time.perf_counter()
    summary = IngestSummary()
    with contextlib.ExitStack() as stack:
        paths = list(paths)
        staged = remote.stage([p for p in paths if remote.is_url(p)], stack, collection.root)
        local = [Path(p) for p in paths if not remote.is_url(p)]
        plan, opened = _plan_with_archives(local, stack, collection, summary, force, staged)
        summary.ignored_files = len(plan.ignored)
        summary.metadata_files = len(plan.metadata_files)
        summary.unreferenced_images = len(plan.orphans)
        for orphan in plan.orphans:
            log.warning("%s: image not referenced by the patent document(s) in its folder; skipped", orphan)
        for failure in plan.failures:
            _fail(collection, summary, progress, failure)
        todo: list[tuple[Unit, str]] = []
        summary.units = len(plan.units)
        known: dict[str, list[str]] | None = None  # every digest read before, under any name: loaded when needed
        for unit in plan.units:
            digest = unit_digest(unit)
            if not force and collection.source_sha256(unit.source) == digest:
                summary.skipped_unchanged += 1
                continue
            if not force:
                known = collection.ledger.publications_by_digest() if known is None else known
                # the same files (names and bytes) read before from another folder; a unit whose patent is named by
                # its folder (an image folder) must also have been read as that patent: two folders may hold the
                # same blank "D00001.png"
                named = unit.options.get("publication")
                if digest in known and (named is None or known[digest] == [named]):
                    collection.mark_source_done(unit.source, digest, known[digest])
                    summary.skipped_unchanged += 1
                    summary.skipped_moved += 1
                    continue
            todo.append((unit, digest))
        progress.start(len(todo))
        for (unit, digest), result in zip(todo, _run(todo, collection, jobs, run_units)):
            _commit(collection, unit, digest, result, summary, progress)
            progress.advance(unit, result)
        # every unit of these archives is committed: next time, an unchanged archive is not even unpacked
        for name, digest in opened:
            collection.mark_source_done(name, digest, [])
        if summary.dropped_files:
            summary.removed_files = collection.files.remove(collection.patents.unreferenced(summary.dropped_files))
    summary.seconds = time.perf_counter() - started
    log.info("ingest: %s", summary.as_dict())
    return summary


def _plan_with_archives(paths: list[Path], stack: contextlib.ExitStack, collection: Collection,
                        summary: IngestSummary, force: bool,
                        staged: list[tuple[Path, Namer]] = ()) -> tuple[Plan, list[tuple[str, str]]]:
    plan = plan_paths(paths, exclude=collection.root)
    for root, namer in staged:
        _extend(plan, plan_paths([root], namer))
    pending = list(plan.archives)
    plan.archives = []
    opened: list[tuple[str, str]] = []
    depth = {name: 1 for _, name in pending}
    while pending:
        path, name = pending.pop(0)
        digest = sha256_file(path)
        if not force and collection.source_sha256(name) == digest:
            summary.skipped_archives += 1
            continue
        try:
            extracted = archives.extract(path, name, stack, collection.root)
        except FigsearchError as exc:
            plan.failures.append(Failure(name, str(exc)))
            continue
        inner = plan_paths([extracted.root], Namer(extracted.root, name))
        plan.units.extend(inner.units)
        plan.failures.extend(extracted.failures + inner.failures)
        plan.ignored.extend(inner.ignored)
        plan.metadata_files.extend(inner.metadata_files)
        plan.orphans.extend(inner.orphans)
        for inner_path, inner_name in inner.archives:
            level = depth[name] + 1
            if level > archives.MAX_NESTING:
                plan.failures.append(Failure(inner_name, f"archive nested more than {archives.MAX_NESTING} deep; "
                                                         "not opened"))
                continue
            depth[inner_name] = level
            pending.append((inner_path, inner_name))
        opened.append((name, digest))
    return plan, opened


def _extend(plan: Plan, other: Plan) -> None:
    for name in ("units", "failures", "ignored", "metadata_files", "archives", "orphans"):
        getattr(plan, name).extend(getattr(other, name))


def unit_digest(unit: Unit) -> str:
    """sha256 of everything a unit reads, so that a changed drawing re-ingests its patent."""
    digest = hashlib.sha256()
    digest.update(f"{unit.reader}\0{unit.byte_range}\0".encode())
    for index, path in enumerate(unit.files):
        digest.update(os.fsencode(path.name) + b"\0")  # file names need not be UTF-8
        try:
            if index == 0 and unit.byte_range is not None:
                digest.update(unit.read_bytes())
                continue
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            digest.update(f"unreadable:{exc.errno}".encode())
    return digest.hexdigest()


def _run(todo: list[tuple[Unit, str]], collection: Collection, jobs: int | None,
         runner: RunUnits | None = None) -> Iterator[UnitResult]:
    jobs = default_jobs() if jobs is None else max(1, jobs)
    yield from (runner or run_units)([unit for unit, _ in todo], str(collection.root), jobs)


def _clean_failure(failure: Failure) -> Failure:
    source, reason = _storable(failure.source), _storable(failure.reason)
    # domain errors name their input; the failure line names it already ("SOURCE: why", "SOURCE page 3: why")
    if reason.startswith(f"{source}: "):
        reason = reason[len(source) + 2:]
    elif reason.startswith(f"{source} page "):
        reason = reason[len(source) + 1:]
    return Failure(source, reason)


def _storable(text: str) -> str:
    # a file name that is not UTF-8 carries surrogate escapes, which SQLite refuses
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _fail(collection: Collection, summary: IngestSummary, progress: Progress, failure: Failure) -> None:
    failure = _clean_failure(failure)
    try:
        collection.record_failure(failure)
    except sqlite3.OperationalError as exc:  # a full disk: one clear error, as for a unit's commit (_commit)
        raise CollectionError(f"cannot write to collection {collection.root}: {exc}") from None
    _report(summary, progress, failure)


def _report(summary: IngestSummary, progress: Progress, failure: Failure) -> None:
    summary.failures.append(failure)
    progress.failure(failure)


def _commit(collection: Collection, unit: Unit, digest: str, result: UnitResult, summary: IngestSummary,
            progress: Progress) -> None:
    """Records, failures and the done-mark of one unit, in one transaction (all or nothing)."""
    summary.missing_images += len(result.missing_images)
    if result.missing_images:
        log.info("%s: %d referenced image(s) not present beside it", unit.source, len(result.missing_images))
    failures = [_clean_failure(f) for f in ([result.fatal] if result.fatal else []) + result.failures]
    try:
        summary.dropped_files += _write(collection, unit, digest, result, failures)
    except sqlite3.OperationalError as exc:
        raise CollectionError(f"cannot write to collection {collection.root}: {exc}") from None
    except (sqlite3.IntegrityError, sqlite3.InterfaceError, ValueError) as exc:
        # records this code could not store (rolled back): one document fails, the run goes on
        log.exception("cannot store what was read from %s", unit.source)
        result.documents = []
        failures = [_clean_failure(Failure(unit.source, f"read, but cannot be stored ({type(exc).__name__}: {exc})"))]
        _write(collection, unit, digest, UnitResult(unit, fatal=failures[0]), failures)
    summary.documents += len(result.documents)
    summary.figures += sum(len(d.figures) for d in result.documents)
    for failure in failures:
        _report(summary, progress, failure)


def _write(collection: Collection, unit: Unit, digest: str, result: UnitResult, failures: list[Failure]) -> list[str]:
    """One unit's records in one transaction; returns the stored files of the figures it dropped."""
    dropped: list[str] = []
    with collection.transaction():
        # failures of an earlier try of this unit are replaced by this try's outcome
        collection.ledger.clear_failures(unit.source, members_of=unit.source + "#", names=sorted(_file_names(unit)))
        for ingested in result.documents:
            patent, figures = _merge_existing(collection, ingested, unit)
            dropped += collection.upsert_patent(patent, figures)
        if result.fatal is None:
            collection.mark_source_done(unit.source, digest, [d.patent.publication_number for d in result.documents])
        for failure in failures:  # after the done-mark, which clears the unit's own failure row
            collection.record_failure(failure)
    return dropped


def _file_names(unit: Unit) -> set[str]:
    namer = unit.options.get("namer")
    return {namer(path) if namer else str(path) for path in unit.files}


#: readers whose document holds the whole patent (text and drawings): a second one of the same kind is a new version
WHOLE_DOCUMENT_FORMATS = ("ep-xml", "us-xml", "us-xml-old")


def _merge_existing(collection: Collection, ingested: Ingested, unit: Unit) -> tuple[Patent, list[Figure]]:
    """A patent already read from another source (its XML and a PDF of it): keep both sets of figures.

    Text and bibliographic fields missing from the new source are kept from the stored one. A patent
    document of the same format as the stored one (a corrected XML in the week's folder) is a new version
    of it instead: it replaces the stored one, whose drawings (the images beside it) go with it; figures
    read from other sources (a PDF of it) stay.
    """
    patent, figures = ingested.patent, list(ingested.figures)
    stored_before, stored_source = collection.patents.stored_source(patent.publication_number)
    if not stored_before or stored_source == patent.source_path:
        return patent, figures
    stored = collection.patent(patent.publication_number)
    if patent.source_format == stored.source_format and patent.source_format in WHOLE_DOCUMENT_FORMATS:
        replaced = str(Path(stored_source or "").parent)
        kept = [f for f in collection.figures(patent=patent.publication_number)
                if f.parent_id is None and f.figure_id not in {g.figure_id for g in figures}
                and not _beside(f.source_file, replaced)]
        for offset, figure in enumerate(kept):
            figure.sequence = len(figures) + offset
        log.info("%s: a new version of %s read from %s replaces it", patent.publication_number, stored_source,
                 patent.source_path)
        return patent, figures + kept
    for name in ("title", "publication_date", "filing_date", "language", "abstract", "kind", "application_number"):
        if not getattr(patent, name) and getattr(stored, name):
            setattr(patent, name, getattr(stored, name))
    if len(stored.paragraphs) > len(patent.paragraphs):
        patent.paragraphs = stored.paragraphs
    if len(stored.claims) > len(patent.claims):
        patent.claims = stored.claims
    patent.classifications = list(dict.fromkeys(stored.classifications + patent.classifications))
    if _richness(stored) > _richness(patent):
        patent.source_path, patent.source_format = stored.source_path, stored.source_format
    new_ids = {f.figure_id for f in figures}
    ours = _file_names(unit) | {unit.source}
    kept = [f for f in collection.figures(patent=patent.publication_number)
            if f.parent_id is None and f.figure_id not in new_ids and f.source_file not in ours]
    for offset, figure in enumerate(kept):
        figure.sequence = len(figures) + offset
    log.info("%s: also read from %s; figures of both kept", patent.publication_number, stored.source_path)
    return patent, figures + kept


def _beside(source_file: str | None, folder: str) -> bool:
    """Whether a figure was read from an image in ``folder`` (the drawings of the patent document there), not
    from a document of its own (a PDF)."""
    if not source_file or source_file.lower().endswith(".pdf"):
        return False
    return str(Path(source_file).parent) == folder


def _richness(patent: Patent) -> int:
    return len(patent.paragraphs) + len(patent.claims) + (patent.source_format in ("ep-xml", "us-xml", "us-xml-old"))

