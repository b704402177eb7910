"""The build with its stages overlapped: ingest, reading and embedding at the same time.

A build with the stages in turn ingests everything, then reads the signs of every drawing (OCR
worker processes), then embeds and indexes (this process alone, on one core). Here, as soon as
the ingest has committed a document, its drawings go to the OCR worker processes (one task per
drawing, so one patent's sheets are spread over all of them), and this process writes each
reading as it comes back, in order, then embeds the drawing (or the figures cut from it) with
the visual encoder from the same pixels: a sheet that is cut, decoded here to cut it; one that is
not, prepared for the (backbone) encoder by the worker that read it, from the pixels it decoded to
read it (``_Writer._reader_prepare``); with a sheet context (``SPEC@sheet=BETA``) a cut sheet is
encoded here too, and its figures' vectors are stored mixed with its own (``_Writer._mixed_rows``).
Once the ingest is over (the collection's languages, which choose the text encoder, are known), it
also embeds the texts of the patents whose drawings are all written. The encoders load in a thread
from the start; they run on one thread (the readers fill the cores), but for a second session of
the text encoder on both cores' threads, which embeds the texts left once every drawing is read
(``_text_encoder_alone``).

Why the OCR workers do not embed too (as an earlier version of this module had them do): every
process that embeds must load the models (about 2.2 CPU s each here, when they ran on torch; onnxruntime
since stop 16, still a load per process), and this
process loads them anyway for the text; on a machine shared with other work, where the build's
processes together get a fixed share of the CPU, the wall time follows the total CPU time, so
the earlier version, with two more model loads, was slower than the stages in turn
(docs/performance.md). Here the work is the same as in the stages in turn, less one decoding of
each drawing; the readers' OCR (about 0.45 CPU s a drawing) and this process's embedding (about
0.2 with the default encoder) share the cores.

This process alone writes the collection, in a defined order (the order in which the ingest
committed the documents, then each patent's figures in ``pending`` order), one transaction per
figure exactly as ``spot_and_link`` does; vectors follow in batches. So an interrupted build
resumes as before: a figure read but not embedded is embedded by the index stage. What is left
after the stream (figures that are not drawings, patents whose text changed, vectors that could
not be computed) is done by the ordinary stages, ``spot_and_link`` and ``update_collection``,
which then find the streamed work done and skip it.
"""

from __future__ import annotations

import collections
import functools
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
from figsearch.embed.sheet_context import context_digest, mix, sheet_context_of, split_sheet_context
from figsearch.index.settings import NO_TEXT
from figsearch.ingest.runner import CommittedForwarder, Progress
from figsearch.link.patent_text import PatentText
from figsearch.link.text import figure_text
from figsearch.pipeline.embed import encoder_input, text_inputs_digest, text_row, texts_to_encode
from figsearch.pipeline.signs import (SpotLinkReport, _ensure_text, _load, _read_ahead_in_worker, _start_worker,
                                      _started, backbone_input, numerals_wanted, process_figure, reader_context)
from figsearch.records import Figure, FigureRole
from figsearch.store import Collection

log = logging.getLogger(__name__)

#: (done, total) of the streamed reading-and-embedding stage; total grows as documents come in
StreamProgress = Callable[[int, int], None]

#: drawings embedded together (the ONNX encoders run faster in batches; the default one does not care)
VISUAL_BATCH = 16
#: drawings embedded while waiting for the readers: the default encoder runs them 4 at a time
IDLE_BATCH = 4
#: ingest worker processes of the overlapped build, whatever the jobs: the readers are the bound (one
#: worker ingests a design grant's sheet in about 0.02 CPU s, the readers read it in 0.11), the window
#: holds the ingest back to their pace, and each worker is a process that starts (spawned, it imported for
#: about 0.3 CPU s; forked since stop 30, 0.14 less) and one more to share the cores with (docs/performance.md,
#: "Stop 27")
INGEST_PROCESSES = 1
#: what the ingest worker imports before its first document, imported by the readers' forkserver, which
#: forks the ingest worker too: the worker then starts with the interpreter, numpy, Pillow and figsearch's
#: modules that the readers import anyway, instead of a spawned process importing them again (0.14 CPU s
#: a build of the design grants: docs/performance.md, "Stop 30 (build38)")
INGEST_PRELOAD = ("figsearch.ingest.workers",)
#: added to the OCR readers' niceness: when this process has readings to write and embed it runs
#: first, and the readers take what is left of the cores, so that when they finish little writing is
#: left for one core alone (the readers are the larger part of the work, and never wait for the writer)
READER_NICENESS = 5


