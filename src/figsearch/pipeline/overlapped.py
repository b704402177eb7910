"""The build with its stages overlapped: ingest, reading and embedding at the same time.

A one-process build (``jobs=1``) runs the stages one after the other, and each drawing's PNG is
decoded twice after ingest (once to read its signs, once to embed it). Here, as soon as the
ingest has committed a document, its drawings go to reader processes, each of which

1. decodes the stored sheet once,
2. reads its text (the OCR engine),
3. classifies the signs against the patent's text and finds the figures a sheet holds (the same
   ``parse_signs``/``classify``/``split_sheet`` calls that ``process_figure`` makes), and
4. embeds the drawing, or the figures cut from it, with the visual encoder, from the same pixels.

Once the ingest is over (the collection's languages, which choose the text encoder, are known),
this process also embeds the text of each patent whose drawings are all written, while the
readers go on with the next ones; the text encoder is loaded in a thread from the start.

This process alone writes the collection, in a defined order (the order in which the ingest
committed the documents, then each patent's figures in ``pending`` order), one transaction per
figure exactly as ``spot_and_link`` does, followed by the figure's vectors. So an interrupted
build resumes as before: a figure read but not embedded is embedded by the index stage. What
is left after the stream (figures that are not drawings, patents whose text changed, vectors
that could not be computed) is done by the ordinary stages, ``spot_and_link`` and
``update_collection``, which then find the streamed work done and skip it.

The per-figure work is a plain function, :func:`read_and_embed`, that any scheduler (these
processes, a Ray task) can call.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from figsearch.embed.base import l2_normalise
from figsearch.embed.catalog import DEFAULT_TEXT_ENCODER, DEFAULT_VISUAL_ENCODER, create_text, create_visual, encoder_key
from figsearch.index.settings import NO_TEXT
from figsearch.ingest.runner import Progress
from figsearch.link.patent_text import PatentText
from figsearch.link.text import figure_sentences
from figsearch.pipeline.embed import text_digest
from figsearch.pipeline.signs import SpotLinkReport, _ensure_text, process_figure
from figsearch.records import Figure, FigureRole
from figsearch.store import Collection

log = logging.getLogger(__name__)

#: (done, total) of the streamed reading-and-embedding stage; total grows as documents come in
StreamProgress = Callable[[int, int], None]


@dataclass
class Reading:
    """What a reader process found in one sheet: the text boxes, and the visual vectors of the
    drawing (one) or of the figures cut from it (one per figure, in ``split_sheet``'s order)."""

    figure_id: str
    boxes: list | None
    vectors: object = None  # np.ndarray (n, dim) or None when it could not be embedded
    key: str | None = None


@dataclass
class StreamReport:
    signs: SpotLinkReport = field(default_factory=SpotLinkReport)
    #: figures whose visual vector was stored by the stream, under ``key``
    embedded: int = 0
    key: str | None = None
    #: figures whose text vector was stored by the stream, under ``text_key``
    texts: int = 0
    text_key: str | None = None


def visual_spec(collection: Collection, visual_model: str | None) -> str:
    """The visual encoder the index stage will use: the one asked for, else the collection's, else the default."""
    stored = collection.get_setting("visual_encoder") or {}
    return visual_model or stored.get("spec") or DEFAULT_VISUAL_ENCODER


def encoder_input(image: Image.Image) -> Image.Image:
    """A decoded stored image as the visual stage hands it to an encoder (figsearch.pipeline.embed._load)."""
    return image.convert("L") if image.mode not in ("L", "RGB") else image


def read_and_embed(engine, encoder, text: PatentText, figure_id: str, path: str) -> Reading:
    """Read one stored sheet and embed it (or the figures it holds) from one decoding of its PNG.

    ``encoder`` may be None (the visual encoder is not available): then only the text is read.
    Returns boxes None when the image cannot be decoded (the writer then says why, as
    ``process_figure`` does).
    """
    from figsearch.ocr import parse_signs
    from figsearch.ocr.split import split_sheet

    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return Reading(figure_id, None)
    boxes = engine.read(image)
    if encoder is None:
        return Reading(figure_id, boxes)
    signs = text.classify(parse_signs(boxes))
    labels = list(dict.fromkeys(s.text for s in signs if s.kind == "figure_label"))
    parts = split_sheet(image, signs) if len(labels) >= 2 else []
    # the same pixels the index stage would decode from the stored PNGs (a cut figure is stored losslessly)
    inputs = [encoder_input(image.crop(box)) for _, box in parts] if parts else [encoder_input(image)]
    return Reading(figure_id, boxes, encoder.encode(inputs), encoder_key(encoder))


# ---- the reader processes ---------------------------------------------------------------------

_engine = None
_encoder = None


def _start_reader(engine_name: str, spec: str | None, threads: int) -> None:
    global _engine, _encoder
    from figsearch.ocr import create_engine

    _engine = create_engine(engine_name)
    _one_thread_each(threads)
    if spec is None:
        return
    try:
        _encoder = create_visual(spec)
    except Exception as exc:  # the index stage raises it with its own message; reading goes on
        log.warning("visual encoder %s not available in the reader: %s", spec, exc)
        _encoder = None


def _one_thread_each(threads: int) -> int:
    """Limit BLAS (numpy's OpenBLAS) and torch to ``threads`` in this process; returns torch's
    count before, 0 without torch. The readers already fill every core, so threads of their own
    can only contend with the other readers (its effect alone was not measured: docs/performance.md)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass
    import sys

    if "torch" not in sys.modules:
        try:
            import torch  # noqa: F401 - the encoders import it anyway; set its threads before they run
        except ImportError:
            return 0
    torch = sys.modules["torch"]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    return before


def _read_one(text: PatentText, figure_id: str, path: str) -> Reading:
    return read_and_embed(_engine, _encoder, text, figure_id, path)


class _Readers:
    """Reader processes fed one drawing at a time (a patent's sheets spread over all of them);
    results are taken patent by patent, in the order submitted."""

    def __init__(self, engine_name: str, spec: str | None, jobs: int, window: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        self.pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_reader,
                                        initargs=(engine_name, spec, 1))
        self.window = window
        self.waiting = 0
        self.in_flight: collections.deque = collections.deque()

    def submit(self, text: PatentText, figures: list[Figure], paths: list[str]):
        futures = [self.pool.submit(_read_one, text, f.figure_id, path) for f, path in zip(figures, paths)]
        self.in_flight.append((text, figures, futures))
        self.waiting += len(futures)

    def ready(self, block: bool):
        """Finished patents at the head of the queue (all of them when ``block``); at most ``window``
        drawings wait, so that the ingest does not run far ahead of the readers."""
        while self.in_flight and (block or self.waiting > self.window or all(f.done() for f in self.in_flight[0][2])):
            text, figures, futures = self.in_flight.popleft()
            self.waiting -= len(futures)
            yield text, figures, [f.result() for f in futures]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Feeder:
    """The ingest's progress, which also hands each committed document's drawings to the readers
    and writes what they have finished in between."""

    def __init__(self, collection: Collection, inner: Progress | None, readers: _Readers, writer: _Writer) -> None:
        self.collection, self.inner, self.readers, self.writer = collection, inner, readers, writer

    def start(self, total: int) -> None:
        if self.inner:
            self.inner.start(total)

    def failure(self, failure) -> None:
        if self.inner:
            self.inner.failure(failure)

    def advance(self, unit, result) -> None:
        if self.inner:
            self.inner.advance(unit, result)
        for number in dict.fromkeys(d.patent.publication_number for d in (result.documents if result else [])):
            self.writer.submit(number)
        self.writer.drain(block=False)


class _Writer:
    """This process's side: submits patents to the readers and writes their readings in order."""

    def __init__(self, collection: Collection, engine, readers: _Readers, progress: StreamProgress | None) -> None:
        self.collection, self.engine, self.readers, self.progress = collection, engine, readers, progress
        self.report = StreamReport()
        self.texts: dict[str, PatentText] = {}
        self.submitted = 0
        self.done = 0
        self.seen: set[str] = set()
        self.read_patents: collections.deque = collections.deque()
        self.text_encoder = None
        self.sentence_cache: dict = {}

    def submit(self, number: str) -> None:
        figures = [self.collection.figure(i) for i in self.collection.signs.pending(number)]
        figures = [f for f in figures if f.role == FigureRole.DRAWING and f.image_path and f.figure_id not in self.seen]
        if not figures:
            return
        self.seen.update(f.figure_id for f in figures)
        text = _ensure_text(self.collection, number, self.texts, self.report.signs)
        self.readers.submit(text, figures, [str(self.collection.path(f.image_path)) for f in figures])
        self.submitted += len(figures)

    def drain(self, block: bool) -> None:
        for text, figures, readings in self.readers.ready(block):
            for figure, reading in zip(figures, readings):
                self._write(figure, text, reading)
            self.read_patents.append(figures[0].patent)
        if self.text_encoder is not None:
            while self.read_patents:
                self._embed_texts(self.read_patents.popleft())

    def start_texts(self, encoder) -> None:
        """From now on, embed the texts of the patents read (those read so far first)."""
        self.text_encoder = encoder
        self.report.text_key = encoder_key(encoder)

    def _embed_texts(self, number: str) -> None:
        """Text vectors of one patent's drawings (figsearch.pipeline.embed.embed_text's, per patent)."""
        rows = []
        for figure in self.collection.figures(patent=number, roles=(FigureRole.DRAWING,)):
            sentences = [s.strip() for s in figure_sentences(self.collection, figure) if s and s.strip()]
            if not sentences:
                continue  # no text, no vector (the index stage drops a stale one)
            new = list(dict.fromkeys(s for s in sentences if s not in self.sentence_cache))
            if new:
                self.sentence_cache.update(zip(new, self.text_encoder.encode(new)))
            mean = np.mean([self.sentence_cache[s] for s in sentences], axis=0, keepdims=True)
            rows.append((figure.figure_id, l2_normalise(mean)[0], text_digest(sentences)))
        if len(self.sentence_cache) > 200_000:  # bound memory on huge collections; only reuse is lost
            self.sentence_cache.clear()
        self.collection.vectors.save("text", self.report.text_key, rows)
        self.report.texts += len(rows)

    def _write(self, figure: Figure, text: PatentText, reading: Reading) -> None:
        collection = self.collection
        children = process_figure(collection, figure, self.engine, text, self.report.signs, reading.boxes)
        if reading.vectors is not None and reading.key is not None:
            if children:
                rows = [(child.figure_id, vector, child.image_sha256) for (child, _), vector in zip(children, reading.vectors)]
                ok = len(children) == len(reading.vectors)
            else:
                rows = [(figure.figure_id, reading.vectors[0], figure.image_sha256)]
                ok = len(reading.vectors) == 1 and bool(figure.image_sha256)
            if ok:  # otherwise the index stage embeds them from their PNGs
                collection.vectors.save("visual", reading.key, rows)
                self.report.embedded += len(rows)
                self.report.key = reading.key
        self.done += 1
        if self.progress:
            self.progress(self.done, self.submitted)


def stream(
    collection: Collection,
    paths: list,
    *,
    jobs: int,
    force: bool = False,
    ocr_engine: str | None = None,
    visual_model: str | None = None,
    text_model: str | None = None,
    ingest_progress: Progress | None = None,
    progress: StreamProgress | None = None,
    window: int | None = None,
):
    """Ingest ``paths`` into ``collection`` while ``jobs`` reader processes read and embed the drawings
    of each committed document. Returns (the ingest summary, the StreamReport).

    Raises MissingDependency/ModelUnavailable before any work when the OCR engine cannot run.
    """
    from figsearch.ingest.runner import ingest_paths
    from figsearch.ocr import create_engine

    engine = create_engine(ocr_engine)  # raises here, before the ingest, when tesseract is missing
    spec = visual_spec(collection, visual_model)
    readers = _Readers(engine.name, spec, jobs, window or 16 * jobs)
    writer = _Writer(collection, engine, readers, progress)
    # the text encoder's libraries load while the ingest runs (the likely model; checked after it)
    loader = ThreadPoolExecutor(1, thread_name_prefix="figsearch-text-encoder")
    guess = text_model or (collection.get_setting("text_encoder") or {}).get("spec") or DEFAULT_TEXT_ENCODER
    likely = loader.submit(create_text, guess) if guess != NO_TEXT else None
    one_thread = ExitStack()
    try:
        summary = ingest_paths(collection, paths, _Feeder(collection, ingest_progress, readers, writer),
                               jobs=jobs, force=force)
        text_encoder = _text_encoder(collection, text_model, guess, likely)
        if text_encoder is not None:
            # the texts are embedded here while the readers use the cores: one thread, as they have
            one_thread.enter_context(_one_thread_here())
            writer.start_texts(text_encoder)
        # drawings left pending by an earlier, interrupted run: read them here too
        for number in dict.fromkeys(collection.figure(i).patent for i in collection.signs.pending()):
            writer.submit(number)
            writer.drain(block=False)
        writer.drain(block=True)
        writer.drain(block=False)  # the texts of patents read meanwhile
    finally:
        readers.close()
        loader.shutdown(wait=True)
        one_thread.close()  # the index stage after this one has the cores to itself
    return summary, writer.report


def _text_encoder(collection: Collection, text_model: str | None, guess: str, likely):
    """The text encoder the index stage will choose (figsearch.pipeline.index), or None when there
    is none or it cannot be loaded (the index stage then says why)."""
    from figsearch.embed.encoders.multilingual import text_model_for
    from figsearch.ingest.language import collection_language_counts

    stored = (collection.get_setting("text_encoder") or {}).get("spec")
    spec = text_model_for(text_model, stored, collection_language_counts(collection).documents).spec
    if spec == NO_TEXT:
        return None
    try:
        return likely.result() if likely is not None and spec == guess else create_text(spec)
    except Exception as exc:  # noqa: BLE001 - the index stage raises it with its own message
        log.info("text encoder %s not loaded for the stream: %s", spec, exc)
        return None


@contextmanager
def _one_thread_here():
    """BLAS and torch limited to one thread in this process while it lasts, then put back exactly
    as they were: setting the OpenMP pools to the core count instead (as an earlier version did)
    left FAISS's next training spinning forever under OMP_THREAD_LIMIT=1."""
    import sys

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else 0  # read first: the limits below change it
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)
    except ImportError:
        limits = None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if limits is not None:
            limits.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(before)
