"""The Ray build's worker actor (``_Worker``) and what it runs: decoding a document in a scratch
folder, reading its drawings' signs, loading and running the encoders.

Imported by the Ray workers (through figsearch.pipeline.distributed, which creates the actors);
nothing here imports Ray.
"""

from __future__ import annotations

import time

#: when this module began to import (in a worker: right after its process registered with Ray when
#: the instance preloads it, ``preload_python_modules``; otherwise at the start of the actor's
#: creation), for the benchmark's timeline of Ray's start
_MODULE_STARTED = time.time()

import collections  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402
from pathlib import Path

import numpy as np  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

from figsearch.embed.base import l2_normalise  # noqa: E402
from figsearch.errors import InputError  # noqa: E402
from figsearch.fsutil import scratch_writes  # noqa: E402
from figsearch.imaging import load_stored  # noqa: E402
from figsearch.ingest import process  # noqa: E402
from figsearch.ingest.base import Unit  # noqa: E402
from figsearch.ingest.plan import Namer  # noqa: E402
from figsearch.ingest.process import UnitResult  # noqa: E402
from figsearch.pipeline import embed as embed_stage  # noqa: E402
from figsearch.pipeline import signs as signs_stage  # noqa: E402
from figsearch.records import FigureRole  # noqa: E402

#: when this module was imported
_MODULE_IMPORTED = time.time()

log = logging.getLogger(__name__)


class _RebasedNamer:
    """The unit's namer, for its files unpacked elsewhere: names stay those of the driver's paths."""

    def __init__(self, namer, new_base: str, old_base: str) -> None:
        self.namer, self.new_base, self.old_base = namer, new_base, old_base

    def __call__(self, path: Path) -> str:
        text = str(path)
        if text == self.new_base or text.startswith(self.new_base + os.sep):
            text = self.old_base + text[len(self.new_base):]
        return self.namer(Path(text)) if self.namer else text


def _rebase(value, old: str, new: str):
    """``value`` (the unit's paths and options) with paths under ``old`` moved under ``new``."""
    if isinstance(value, (str, Path)):
        text = str(value)
        if text == old or text.startswith(old + os.sep):
            moved = new + text[len(old):]
            return Path(moved) if isinstance(value, Path) else moved
        return value
    if isinstance(value, list):
        return [_rebase(v, old, new) for v in value]
    if isinstance(value, tuple):
        return tuple(_rebase(v, old, new) for v in value)
    if isinstance(value, dict):
        return {k: _rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, (Namer, _RebasedNamer)):
        return _RebasedNamer(value, new, old)
    return value


#: a worker's scratch folders are named ``figsearch-ray-<pid>-...`` so that the folders of a worker
#: killed mid-document (Ray kills its actors when a build stops or fails) can be told and removed
SCRATCH_PREFIX = "figsearch-ray-"
_stale_scratch_removed = False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_scratch(root: str | None = None) -> int:
    """Remove the scratch folders that killed workers left in ``root`` (the temporary folder):
    those whose worker process no longer runs. Returns how many were removed."""
    import shutil

    root = root or tempfile.gettempdir()
    removed = 0
    try:
        names = os.listdir(root)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(SCRATCH_PREFIX):
            continue
        pid_text = name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        removed += not os.path.exists(os.path.join(root, name))
    return removed


def _ingest_unit(unit: Unit, base: str, blobs: list[bytes | None]) -> tuple[UnitResult, dict[str, bytes]]:
    """A Ray task: ``process_unit`` on the unit's files unpacked here; the records and PNG bytes back."""
    global _stale_scratch_removed
    if not _stale_scratch_removed:  # once per worker process
        _stale_scratch_removed = True
        remove_stale_scratch()
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
        inputs, output = os.path.join(scratch, "in"), os.path.join(scratch, "out")
        local = Unit(
            source=unit.source, reader=unit.reader, path=_rebase(unit.path, base, inputs),
            files=_rebase(unit.files, base, inputs), byte_range=None,
            options={**_rebase({k: v for k, v in unit.options.items() if k != "namer"}, base, inputs),
                     "namer": _RebasedNamer(unit.options.get("namer"), inputs, base)},
        )
        for path, data in zip(local.files, blobs):
            if data is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        # the scratch copy is read back and deleted below; the driver stores the same bytes durably
        with scratch_writes():
            result = process.process_unit(local, output)
        files = {}
        for ingested in result.documents:
            for figure in ingested.figures:
                for relative in (figure.image_path, figure.thumbnail_path):
                    if relative:
                        files[relative] = Path(output, relative).read_bytes()
    result.unit = None  # the driver puts its own unit back
    return result, files


