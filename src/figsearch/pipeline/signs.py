"""Read the reference signs of the drawings not read yet, then link each to its sentences.

``spot_and_link(collection)`` is what ``figsearch ocr`` (and ingest, after it) runs. It is
resumable: each figure is committed on its own with ``ocr_done_at`` set, and a rerun takes up the
figures whose ``ocr_done_at`` is still NULL. A patent whose description changed since its sentences
were built is relinked from the signs already stored, without OCR.

Here lives the scheduling (the engine, worker processes reading ahead, sheet cutting, the PNGs of
cut figures); what the signs mean for the text is figsearch.link's.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from figsearch.imaging import load_stored
from figsearch.link.glossary import brief_clause, glossary, label_keys
from figsearch.link.patent_text import PatentText, as_numerals, text_digest
from figsearch.records import DrawingWord, Figure, FigureRole, ReferenceSign, Section
from figsearch.store import Collection

log = logging.getLogger(__name__)


@dataclass
class SpotLinkReport:
    figures: int = 0  # figures read
    signs: int = 0  # reference numerals kept
    links: int = 0  # (figure, sentence) links written
    split_sheets: int = 0
    new_figures: int = 0  # figures cut from split sheets
    relinked_patents: int = 0
    words: int = 0  # words printed in the drawings (box labels, flowchart steps) stored
    notes: dict[str, list[str]] = field(default_factory=dict)


def _stored_digest(collection: Collection, patent: str) -> str:
    return text_digest(collection.patents.section_paragraphs(patent, Section.DESCRIPTION))


def _ensure_text(collection: Collection, patent_number: str, cache: dict, report: SpotLinkReport) -> PatentText:
    if patent_number in cache:
        return cache[patent_number]
    text = PatentText.of(collection.patent(patent_number))
    cache[patent_number] = text
    if collection.links.text_sha(patent_number) != text.text_sha256:
        with collection.transaction():
            names = glossary(patent_number, text.sentences, text.lang, text.mentions)  # mentions found once
            collection.links.write_patent_text(patent_number, text.sentences, names, text.text_sha256)
            done = collection.signs.read_figures(patent_number)
            for figure_id, label in done:  # the text changed under figures already read: relink them from their signs
                signs = text.classify(as_numerals(collection.signs.of(figure_id)))
                collection.signs.write(figure_id, signs, collection.signs.engine_of(figure_id))
                collection.links.write_links(figure_id, patent_number, text.links(label, signs))
        if done:
            report.relinked_patents += 1
    return text


def numerals_wanted(text: PatentText) -> bool:
    """Whether a numeral read in this patent's drawings can be one of its signs: not when its
    description cites none (a design patent's; ``PatentText.classify`` then makes every numeral an
    unlinked number). The readers then take no second look (``figsearch.ocr.reread.numerals_wanted``)."""
    return not text.sentences or bool(text.vocabulary)


def _load(collection: Collection, figure: Figure) -> Image.Image:
    if not figure.image_path:
        raise OSError("no stored image")
    return load_stored(collection.path(figure.image_path))


def _child_figures(collection: Collection, sheet: Figure, image: Image.Image, parts, signs, text: PatentText):
    """Store the images of the figures cut from ``sheet``; returns (figure, its signs in its own pixels) pairs."""
    from figsearch.ocr.split import inside

    sheet_key = sheet.figure_id.removeprefix(f"{sheet.patent}-")
    out = []
    for label, box in parts:
        key = "".join(label_keys(label)).lower() or "x"
        crop = image.crop(box)
        image_path, thumb_path, sha = collection.files.save_figure_images(sheet.patent, f"{sheet_key}-fig{key}", crop)
        brief = text.brief.get(label_keys(label)[0]) if label_keys(label) else None
        child = Figure(
            figure_id=f"{sheet.figure_id}-fig{key}", patent=sheet.patent, label=label, role=FigureRole.DRAWING,
            source_file=sheet.source_file, page=sheet.page,
            description=brief_clause(text.sentences[brief].text, label_keys(label)[0], text.lang) if brief is not None else None,
            sequence=sheet.sequence, image_path=image_path, thumbnail_path=thumb_path,
            width=crop.width, height=crop.height, image_sha256=sha, parent_id=sheet.figure_id, box=box,
        )
        own = [
            ReferenceSign(s.text, s.kind, (s.box[0] - box[0], s.box[1] - box[1], s.box[2] - box[0], s.box[3] - box[1]),
                          s.confidence)
            for s in signs if s.box and inside(s.box, box)
        ]
        out.append((child, own))
    return out


@dataclass
class Ahead:
    """What a Ray worker works out from a drawing's pixels and its text boxes (``figure_ahead``),
    so that the writer need not decode the drawing unless it cuts it."""

    words: list[DrawingWord]
    parts: list  # split_sheet's (label, box) of each figure on the sheet; [] when it holds one


def figure_ahead(image: Image.Image, read) -> Ahead:
    """``process_figure``'s words and sheet parts of a drawing, from its pixels and ``read`` (text boxes)."""
    from figsearch.ocr import parse_signs
    from figsearch.ocr.split import split_sheet

    signs = parse_signs(read)  # the labels are those of the linked signs (``classify`` changes numerals only)
    labels = {s.text for s in signs if s.kind == "figure_label"}
    return Ahead(drawing_words(image, read), split_sheet(image, signs) if len(labels) >= 2 else [])