@dataclass
class StreamReport:
    signs: SpotLinkReport = field(default_factory=SpotLinkReport)
    #: figures whose visual vector was stored by the stream, under ``key``
    embedded: int = 0
    key: str | None = None
    #: figures whose text vector was stored by the stream, under ``text_key``
    texts: int = 0
    text_key: str | None = None
    #: drawings whose visual encoder input a reader prepared (the writer did not decode them)
    prepared_by_readers: int = 0
    #: cut figures whose vector the stream stored mixed with their sheet's (a sheet context, ``SPEC@sheet=BETA``)
    mixed: int = 0
    #: the encoders the stream loaded, by (modality, spec): the index stage after it uses them
    encoders: dict = field(default_factory=dict, repr=False)


def visual_spec(collection: Collection, visual_model: str | None) -> str:
    """The visual encoder the index stage will use: the one asked for, else the collection's, else the default."""
    stored = collection.get_setting("visual_encoder") or {}
    return visual_model or stored.get("spec") or DEFAULT_VISUAL_ENCODER


def embedding_inputs(figure: Figure, image: Image.Image, children) -> list[tuple[str, str, Image.Image]]:
    """(figure id, image digest, encoder input) of what the index stage would embed for a sheet just
    written: the figures cut from it (the same pixels as their stored PNGs, which are lossless
    crops), else the drawing itself. [] when there is no digest to store with a vector."""
    if children:
        return [(child.figure_id, child.image_sha256, encoder_input(image.crop(child.box)))
                for child, _ in children if child.image_sha256]
    return [(figure.figure_id, figure.image_sha256, encoder_input(image))] if figure.image_sha256 else []


# ---- the OCR worker processes -----------------------------------------------------------------

class _Readers:
    """OCR worker processes (those of the stages in turn: figsearch.pipeline.signs) fed one drawing
    at a time; results are taken in the order submitted."""

    def __init__(self, engine_name: str, jobs: int, window: int, context=None) -> None:
        """``context``: the multiprocessing context (default ``signs.reader_context()``)."""
        import threading
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(jobs, mp_context=context or reader_context(), initializer=_start_worker,
                                        initargs=(engine_name, READER_NICENESS))
        self.window = window
        #: (patent text, figure, future of its (boxes, Ahead) reading, whether it is its patent's last drawing)
        self.in_flight: collections.deque = collections.deque()
        # the readers start now, beside the ingest, not at the first drawing committed: the forkserver's
        # imports (about 1 CPU s) and the readers' engines are then ready when the first drawings are.
        # In a thread, because starting them waits for those imports.
        self._starting = threading.Thread(target=self._start, args=(jobs,), name="figsearch-readers-start", daemon=True)
        self._starting.start()

    def _start(self, jobs: int) -> None:
        try:
            for _ in range(jobs):  # the pool starts one reader per task submitted while none is idle
                self.pool.submit(_started)
        except Exception as exc:  # noqa: BLE001 - closed already (the ingest failed at once), or the
            # readers cannot start: the first drawing submitted then raises it where it is handled
            log.debug("OCR readers not started ahead: %s", exc)

    def submit(self, text: PatentText, figures: list[Figure], paths: list[str], prepare=None) -> None:
        """``prepare``: see ``_read_ahead_in_worker`` (None: the readers read only)."""
        numerals = numerals_wanted(text)
        for i, (figure, path) in enumerate(zip(figures, paths), 1):
            self.in_flight.append((text, figure, self.pool.submit(_read_ahead_in_worker, path, numerals, prepare),
                                   i == len(figures)))

    def ready(self, block: bool, idle: Callable[[], None] | None = None):
        """The drawings read at the head of the queue (all of them when ``block``); at most ``window``
        drawings wait, so that the ingest does not run far ahead of the readers. ``idle`` is called
        before waiting for a reading that is not done."""
        while self.in_flight and (block or len(self.in_flight) > self.window or self.in_flight[0][2].done()):
            if idle is not None and not self.in_flight[0][2].done():
                idle()
            text, figure, future, last = self.in_flight.popleft()
            yield text, figure, future.result(), last

    def close(self) -> None:
        self._starting.join()
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Feeder(CommittedForwarder):
    """The ingest's progress, which also hands each committed document's drawings to the readers
    and writes what they have finished in between."""

    def __init__(self, inner: Progress | None, writer: _Writer) -> None:
        super().__init__(inner)
        self.writer = writer

    def committed(self, numbers: list[str]) -> None:
        for number in numbers:
            self.writer.submit(number)
        self.writer.drain(block=False)