def _read_ahead(data: bytes, seconds: dict[str, float], engine=None, numerals: bool = True, prepare=None):
    """(text boxes, ``signs.Ahead`` or None) of one stored drawing (PNG bytes), or None when it
    cannot be read: what a local build's reader hands its writer (``signs.read_drawing_ahead``: the
    drawing's words and parts worked out from the same pixels, so that the driver need not).
    ``engine``: the OCR engine (default: this worker's, ``signs._worker_engine``); ``numerals``:
    ``signs.numerals_wanted`` of its patent's text (False: no second look, as in a local build).
    ``prepare`` (``_backbone_prepare``): a third item, the visual encoder's input prepared from the
    same decoded pixels (None when it fails), so that encoding the drawing need not decode it again;
    its seconds go to "encode images" (they were spent there before)."""
    try:
        image = load_stored(io.BytesIO(data))  # a bilevel drawing's 1-bit file as its "L" pixels
        read = signs_stage.read_drawing_ahead(image, engine or signs_stage._worker_engine, numerals,
                                              seconds=seconds)
        if prepare is None:
            return read
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            prepared = prepare(image)
        except Exception as exc:  # noqa: BLE001 - encoded from the PNG bytes then, as before
            log.warning("drawing not prepared for the visual encoder while read: %s", exc)
            prepared = None
        seconds["encode images"] += time.perf_counter() - started
        seconds["encode images cpu"] += time.thread_time() - cpu
        return (*read, prepared)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return None


def _backbone_prepare(encoder):
    """What ``_read_ahead`` prepares for ``encoder`` from the pixels it has decoded to read a drawing:
    the backbone encoder's input (``signs.backbone_input``, held equal to ``BackboneEncoder.prepare``
    by tests/test_build_overlapped.py); None for other encoders (a subclass or a wrapper, a mask, may
    prepare otherwise), which encode from the PNG bytes."""
    import functools

    from figsearch.embed.encoders.backbone import BackboneEncoder

    if type(encoder) is not BackboneEncoder:
        return None
    return functools.partial(signs_stage.backbone_input, encoder.image_size)


class _EncodeBehind:
    """The drawings of a document prepared for the drawing encoder while their signs are read
    (``read_signs`` sets them here as in a dict, figure id -> input), encoded chunk by chunk in a
    thread of their own while the reading goes on: a worker whose share of the cores is 2 (1 worker
    on a 2-core node) encodes on its second core beside the OCR, as a local build's process runs its
    drawing encoder on 2 threads; a worker with one core encodes after the reading, as before."""

    def __init__(self, encoder, pool: ThreadPoolExecutor) -> None:
        self.encoder, self.pool = encoder, pool
        self.chunk = int(getattr(encoder, "chunk", None) or 4)  # the backbone's runs of 4 drawings
        self._waiting: list[tuple[str, np.ndarray]] = []
        self._running: list[tuple[list[str], Future]] = []

    def __setitem__(self, figure_id: str, prepared: np.ndarray) -> None:
        self._waiting.append((figure_id, prepared))
        if len(self._waiting) >= self.chunk:
            self._submit()

    def __contains__(self, figure_id: str) -> bool:
        return any(figure_id == f for f, _ in self._waiting) or any(figure_id in ids for ids, _ in self._running)

    def __bool__(self) -> bool:
        return bool(self._waiting or self._running)

    def _submit(self) -> None:
        ids, batch = [f for f, _ in self._waiting], np.stack([p for _, p in self._waiting])
        self._waiting = []
        self._running.append((ids, self.pool.submit(self._encode, batch)))

    def _encode(self, batch: np.ndarray):
        started, cpu = time.perf_counter(), time.thread_time()
        # normalised twice, as VisualEncoder.encode does, so that the vectors are encode's to the bit
        vectors = l2_normalise(self.encoder.encode_prepared(batch))
        return vectors, time.thread_time() - cpu, time.perf_counter() - started

    def vectors(self, seconds: dict[str, float]) -> dict[str, np.ndarray]:
        """Figure id -> vector of every drawing set here, once the last chunk is encoded (raises the
        first chunk's error). Their encoding's CPU goes to "encode images cpu", its wall seconds
        beside the reading to "encode images behind"."""
        if self._waiting:
            self._submit()
        out: dict[str, np.ndarray] = {}
        for ids, future in self._running:
            vectors, cpu, wall = future.result()
            seconds["encode images cpu"] += cpu
            seconds["encode images behind"] += wall
            out.update(zip(ids, vectors))
        return out