class _AlreadyRead:
    """An engine that answers with a reading done before (a worker's): ``read_drawing`` then sorts
    those words without reading the sheet again. ``read`` already left the header out, and took the
    engine's second looks (``figsearch.ocr.reread``: a sideways sheet, a dithered one), which live in the
    engine's ``read_sheet``: these words are what ``read_drawing`` with the engine itself would sort."""

    def __init__(self, words) -> None:
        self.words = words

    def read_sheet(self, image):
        return self.words, None


def drawing_words(image: Image.Image, read) -> list[DrawingWord]:
    """The words printed in the drawing among the words ``read`` in it (``figsearch.ocr.read_drawing``'s
    ``words``: read surely, mostly letters, not a sign, a label or the header)."""
    from figsearch.ocr import read_drawing

    # the words only: the content box (a binarisation of the whole sheet) is not wanted here
    found = read_drawing(_AlreadyRead(read), image, content=False).words
    return [DrawingWord(w.text, tuple(int(v) for v in w.box), w.confidence, w.line) for w in found]


def _words_inside(words: list[DrawingWord], box) -> list[DrawingWord]:
    """The words of a sheet that lie in the figure cut from it at ``box``, in its own pixels."""
    from figsearch.ocr.split import inside

    return [DrawingWord(w.text, (w.box[0] - box[0], w.box[1] - box[1], w.box[2] - box[0], w.box[3] - box[1]),
                        w.confidence, w.line)
            for w in words if w.box and inside(w.box, box)]