class _Writer:
    """This process's side: submits drawings to the readers, writes their readings in order and
    embeds what it wrote."""

    def __init__(self, collection: Collection, engine, readers: _Readers, progress: StreamProgress | None,
                 visual, visual_spec: str, limit_threads: ExitStack) -> None:
        self.collection, self.engine, self.readers, self.progress = collection, engine, readers, progress
        self.report = StreamReport()
        self.texts: dict[str, PatentText] = {}
        self.submitted = 0
        self.done = 0
        self.seen: set[str] = set()
        self.read_patents: collections.deque = collections.deque()
        self._visual_future, self._visual, self._limit_threads = visual, None, limit_threads
        self._visual_spec = visual_spec
        self.to_embed: list[tuple[str, str, Image.Image]] = []
        #: the sheets cut since the last flush, when the encoder asks for a sheet context: (sheet id, its image
        #: digest, its encoder input, the ids of its cut figures in ``to_embed``)
        self.sheets_to_mix: list[tuple[str, str, Image.Image, list[str]]] = []
        self._sheet_context = split_sheet_context(visual_spec)[1] > 0
        self.text_encoder = None
        #: the same text encoder on both cores' threads, for when the readers are done (None: none such)
        self.text_encoder_alone = None
        self.encoded: dict = {}

    def submit(self, number: str) -> None:
        figures = [self.collection.figure(i) for i in self.collection.signs.pending(number)]
        figures = [f for f in figures if f.role == FigureRole.DRAWING and f.image_path and f.figure_id not in self.seen]
        if not figures:
            return
        self.seen.update(f.figure_id for f in figures)
        text = _ensure_text(self.collection, number, self.texts, self.report.signs)
        self.readers.submit(text, figures, [str(self.collection.path(f.image_path)) for f in figures],
                            self._reader_prepare())
        self.submitted += len(figures)

    def _reader_prepare(self):
        """What the readers prepare for the visual encoder with each reading (``_read_ahead_in_worker``):
        the backbone encoder's input, once that encoder is loaded (drawings submitted before that are
        decoded and prepared here, as are the sheets that are cut). The reader has decoded the sheet to
        read it, so this process then need not decode it again (about 3 CPU ms a design sheet), and
        holds 83 kB of it instead of 2 MB until the batch is embedded. Other encoders: None."""
        from figsearch.embed.encoders.backbone import BackboneEncoder

        future = self._visual_future
        if future is not None and (not future.done() or future.exception() is not None):
            return None
        encoder = future.result() if future is not None else self._visual
        if type(encoder) is not BackboneEncoder:  # a subclass or a wrapper (a mask) may prepare otherwise
            return None
        return functools.partial(backbone_input, encoder.image_size)

    def drain(self, block: bool) -> None:
        # once the ingest is over (block), what is written is embedded whenever the next reading is
        # not back yet: this process would only wait then, and when the readers finish little is left
        # for one core alone (before, the texts of every patent read after the ingest waited for the end)
        for text, figure, reading, last in self.readers.ready(block, idle=self._catch_up if block else None):
            self._write(figure, text, reading)
            if last:
                self.read_patents.append(figure.patent)
        if block or (self.text_encoder is not None and self.read_patents):
            self._catch_up(at_least=1)

    def _catch_up(self, at_least: int = IDLE_BATCH) -> None:
        """Embed the drawings written (when there are ``at_least``), then the texts of the patents whose
        drawings are all written."""
        if len(self.to_embed) >= at_least or (self.text_encoder is not None and self.read_patents):
            self.flush()  # a patent's text vectors after its visual ones, as the index stage stores them
        if self.text_encoder is not None and self.read_patents:
            numbers = list(self.read_patents)
            self.read_patents.clear()
            self._embed_texts(numbers)

    def start_texts(self, encoder, spec: str, alone=None) -> None:
        """From now on, embed the texts of the patents read (those read so far first); ``alone``: the
        same encoder on more threads, used once every drawing is read (the readers leave their cores)."""
        self.text_encoder, self.text_encoder_alone = encoder, alone
        self.report.text_key = encoder_key(encoder)
        self.report.encoders[("text", spec)] = encoder

    def visual(self):
        """The visual encoder, once loaded (None when it cannot be: the index stage then says why);
        from then on this process's BLAS and torch run on one thread, as the readers fill the cores."""
        if self._visual_future is not None:
            future, self._visual_future = self._visual_future, None
            try:
                self._visual = future.result()
                self.report.encoders[("visual", self._visual_spec)] = self._visual
            except Exception as exc:  # noqa: BLE001 - the index stage raises it with its own message
                log.warning("visual encoder not available for the stream: %s", exc)
            self._limit_threads.enter_context(_one_thread_here())
        return self._visual

    def flush(self) -> None:
        """Embed the drawings written so far and store their vectors (a cut figure's mixed with its sheet's,
        when the encoder asks for a sheet context: ``_mixed_rows``)."""
        batch, self.to_embed = self.to_embed, []
        sheets, self.sheets_to_mix = self.sheets_to_mix, []
        encoder = self.visual() if batch else None
        if encoder is None:
            return
        key = encoder_key(encoder)
        ready = [i for i, (_, _, image) in enumerate(batch) if isinstance(image, np.ndarray)]  # the readers' inputs
        if not ready:
            vectors = encoder.encode([image for _, _, image in batch])
        else:
            images = [i for i, (_, _, image) in enumerate(batch) if not isinstance(image, np.ndarray)]
            # normalised twice, as VisualEncoder.encode does, so that the vectors are the same to the bit
            done = l2_normalise(encoder.encode_prepared(np.stack([batch[i][2] for i in ready])))
            vectors = np.empty((len(batch), done.shape[1]), np.float32)
            vectors[ready] = done
            if images:
                vectors[images] = encoder.encode([batch[i][2] for i in images])
        rows = [(i, v, sha) for (i, sha, _), v in zip(batch, vectors)]
        if sheets and sheet_context_of(encoder):
            rows = self._mixed_rows(encoder, rows, sheets)
        self.collection.vectors.save("visual", key, rows)
        self.report.embedded += len(batch)
        self.report.key = key

    def _mixed_rows(self, encoder, rows: list, sheets: list) -> list:
        """``rows`` (figure id, plain vector, image digest) with each cut figure's vector mixed with its sheet's
        and stored under ``context_digest``, as ``pipeline.embed.mix_sheet_context`` stores it after the stream:
        the sheet is encoded here, from the pixels this process decoded to cut it, while the readers still
        read (that step decoded and encoded every cut sheet again once the readers were done, and now finds
        these vectors mixed already)."""
        beta = sheet_context_of(encoder)
        sheet_vectors = encoder.encode([image for _, _, image, _ in sheets])
        position = {figure_id: n for n, (figure_id, _, _) in enumerate(rows)}
        for (_, sheet_digest, _, cut), sheet_vector in zip(sheets, sheet_vectors):
            at = [position[figure_id] for figure_id in cut if figure_id in position]
            if not at:
                continue
            mixed = mix(np.stack([rows[n][1] for n in at]), np.repeat(sheet_vector[None, :], len(at), axis=0), beta)
            for n, vector in zip(at, mixed):
                figure_id, _, digest = rows[n]
                rows[n] = (figure_id, vector, context_digest(digest, sheet_digest, beta))
            self.report.mixed += len(at)
        return rows

    def _embed_texts(self, numbers: list[str]) -> None:
        """Text vectors of these patents' drawings, as figsearch.pipeline.embed.embed_text makes them,
        stored patent by patent."""
        by_patent = []
        for number in numbers:
            texts = [(figure, figure_text(self.collection, figure))
                     for figure in self.collection.figures(patent=number, roles=(FigureRole.DRAWING,))]
            by_patent.append([(figure, text) for figure, text in texts if text])  # no text, no vector (the
            # index stage drops a stale one)
        # the new texts of all these patents in one call, which the text encoder sorts by tokens before
        # batching: its passes fill better than one call per patent (a design patent has a dozen short
        # sentences), for the same vectors: 0.9x the text model's CPU on the 50 design grants, all of
        # whose patents are usually waiting here once the ingest is over (docs/performance.md, "Stop 23")
        new = list(dict.fromkeys(s for texts in by_patent for _, text in texts for s in texts_to_encode(text)
                                 if s not in self.encoded))
        if new:
            # once every drawing submitted is read, this process is alone: the encoder on both cores
            alone = self.text_encoder_alone is not None and not self.readers.in_flight
            self.encoded.update(zip(new, (self.text_encoder_alone if alone else self.text_encoder).encode(new)))
        for texts in by_patent:
            rows = [text_row(figure, text, text_inputs_digest(text), self.encoded) for figure, text in texts]
            self.collection.vectors.save("text", self.report.text_key, rows)
            self.report.texts += len(rows)
        if len(self.encoded) > 200_000:  # bound memory on huge collections; only reuse is lost
            self.encoded.clear()

    def _write(self, figure: Figure, text: PatentText, reading) -> None:
        boxes, ahead, prepared = (*reading, None)[:3] if reading is not None else (None, None, None)
        image = None
        if prepared is None:
            try:
                image = _load(self.collection, figure)
            except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
                image = None  # process_figure tries again and notes why it cannot
        # with the reader's prepared input the sheet is not cut (``_read_ahead_in_worker``), and
        # process_figure, given ``ahead``, does not decode it
        children = process_figure(self.collection, figure, self.engine, text, self.report.signs, boxes, image=image,
                                  ahead=ahead)
        if prepared is not None and not children:
            if figure.image_sha256:  # no digest to store with a vector: none (as embedding_inputs)
                self.to_embed.append((figure.figure_id, figure.image_sha256, prepared))
                self.report.prepared_by_readers += 1
        elif prepared is not None:  # cut after all (not while ``ahead.parts`` decides the cut): as before
            image = _load(self.collection, figure)
        if image is not None:
            inputs = embedding_inputs(figure, image, children)
            self.to_embed += inputs
            if children and inputs and figure.image_sha256 and self._sheet_context:
                # flushed with its cut figures (they are in the same batch): see ``_mixed_rows``
                self.sheets_to_mix.append((figure.figure_id, figure.image_sha256, encoder_input(image),
                                           [figure_id for figure_id, _, _ in inputs]))
            if len(self.to_embed) >= VISUAL_BATCH:
                self.flush()
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
    """Ingest ``paths`` into ``collection`` (in ``INGEST_PROCESSES`` worker processes) while ``jobs`` OCR
    worker processes read the drawings of each committed document and this process writes and embeds them. Returns (the ingest summary,
    the StreamReport).

    Raises MissingDependency/ModelUnavailable before any work when the OCR engine cannot run.
    """
    from figsearch.ingest.runner import ingest_paths
    from figsearch.ingest.workers import run_units
    from figsearch.ocr import create_engine

    engine = create_engine(ocr_engine)  # raises here, before the ingest, when tesseract is missing
    spec = visual_spec(collection, visual_model)
    context = reader_context(also=INGEST_PRELOAD)  # the readers' and the ingest worker's
    readers = _Readers(engine.name, jobs, window or 16 * jobs, context)
    # the encoders load in a thread while the ingest runs: the visual one first (the first drawings
    # read need it), then the likely text one (the one to use is known after the ingest)
    loader = ThreadPoolExecutor(1, thread_name_prefix="figsearch-encoders")
    visual = loader.submit(_one_thread_encoder, create_visual, spec)
    guess = text_model or (collection.get_setting("text_encoder") or {}).get("spec") or DEFAULT_TEXT_ENCODER
    likely = loader.submit(_one_thread_encoder, create_text, guess) if guess != NO_TEXT else None
    likely_alone = loader.submit(_text_encoder_alone, guess, likely) if guess != NO_TEXT else None
    one_thread = ExitStack()
    writer = _Writer(collection, engine, readers, progress, visual, spec, one_thread)
    try:
        summary = ingest_paths(collection, paths, _Feeder(ingest_progress, writer), jobs=jobs, force=force,
                               run_units=functools.partial(run_units, processes=INGEST_PROCESSES, context=context))
        text_spec, text_encoder = _text_encoder(collection, text_model, guess, likely)
        alone = likely_alone.result() if likely_alone is not None and text_spec == guess else None
        writer.visual()  # loaded (or failed) by now; this process on one thread from here on
        if text_encoder is not None:
            writer.start_texts(text_encoder, text_spec, alone)
        # drawings left pending by an earlier, interrupted run: read them here too
        for number in dict.fromkeys(collection.figure(i).patent for i in collection.signs.pending()):
            writer.submit(number)
            writer.drain(block=False)
        writer.drain(block=True)
    finally:
        readers.close()
        loader.shutdown(wait=True)
        one_thread.close()  # the index stage after this one has the cores to itself
    return summary, writer.report