def _numerals_wanted(document) -> bool:
    """``signs.numerals_wanted`` of an ingested document's patent text (True when it cannot be told)."""
    from figsearch.link.patent_text import PatentText

    try:
        return signs_stage.numerals_wanted(PatentText.of(document.patent))
    except Exception as exc:  # noqa: BLE001 - read as if numerals were cited: the second looks are kept
        log.warning("%s: its text not parsed on the worker: %s", document.patent.publication_number, exc)
        return True


def _load(kind: str, spec: str, seconds: dict[str, float], events: list | None = None, threads: int = 1):
    """An OCR engine (kind "ocr") or an encoder (kind "visual"/"text"), on a worker, one thread each."""
    started, wall, cpu = time.perf_counter(), time.time(), time.thread_time()
    try:
        return _create(kind, spec, threads)
    finally:
        seconds[f"load {kind}"] += time.perf_counter() - started
        seconds[f"load {kind} cpu"] += time.thread_time() - cpu
        if events is not None:
            events.append((f"load {kind}", wall, time.time()))


def _create(kind: str, spec: str, threads: int = 1):
    """The OCR engine or encoder; the encoders on ``threads``: the worker's share of the node's cores
    (``distributed.encoder_threads``), the rule a local build's process follows (its encoders run on
    2 threads of a 2-core machine): 1 for each of 2 workers on 2 cores, 2 for 1 worker."""
    if kind == "ocr":
        from figsearch.ocr import create_engine

        engine = create_engine(spec)
        engine.load()  # its model at the worker's start: a file that will not load fails before any work
        return engine
    from figsearch.embed.catalog import create_text, create_visual

    if kind == "visual":
        try:  # an encoder that takes a thread count (the ONNX backbone): the worker's share. Its
            # threads are ``threads`` one-thread session runs on chunks of 4 drawings at once, not one
            # session's intra-op pool (which stop 19's try of 2 threads had: 8 CPU s more, docs/cluster.md)
            encoder = create_visual(spec, threads=threads)
        except InputError:  # this one does not take it
            encoder = create_visual(spec)
    else:
        try:  # minilm through onnxruntime takes a thread count; its default, 2, on every worker of a
            # 2-core node made 4 spinning threads on 2 cores in the embedding stage
            encoder = create_text(spec, threads=threads)
        except (InputError, TypeError):  # one that does not (a bare sentence-transformers name: TypeError)
            encoder = create_text(spec)
    if "torch" in sys.modules:  # imported by the encoder (not by the ONNX one): one thread too
        sys.modules["torch"].set_num_threads(1)
    return encoder


