"""Turning one unit into records and stored image files; runs in a worker process.

The expensive part of ingest (decoding sheets, rendering PDF pages, PNG encoding) happens
here, so the runner can spread units over processes; the database is written by the
runner alone. Image files are written atomically under their final names; an image whose
record is never committed is harmless and overwritten by the next run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from figsearch.errors import CollectionError, FigsearchError
from figsearch import imaging
from figsearch.ingest.base import Unit, is_file, readers
from figsearch.records import Document, Failure, Figure, Patent, SourceImage
from figsearch.store import png_relpath
from figsearch.store.files import THUMB_PNG_LEVEL, write_png
from figsearch.fsutil import fsync_directories

log = logging.getLogger(__name__)

@dataclass
class Ingested:
    patent: Patent
    figures: list[Figure]


@dataclass
class UnitResult:
    unit: Unit
    documents: list[Ingested] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    #: a failure of the whole unit (nothing from it could be read)
    fatal: Failure | None = None
    missing_images: list[str] = field(default_factory=list)
    seconds: float = 0.0


def process_unit(unit: Unit, root: str) -> UnitResult:
    """Read ``unit`` and store its images under the collection ``root``; never raises for bad input."""
    started = time.perf_counter()
    result = UnitResult(unit)
    try:
        reader = readers.create(unit.reader)
        for item in reader.read(unit):
            if isinstance(item, Failure):
                result.failures.append(item)
                continue
            ingested = _store_document(item, unit, Path(root), result)
            if ingested is not None:
                result.documents.append(ingested)
    except CollectionError:
        raise  # the collection cannot be written (disk full, read-only): the run stops, not this unit
    except FigsearchError as exc:
        result.fatal = Failure(unit.source, str(exc))
    except MemoryError:
        result.fatal = Failure(unit.source, "out of memory while reading it")
    except RecursionError:
        result.fatal = Failure(unit.source, "nested too deeply to read")
    except Exception as exc:  # a reader bug must not end the run; say what happened
        log.exception("unexpected error reading %s", unit.source)
        result.fatal = Failure(unit.source, f"unexpected error ({type(exc).__name__}: {exc})")
    result.seconds = time.perf_counter() - started
    return result


def _display(unit: Unit, path: Path | None) -> str | None:
    if path is None:
        return None
    namer = unit.options.get("namer")
    return namer(path) if namer else str(path)


def _store_document(document: Document, unit: Unit, root: Path, result: UnitResult) -> Ingested | None:
    patent = document.patent
    pub = patent.publication_number
    figures: list[Figure] = []
    image_failures = 0
    for source_image in document.images:
        if source_image.path is not None and source_image.data is None and not is_file(source_image.path):
            result.missing_images.append(_display(unit, source_image.path))
            continue
        source_file = _display(unit, source_image.path) or unit.source
        name = source_file if source_image.path is not None else f"{unit.source} page {source_image.page}"
        try:
            figures.extend(_store_image(source_image, pub, name, source_file, root, start=len(figures)))
        except CollectionError:
            raise
        except FigsearchError as exc:
            image_failures += 1
            result.failures.append(Failure(name, str(exc)))
        except MemoryError:
            image_failures += 1
            result.failures.append(Failure(name, "out of memory while decoding the image"))
    if document.images and not figures and image_failures and not patent.paragraphs and not patent.abstract:
        return None  # nothing usable: the failures above say why
    # the runner commits these figures next: their files must survive a power cut that the commit survives
    fsync_directories({(root / path).parent for f in figures for path in (f.image_path, f.thumbnail_path) if path})
    return Ingested(patent, figures)


def _pages(source_image: SourceImage, name: str):
    if source_image.image is not None:
        yield source_image.page, 1, source_image.image
        return
    yield from imaging.open_pages(source_image.path, source_image.data, source=name)


def _store_image(source_image: SourceImage, pub: str, name: str, source_file: str, root: Path,
                 start: int) -> list[Figure]:
    out: list[Figure] = []
    for page, count, image in _pages(source_image, name):
        multi = count > 1
        key = f"{source_image.key}-p{page:03d}" if multi else source_image.key
        normalised = imaging.normalise(image)
        image_rel, image_sha = _save(root, "images", pub, key, normalised.image)
        thumb_rel, _ = _save(root, "thumbs", pub, key, normalised.thumbnail)
        out.append(Figure(
            figure_id=f"{pub}-{key}",
            patent=pub,
            label=source_image.label,
            role=source_image.role,
            source_file=source_file,
            page=source_image.page if source_image.image is not None else (page if multi else None),
            description=source_image.description,
            sequence=start + len(out),
            image_path=image_rel,
            thumbnail_path=thumb_rel,
            width=normalised.image.width,
            height=normalised.image.height,
            image_sha256=image_sha,
        ))
    return out


def _save(root: Path, folder: str, pub: str, key: str, image) -> tuple[str, str]:
    """(relative path, sha256) of ``image`` stored under ``folder`` (store.files.write_png: a drawing
    stored before with the same pixels keeps its file and digest, so its signs and vectors stay)."""
    relative = png_relpath(folder, pub, key)
    drawing = folder == "images"
    try:
        sha = write_png(root, relative, image, level=imaging.PNG_LEVEL if drawing else THUMB_PNG_LEVEL,
                        keep_same=drawing)
    except OSError as exc:
        raise CollectionError(f"cannot write {relative} in collection {root}: {exc.strerror or exc}") from None
    return relative, sha