def process_figure(
    collection: Collection, figure: Figure, engine, text: PatentText, report: SpotLinkReport, boxes=None,
    image: Image.Image | None = None, ahead: Ahead | None = None,
) -> list[tuple[Figure, list[ReferenceSign]]]:
    """Read one figure, split it if it holds several labelled figures, link it; one transaction.

    ``boxes``: the figure's text already read by a worker (``_read_in_worker``), so only the
    writing happens here. ``image``: the stored drawing already decoded by the caller (the
    overlapped build embeds it from the same pixels); else it is decoded here. ``ahead`` (with
    ``boxes``): what a Ray worker worked out from the same pixels (``read_ahead``); the image is
    then decoded here only when the sheet is cut. Returns the figures cut from the sheet (with
    their signs), in ``split_sheet``'s order; [] when it was not cut.
    """
    from figsearch.ocr import parse_signs
    from figsearch.ocr.split import split_sheet

    notes: list[str] = []
    signs: list[ReferenceSign] = []
    ahead = ahead if boxes is not None and figure.role == FigureRole.DRAWING else None
    if figure.role != FigureRole.DRAWING:
        image = None
        notes.append(f"not read: a {figure.role.value.replace('_', ' ')} image")
    elif image is None:
        try:
            image = _load(collection, figure) if ahead is None or ahead.parts else None
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as exc:
            ahead = None
            notes.append(f"image unreadable ({figure.image_path}): {exc}")
            log.warning("figure %s: image unreadable: %s", figure.figure_id, exc)
    words: list[DrawingWord] = []
    if image is not None or ahead is not None:
        if boxes is None:
            from figsearch.ocr.reread import numerals_wanted as reading_numerals

            with reading_numerals(numerals_wanted(text)):  # as the readers read it (_read_ahead_in_worker)
                boxes = engine.read(image)
        read = boxes
        signs = text.classify(parse_signs(read))
        words = ahead.words if ahead is not None else drawing_words(image, read)
        if not signs:
            notes.append("no reference signs or labels found in the drawing")
    if not text.sentences:
        notes.append("patent has no description: no sentences to link")
    labels = list(dict.fromkeys(s.text for s in signs if s.kind == "figure_label"))
    parts = ((ahead.parts if ahead is not None else split_sheet(image, signs))
             if (image is not None or ahead is not None) and len(labels) >= 2 else [])
    children = _child_figures(collection, figure, image, parts, signs, text) if parts else []
    words_repo = collection.words
    label, description, role = figure.label, figure.description, figure.role
    if len(labels) == 1 and not label:
        label = labels[0]
    if label and not description:
        keys = label_keys(label)
        if len(keys) == 1 and keys[0] in text.brief:
            description = brief_clause(text.sentences[text.brief[keys[0]]].text, keys[0], text.lang)
    if children:
        role = FigureRole.SPLIT_SHEET
        if not label:
            keys = sorted((k for lab in labels for k in label_keys(lab)), key=lambda k: (len(k), k))
            label = "FIGS. " + ", ".join(keys)
    links = text.links(label, signs)
    signs_repo, links_repo = collection.signs, collection.links
    with collection.transaction():
        signs_repo.set_reading(figure.figure_id, label, description, role)
        signs_repo.write(figure.figure_id, signs, engine.name if engine else "")
        words_repo.write(figure.figure_id, words)
        links_repo.write_links(figure.figure_id, figure.patent, links)
        signs_repo.write_notes(figure.figure_id, notes)
        signs_repo.mark_done(figure.figure_id)
        for child, own in children:
            signs_repo.insert_cut_figure(child)
            child_links = text.links(child.label, own)
            signs_repo.write(child.figure_id, own, engine.name)
            words_repo.write(child.figure_id, _words_inside(words, child.box))
            links_repo.write_links(child.figure_id, child.patent, child_links)
            signs_repo.write_notes(child.figure_id, [f"cut from sheet {figure.figure_id} by its labels"])
            signs_repo.mark_done(child.figure_id)
            report.links += len(child_links)
    report.figures += 1
    report.signs += sum(s.kind == "numeral" for s in signs)
    report.words += len(words)
    report.links += len(links)
    if children:
        report.split_sheets += 1
        report.new_figures += len(children)
    if notes:
        report.notes[figure.figure_id] = notes
    return children


def pending(collection: Collection) -> list[Figure]:
    return [collection.figure(i) for i in collection.signs.pending()]


def reset(collection: Collection, patent: str | None = None) -> None:
    """Forget OCR results (cut figures included) so that the next run reads everything again."""
    collection.signs.reset(patent)