def read_signs(unit: Unit, result: UnitResult, image_bytes, engine, seconds: dict[str, float],
               prepare=None, prepared: dict | None = None) -> dict:
    """The text boxes (and ``signs.Ahead``) of the drawings of an ingested unit, by figure id:
    (image path, boxes, ahead); ``image_bytes(path)`` gives a figure's stored PNG bytes (None: not
    there). Empty when they cannot be read (the signs stage then reads them, and says why). With
    ``prepare`` (``_read_ahead``), each drawing's visual encoder input goes into ``prepared`` by
    figure id."""
    boxes: dict[str, tuple] = {}
    try:
        for document in result.documents:
            numerals = None
            for figure in document.figures:
                data = image_bytes(figure.image_path) if figure.role == FigureRole.DRAWING else None
                if data is not None:
                    started, cpu = time.perf_counter(), time.thread_time()
                    numerals = _numerals_wanted(document) if numerals is None else numerals
                    before = seconds["encode images"], seconds["encode images cpu"]
                    read = _read_ahead(data, seconds, engine, numerals, prepare)
                    # the preparing for the encoder is counted under "encode images", not here
                    seconds["read signs"] += time.perf_counter() - started - (seconds["encode images"] - before[0])
                    seconds["read signs cpu"] += time.thread_time() - cpu - (seconds["encode images cpu"] - before[1])
                    if read is not None:
                        if prepare is not None:
                            *read, ready = read
                            if ready is not None and prepared is not None:
                                prepared[figure.figure_id] = ready
                        boxes[figure.figure_id] = (figure.image_path, *read)
    except Exception as exc:  # noqa: BLE001 - the signs stage reads them then, and says why
        log.warning("%s: signs not read while ingesting: %s", unit.source, exc)
        return {}
    return boxes