def _one_thread_encoder(create, spec: str):
    """An encoder on one thread where it takes a thread count (the ONNX ones: the backbone, minilm):
    the readers fill the cores, and onnxruntime's second thread then only waits for a core,
    spinning. On the 2-core development machine, under load, the backbone's 0.034 CPU s per
    drawing became 0.018 for the same vectors (docs/performance.md)."""
    from figsearch.errors import InputError

    try:
        return create(spec, threads=1)
    except (InputError, TypeError):  # an encoder that does not take it (a bare sentence-transformers name: TypeError)
        return create(spec)


def _text_encoder_alone(spec: str, one_thread):
    """The text encoder for when this process is alone (every drawing read): the ONNX one (minilm)
    on both cores' threads, with onnxruntime's spinning off so that its second thread sleeps rather
    than spins for a core that other work holds. None for an encoder without onnxruntime's threads
    (use-multilingual, sbert:..., minilm through sentence-transformers), judged by ``one_thread`` (the
    future of the one-thread encoder), and for one that cannot load: the one-thread encoder then does all.
    The long texts of utility documents are mostly embedded after the readers are done, on one
    core while the other idled (docs/performance.md, "Stop 26 (util34)")."""
    from figsearch.embed.encoders.text import MiniLMOnnxEncoder

    try:
        if not isinstance(one_thread.result(), MiniLMOnnxEncoder):
            return None
        return create_text(spec, spinning=False)
    except Exception as exc:  # noqa: BLE001 - the one-thread encoder says why, if it cannot load either
        log.debug("text encoder %s not loaded on two threads: %s", spec, exc)
        return None


def _text_encoder(collection: Collection, text_model: str | None, guess: str, likely):
    """(spec, encoder) of the text encoder the index stage will choose (figsearch.pipeline.index); the
    encoder None when there is none or it cannot be loaded (the index stage then says why)."""
    from figsearch.embed.encoders.multilingual import text_model_for
    from figsearch.ingest.language import collection_language_counts

    stored = (collection.get_setting("text_encoder") or {}).get("spec")
    spec = text_model_for(text_model, stored, collection_language_counts(collection).documents).spec
    if spec == NO_TEXT:
        return spec, None
    try:
        return spec, (likely.result() if likely is not None and spec == guess else _one_thread_encoder(create_text, spec))
    except Exception as exc:  # noqa: BLE001 - the index stage raises it with its own message
        log.info("text encoder %s not loaded for the stream: %s", spec, exc)
        return spec, None


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