def spot_and_link(
    collection: Collection,
    engine: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    redo: bool = False,
    jobs: int | None = None,
    read_ahead=None,
) -> SpotLinkReport:
    """Read and link every figure whose ``ocr_done_at`` is NULL (all of them with ``redo``).

    ``jobs`` worker processes read the drawings (default: the CPUs, at most 4); this process
    alone writes, one transaction per figure, so an interrupted run keeps what it finished.
    """
    from figsearch.ocr import OCR_ENGINES, create_engine

    if engine is not None and engine not in OCR_ENGINES:
        OCR_ENGINES.create(engine)  # raises the error that lists the valid names
    if redo:
        reset(collection)
    report = SpotLinkReport()
    todo = pending(collection)
    texts: dict[str, PatentText] = {}
    for number in collection.patent_numbers():  # text changes are relinked even when no figure is pending
        if collection.links.text_sha(number) != _stored_digest(collection, number):
            _ensure_text(collection, number, texts, report)
    drawings = [f for f in todo if f.role == FigureRole.DRAWING]
    ocr = create_engine(engine) if drawings else None
    jobs = min(jobs or default_jobs(), max(len(drawings) // _MIN_PER_WORKER, 1))
    # read_ahead(collection, drawings, engine, jobs, numerals=...): the Ray build's readers instead of local processes
    numerals = {n: numerals_wanted(_ensure_text(collection, n, texts, report))
                for n in dict.fromkeys(f.patent for f in drawings)}
    read_ahead = functools.partial(read_ahead or _ReadAhead, numerals=numerals)
    with read_ahead(collection, drawings, ocr, jobs) as read_ahead:
        for done, figure in enumerate(todo, 1):
            text = _ensure_text(collection, figure.patent, texts, report)
            boxes = read_ahead.boxes(figure)
            ahead = read_ahead.ahead(figure) if hasattr(read_ahead, "ahead") else None  # the Ray build's
            children = process_figure(collection, figure, ocr, text, report, boxes, ahead=ahead)
            if children and hasattr(read_ahead, "cut"):  # the Ray build encodes the figures cut from it now
                read_ahead.cut(children)
            if progress:
                progress(done, len(todo))
    return report


#: below this many drawings per worker, starting workers costs more than it saves
_MIN_PER_WORKER = 8


def default_jobs() -> int:
    """OCR worker processes: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


_worker_engine = None

#: what a reader imports for its engine and its first sheet, imported once in the forkserver
#: (``reader_context``) instead of once in each reader forked from it: about 0.8 CPU s per reader
#: (scipy's modules most of it). ``__main__`` first: the forkserver's own default.
READER_PRELOAD = ("__main__", "figsearch.pipeline.signs", "figsearch.ocr", "figsearch.ocr.tesseract",
                  "figsearch.ocr.drawing", "figsearch.ocr.split", "scipy.ndimage", "scipy.sparse.csgraph",
                  "scipy.spatial", "tesserocr")


def reader_context(also: tuple[str, ...] = ()):
    """The multiprocessing context of the OCR readers: forkserver (POSIX), whose server imports
    ``READER_PRELOAD`` and the modules ``also`` once when it starts (a server already running keeps what
    it has); spawn elsewhere."""
    import multiprocessing

    if os.name != "posix":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*READER_PRELOAD, *also])  # a module that fails to import is skipped
    return context


def _start_worker(engine_name: str, niceness: int = 0) -> None:
    """A reader's start: its engine, and ``niceness`` added to its scheduling priority (the
    overlapped build's readers yield to the process that writes what they read); it ends with its parent
    (before stop 30 the readers of a build killed alone lived on, and the forkserver with them)."""
    global _worker_engine
    from figsearch.fsutil import exit_with_parent
    from figsearch.ocr import create_engine

    exit_with_parent()

    if niceness:
        try:
            os.nice(niceness)
        except (AttributeError, OSError):  # not POSIX, or not allowed: the readers run as they are
            pass
    _worker_engine = create_engine(engine_name)
    # its model now, while the ingest still runs, not at the first drawing (as before tesseract loaded it lazily)
    _worker_engine.load()


def _started() -> None:
    """A task that does nothing: submitted first, it makes a pool start its readers."""


def _read_in_worker(path, numerals: bool = True):
    """The text boxes of one stored drawing (a path or a file object), or None when it cannot be read
    (the parent says why). ``numerals``: ``numerals_wanted`` of its patent's text (False: no second look)."""
    from figsearch.ocr.reread import numerals_wanted as reading_numerals

    try:
        image = load_stored(path)
        with reading_numerals(numerals):
            return _worker_engine.read(image)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return None


def read_drawing_ahead(image: Image.Image, engine, numerals: bool = True, source: str = "", seconds: dict | None = None):
    """(text boxes, ``Ahead`` or None) of one loaded drawing, read by ``engine``: what a reader hands
    the writer, in a local build's reader processes and on a Ray build's workers alike.
    ``numerals``: ``numerals_wanted`` of its patent's text (False: no second look). ``seconds``:
    adds the time of the words and parts under "words and parts".

    The drawing's words and parts are worked out here, inside the reading's ``one_sheet``, so that
    the sheet's header band and ink masks, computed for the reading, serve them too (the writer
    computed them again from its own decoding of the sheet)."""
    from figsearch.ocr.reread import numerals_wanted as reading_numerals
    from figsearch.ocr.sheet import one_sheet

    with one_sheet():
        with reading_numerals(numerals):
            read = engine.read(image)
        started = time.perf_counter()
        try:
            ahead = figure_ahead(image, read)
        except Exception as exc:  # noqa: BLE001 - the writer works them out then, and says why
            log.warning("drawing words not worked out in the reader (%s): %s", source or "a drawing", exc)
            ahead = None
        if seconds is not None:
            seconds["words and parts"] += time.perf_counter() - started
    return read, ahead


def backbone_input(size: int, image: Image.Image):
    """The backbone visual encoder's input for a decoded stored drawing: ``BackboneEncoder.prepare`` of it
    as the index stage hands it over (``pipeline.embed.encoder_input``), for an encoder of ``size`` px, without
    the encoder (a reader has no model). ``tests/test_build_overlapped.py`` holds the two equal."""
    from figsearch.embed.encoders.backbone import prepare_turns
    from figsearch.pipeline.embed import encoder_input

    return prepare_turns(encoder_input(image), (0,), size)[0]


def _read_ahead_in_worker(path: str, numerals: bool = True, prepare: Callable | None = None):
    """``read_drawing_ahead`` of one stored drawing in a reader process, or None when it cannot be read.

    ``prepare`` (the overlapped build's): a picklable function of the decoded drawing that gives the
    visual encoder's input (``BackboneEncoder.prepare``'s pixels); the answer is then (text boxes, Ahead,
    that input), the input None when the sheet is cut (the writer decodes it to cut it) or when it
    fails. It runs after the reading, on the same pixels, so the writer need not decode the sheet."""
    try:
        image = load_stored(path)
        read, ahead = read_drawing_ahead(image, _worker_engine, numerals, source=path)
        if prepare is None:
            return read, ahead
        prepared = None
        if ahead is not None and not ahead.parts:
            try:
                prepared = prepare(image)
            except Exception as exc:  # noqa: BLE001 - the writer decodes and prepares it then
                log.warning("drawing not prepared for the visual encoder in the reader (%s): %s", path, exc)
        return read, ahead, prepared
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return None


class _ReadAhead:
    """Reads drawings in worker processes ahead of the parent, which alone writes the collection.

    With one job nothing is read ahead and the parent reads each figure itself. Results come back
    in order, so the parent's writes (and the collection) are the same as a sequential run's.
    """

    def __init__(self, collection: Collection, drawings: list[Figure], engine, jobs: int,
                 numerals: dict[str, bool] | None = None) -> None:
        """``numerals``: patent number -> ``numerals_wanted`` of its text (absent: True)."""
        self.results = None
        self.pool = None
        if jobs <= 1 or engine is None:
            return
        from concurrent.futures import ProcessPoolExecutor

        paths = [str(collection.path(f.image_path)) if f.image_path else "" for f in drawings]
        wanted = [numerals.get(f.patent, True) for f in drawings] if numerals else [True] * len(drawings)
        self.ids = iter([f.figure_id for f in drawings])
        self.pool = ProcessPoolExecutor(jobs, mp_context=reader_context(), initializer=_start_worker,
                                        initargs=(engine.name,))
        self.results = self.pool.map(_read_ahead_in_worker, paths, wanted, chunksize=2)
        self._ahead: Ahead | None = None

    def boxes(self, figure: Figure):
        self._ahead = None
        if self.results is None or figure.role != FigureRole.DRAWING:
            return None
        expected = next(self.ids)
        if expected != figure.figure_id:  # the order of reads and writes is this module's own invariant
            raise RuntimeError(f"read-ahead out of order: {expected} read, {figure.figure_id} written")
        result = next(self.results)
        if result is None:
            return None
        read, self._ahead = result
        return read

    def ahead(self, figure: Figure) -> Ahead | None:
        """The words and parts the worker worked out with ``figure``'s boxes (the last ``boxes`` asked)."""
        return self._ahead

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