def _process_started() -> float | None:
    """When this process started (wall time, from Linux's /proc; None elsewhere). The boot time is
    taken as now less the seconds since boot (``/proc/uptime``, to 0.01 s), not from ``btime`` of
    ``/proc/stat``, whose whole seconds put every process up to a second early."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        since_boot = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - since_boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class _Worker:
    """A Ray actor, one per worker CPU for the whole build: ingests documents, reads the signs of
    drawings and encodes them. Its OCR engine and encoders load one after the other in a background
    thread from its start, while it ingests; a call that needs one waits for it."""

    def __init__(self, engine: str | None, loads: list[tuple[str, str]], threads: int = 1) -> None:
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract: one thread per worker CPU
        #: the encoders' threads (``_create``): the worker's share of the node's cores
        self.threads = max(1, int(threads))
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="figsearch-load")
        self._encoder_thread: ThreadPoolExecutor | None = None  # ``_encoding``
        self._loads: dict[tuple[str, str], Future] = {}
        self._lock = threading.Lock()
        #: seconds spent loading and in each kind of call (``stats``), for the benchmark and the logs
        self.seconds: dict[str, float] = collections.defaultdict(float)
        #: (call, wall start, wall end) of each call and each load, for the benchmark's timeline
        self.events: list[tuple[str, float, float]] = []
        self._born, self._cpu = time.time(), time.process_time()
        if engine:
            self._start("ocr", engine)
        for modality, spec in loads:
            self._start(modality, spec)

    def _start(self, kind: str, spec: str) -> Future:
        with self._lock:
            if (kind, spec) not in self._loads:
                self._loads[kind, spec] = self._loader.submit(_load, kind, spec, self.seconds, self.events,
                                                             self.threads)
            return self._loads[kind, spec]

    def ready(self) -> list[dict]:
        """Wait for the encoders started so far; raise the first one's error (the OCR engine's is
        left to the signs stage, which a local build skips when the engine is missing)."""
        with self._lock:
            loads = [(key, future) for key, future in self._loads.items() if key[0] != "ocr"]
        return [future.result().identity for _, future in loads]

    def load(self, modality: str, spec: str) -> None:
        self._start(modality, spec)

    def loaded(self, modality: str, spec: str) -> bool:
        """Whether that encoder is loaded (or failed to load: ``identity`` then raises why); never waits."""
        with self._lock:
            loading = self._loads.get((modality, spec))
        return loading is not None and loading.done()

    def stats(self) -> dict[str, float]:
        """Seconds loading and in each kind of call, this process's CPU seconds and seconds alive
        since the actor started, and its niceness (for the benchmark)."""
        return {**self.seconds, "cpu": time.process_time() - self._cpu, "alive": time.time() - self._born,
                "niceness": self.niceness()}

    def timeline(self) -> tuple[float, list[tuple[str, float, float]]]:
        """When the actor started and the (call, wall start, wall end) of its calls and loads (for the
        benchmark), with the start of this worker process ("process") and the import of this module
        ("import worker module": preloaded, or from the actor's creation on)."""
        start = [("process", _process_started(), _process_started())] if _process_started() else []
        return self._born, start + [("import worker module", _MODULE_STARTED, _MODULE_IMPORTED)] + list(self.events)

    def niceness(self) -> int:
        """This worker process's niceness (Ray makes workers nicer than the process that started it)."""
        return os.getpriority(os.PRIO_PROCESS, 0)

    def _timed(self, what: str, call, *args):
        """``call(*args)``, its wall seconds added to ``seconds[what]`` and its CPU seconds (this thread's:
        the work's own, not what the process's other threads do meanwhile) to ``seconds[what + " cpu"]``:
        the same work costs more CPU when both cores of a 2-core node are busy (docs/cluster.md, stop 24)."""
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return call(*args)
        finally:
            self.seconds[what] += time.perf_counter() - started
            self.seconds[f"{what} cpu"] += time.thread_time() - cpu

    def acked(self, method: str, *args):
        """(True, ``method(*args)``), called with ``num_returns=2`` (``_Pool.map`` with ``tries``):
        the small first object tells the driver that the call came back (or how the worker died)
        without fetching the second, the result."""
        return True, getattr(self, method)(*args)

    def identity(self, modality: str, spec: str) -> dict:
        return self._start(modality, spec).result().identity

    def ingest(self, unit: Unit, base: str, blobs: list[bytes | None], engine: str | None,
               visual: str | None = None):
        """The unit's result and figure files (``_ingest_unit``); with ``engine`` the text boxes of
        its drawings (figure id -> (image path, boxes)), read from the very bytes the driver stores;
        with ``visual``, once that encoder is loaded, its drawings' vectors (figure id -> (spec,
        image digest, vector)) from the same bytes (before it is loaded: none, the embedding stage
        encodes them)."""
        wall = time.time()
        try:
            result, files = self._timed("ingest", _ingest_unit, unit, base, blobs)
            self.events.append(("decode", wall, time.time()))
            # the drawing encoder's input prepared from the pixels decoded to read the signs, once
            # that encoder is loaded (before: none, its drawings are decoded again to be encoded)
            encoder = self._visual_loaded(visual) if visual else None
            prepare = _backbone_prepare(encoder) if encoder is not None else None
            # with a second core of its own (``threads``), the drawings are encoded beside the reading
            prepared = (_EncodeBehind(encoder, self._encoding()) if prepare is not None and self.threads > 1
                        else {})
            boxes = self._read_signs(unit, result, files, engine, prepare, prepared) if engine else {}
            read = time.time()
            vectors = self._encode_drawings(unit, result, files, visual, prepared) if visual else {}
            if vectors:
                self.events.append(("encode", read, time.time()))
            return result, files, boxes, vectors
        finally:
            self.events.append(("ingest", wall, time.time()))

    def _encoding(self) -> ThreadPoolExecutor:
        """The thread that encodes a document's drawings beside its reading (``_EncodeBehind``)."""
        with self._lock:
            if self._encoder_thread is None:
                self._encoder_thread = ThreadPoolExecutor(1, thread_name_prefix="figsearch-encode")
            return self._encoder_thread

    def _visual_loaded(self, spec: str):
        """The drawing encoder of ``spec`` when it has loaded (None while it loads, or when it failed)."""
        with self._lock:
            loading = self._loads.get(("visual", spec))
        if loading is None or not loading.done() or loading.exception() is not None:
            return None
        return loading.result()

    def _encode_drawings(self, unit: Unit, result: UnitResult, files: dict[str, bytes], spec: str,
                         prepared: dict[str, np.ndarray] | _EncodeBehind | None = None) -> dict:
        """The unit's drawings' vectors (``ingest``); those in ``prepared`` (figure id -> the encoder's
        input, prepared while their signs were read) from it, or taken from ``_EncodeBehind``, which
        encoded them while they were read; the others decoded from their bytes."""
        encoder = self._visual_loaded(spec)
        if encoder is None:
            return {}
        prepared = prepared or {}
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            behind = prepared.vectors(self.seconds) if isinstance(prepared, _EncodeBehind) else None
            figures, images, ready = [], [], []
            for document in result.documents:
                for figure in document.figures:
                    data = files.get(figure.image_path) if figure.role == FigureRole.DRAWING else None
                    if data is not None and figure.image_sha256:
                        if figure.figure_id in prepared:
                            ready.append(figure)
                        else:
                            figures.append(figure)
                            images.append(embed_stage.decode_stored(io.BytesIO(data)))
            vectors = list(encoder.encode(images)) if images else []
            if behind is not None:
                vectors += [behind[f.figure_id] for f in ready]
            elif ready:
                # normalised twice, as VisualEncoder.encode does, so that the vectors are the same to the bit
                vectors += list(l2_normalise(encoder.encode_prepared(np.stack([prepared[f.figure_id] for f in ready]))))
            return {f.figure_id: (spec, f.image_sha256, v) for f, v in zip(figures + ready, vectors)}
        except Exception as exc:  # noqa: BLE001 - the embedding stage encodes them then, and says why
            log.warning("%s: drawings not encoded while ingesting: %s", unit.source, exc)
            return {}
        finally:
            self.seconds["encode images"] += time.perf_counter() - started
            self.seconds["encode images cpu"] += time.thread_time() - cpu

    def _read_signs(self, unit: Unit, result: UnitResult, files: dict[str, bytes], engine: str, prepare=None,
                    prepared: dict | None = None) -> dict:
        try:
            signs_stage._worker_engine = self._timed("wait for ocr", self._start("ocr", engine).result)
        except Exception as exc:  # noqa: BLE001 - the signs stage reads them then, and says why
            log.warning("%s: signs not read while ingesting: %s", unit.source, exc)
            return {}
        return read_signs(unit, result, files.get, signs_stage._worker_engine, self.seconds, prepare, prepared)

    def read(self, engine: str, data: bytes | None, numerals: bool = True):
        """The text boxes of one stored drawing (PNG bytes), or None when it cannot be read.
        ``numerals``: ``signs.numerals_wanted`` of its patent's text (False: no second look)."""
        if data is None:
            return None
        wall = time.time()
        signs_stage._worker_engine = self._timed("wait for ocr", self._start("ocr", engine).result)
        try:
            return self._timed("read signs", signs_stage._read_in_worker, io.BytesIO(data), numerals)
        finally:
            self.events.append(("read", wall, time.time()))

    def images(self, spec: str, blobs: list[bytes | None]) -> tuple[np.ndarray | None, dict[int, str]]:
        wall = time.time()
        encoder = self._timed("wait for visual", self._start("visual", spec).result)
        started, cpu = time.perf_counter(), time.thread_time()
        images, errors = [], {}
        for index, data in enumerate(blobs):
            if data is None:
                continue
            try:
                images.append(embed_stage.decode_stored(io.BytesIO(data)))
            except Exception as exc:  # a corrupt stored image: reported like embed_visual reports it
                errors[index] = str(exc)
        vectors = encoder.encode(images) if images else None
        self.seconds["encode images"] += time.perf_counter() - started
        self.seconds["encode images cpu"] += time.thread_time() - cpu
        self.events.append(("images", wall, time.time()))
        return vectors, errors

    def texts(self, spec: str, sentences: list[str]) -> np.ndarray:
        wall = time.time()
        encoder = self._timed("wait for text", self._start("text", spec).result)
        try:
            return self._timed("encode texts", encoder.encode, sentences)
        finally:
            self.events.append(("texts", wall, time.time()))
