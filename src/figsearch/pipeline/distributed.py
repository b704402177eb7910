"""The build on a Ray cluster: decoding, reading signs and embedding on the workers, writing here.

    figsearch build PATH... --collection DIR --ray [ADDRESS|auto|local]

This process (the driver) lists and plans the input, skips unchanged documents and is the only
writer of the collection. It writes through the very functions of a local build
(figsearch.ingest.runner, figsearch.pipeline.signs, figsearch.pipeline.index), which take the
workers' results in the order of the plan, so a Ray build writes what a local build writes, in
the same order, and resumes the same way after a kill: what was committed stays, a rerun does
the rest. Only the expensive middle of each stage runs on the cluster:

- ingest: one Ray task per document (unit). The driver reads the document's files anyway (it
  hashes them for skip-unchanged) and sends their bytes; the task unpacks them in a scratch
  folder, runs ``process_unit`` there and sends back the records and the PNG bytes of the
  figures, which the driver stores. Workers need neither the input nor the collection on their
  disks. A worker process that dies is retried by Ray (``max_retries``); a document that kills
  every try is recorded as a failure of that document, as a local build records it.
- reference signs: actors that load the OCR engine once each read the text boxes of the stored
  drawings (sent as PNG bytes); the driver parses, splits and links them (``process_figure``).
- embedding: actors that load the encoder once each encode batches (64 drawings, 256 sentences);
  the driver stores the vectors in order and builds the indexes.

Nothing here is imported by a local build: ``import ray`` happens only in this module.
"""

from __future__ import annotations

import collections
import io
import logging
import os
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from figsearch.embed.catalog import encoder_key
from figsearch.errors import CollectionError, FigsearchError, InputError, MissingDependency, ModelUnavailable
from figsearch.fsutil import atomic_write_bytes, fsync_directories
from figsearch.ingest import process
from figsearch.ingest.base import Unit
from figsearch.ingest.plan import Namer
from figsearch.ingest.process import UnitResult
from figsearch.pipeline import embed as embed_stage
from figsearch.pipeline import signs as signs_stage
from figsearch.pipeline.embed import EmbedReport, text_row, texts_to_encode
from figsearch.records import Failure, Figure, FigureRole
from figsearch.store import TMP_DIR, Collection

log = logging.getLogger(__name__)

#: how often Ray runs a task again whose worker process died (a kill, an OOM kill, a native crash)
MAX_RETRIES = 3
#: tasks in flight per worker: enough to keep every worker busy while the driver writes
IN_FLIGHT_PER_WORKER = 2
#: the message of a document whose every try killed its worker (the local build's words)
CRASHED = "reading it crashed the decoder (the worker process died); the file is probably damaged or hostile"


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependency("--ray needs Ray: pip install 'figsearch[ray]'") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``host:port`` or ``ray://host:port`` address; None for names Ray resolves itself."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rpartition(":")
    if not host:
        return (rest, 6379) if rest else None
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise InputError(f"--ray {address!r}: expected HOST:PORT, 'auto' or 'local'") from None


def connect(address: str | None = "auto", *, workers: int | None = None) -> int:
    """Join the Ray cluster at ``address`` ('auto': the one this machine belongs to; 'local': start
    one here with ``workers`` CPUs); returns the number of worker CPUs. Already joined: kept as is.

    An address that does not answer raises one InputError, before any work is done.
    """
    ray = _ray()
    if not ray.is_initialized():
        options = {"include_dashboard": False, "logging_level": logging.WARNING}
        if address in (None, "local"):
            ray.init(num_cpus=workers, **options)
        else:
            where = None if address == "auto" else _host_port(address)
            if where is not None:
                try:
                    socket.create_connection(where, timeout=5).close()
                except OSError as exc:
                    raise InputError(f"Ray cluster at {address} does not answer ({exc.strerror or exc}); "
                                     "start one with 'ray start --head', or build with --ray local") from None
            try:
                ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(f"cannot join the Ray cluster at {address}: {exc}") from None
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(cpus, workers) if workers else cpus)


class RayCluster:
    """What ``figsearch.pipeline.building.build(cluster=...)`` runs on Ray: one per build."""

    def __init__(self, address: str | None = "auto", *, workers: int | None = None) -> None:
        self.workers = connect(address, workers=workers)
        self.ray = _ray()
        #: the encoders started by ``encoder()``, by modality, until their stage ends
        self._started: dict[str, _Actors] = {}

    # -- ingest ----------------------------------------------------------------------------------

    def run_units(self, units: list[Unit], root: str, jobs: int) -> Iterator[UnitResult]:
        """``figsearch.ingest.workers.run_units`` on Ray: each unit's result, in the order given."""
        ray = self.ray
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_ingest_unit)
        calls = ((unit, task.remote(*_payload(unit))) for unit in units)
        for unit, ref in _window(calls, self.workers * IN_FLIGHT_PER_WORKER):
            try:
                result, files = ray.get(ref)
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError):
                log.warning("%s: its worker died on every one of %d tries", unit.source, MAX_RETRIES + 1)
                result, files = UnitResult(unit, fatal=Failure(unit.source, CRASHED)), {}
            except ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None
            _store_files(Path(root), files)
            result.unit = unit
            yield result

    # -- reference signs -------------------------------------------------------------------------

    def read_ahead(self, collection: Collection, drawings: list[Figure], engine, jobs: int) -> _RayReadAhead:
        """``figsearch.pipeline.signs._ReadAhead`` on Ray (``jobs`` is the local build's; the cluster's CPUs count here)."""
        return _RayReadAhead(self, collection, drawings, engine)

    # -- embedding -------------------------------------------------------------------------------

    @property
    def embedder(self) -> RayCluster:
        return self

    def encoder(self, modality: str, spec: str) -> _RemoteEncoder:
        """Start the workers' encoders for ``modality``; they must all be the same encoder."""
        actor = self.ray.remote(num_cpus=1, max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)(_EncoderActor)
        actors = [actor.remote(modality, spec) for _ in range(self.workers)]
        pool = _Actors(self, actors)
        try:
            identities = [identity for _, identity in pool.map("identity", ((None, ()) for _ in actors))]
        except BaseException:
            pool.__exit__()
            raise
        if any(identity != identities[0] for identity in identities):
            pool.__exit__()
            raise ModelUnavailable(f"the Ray workers load different {modality} encoders for {spec!r} "
                                   f"({', '.join(sorted({encoder_key(i) for i in identities}))}): install the same "
                                   "figsearch and model files on every node")
        self._started[modality] = pool
        return _RemoteEncoder(identities[0])

    def _encoders(self, modality: str) -> _Actors:
        return self._started.pop(modality)

    def visual(self, collection: Collection, spec: str, encoder, todo, progress) -> EmbedReport:
        """``embed_visual`` with the encoding on the cluster: same batches, same failures, same rows."""
        key = encoder_key(encoder)
        report = EmbedReport("visual", key)
        batch_size = 64
        batches = [todo[start:start + batch_size] for start in range(0, len(todo), batch_size)]

        def calls(actors):
            for batch in batches:
                blobs, unread = [], {}
                for index, (figure, _) in enumerate(batch):
                    try:
                        blobs.append(collection.path(figure.image_path).read_bytes())
                    except OSError as exc:
                        blobs.append(None)
                        unread[index] = str(exc)
                yield (batch, unread), (blobs,)

        with self._encoders("visual") as actors:
            for (batch, unread), (vectors, errors) in actors.map("images", calls(actors)):
                errors = {**errors, **unread}
                good = [(f, d) for index, (f, d) in enumerate(batch) if index not in errors]
                for index in sorted(errors):
                    figure = batch[index][0]
                    reason = f"cannot read stored image {figure.image_path}: {errors[index]}"
                    log.warning("figure %s: %s", figure.figure_id, reason)
                    report.failed.append((figure.figure_id, reason))
                if good:
                    collection.vectors.save("visual", key, [(f.figure_id, v, d) for (f, d), v in zip(good, vectors)])
                    report.embedded += len(good)
                if progress:
                    progress(len(batch))
        return report

    def text(self, collection: Collection, spec: str, encoder, plan, progress) -> EmbedReport:
        """``embed_text`` with the sentences (and drawing words) encoded on the cluster: a figure's vector
        is ``text_vector`` of them, as locally; each distinct text encoded once per round."""
        key = encoder_key(encoder)
        todo, drop, unchanged = plan
        report = EmbedReport("text", key, unchanged=unchanged)
        report.removed = collection.vectors.delete("text", key, drop)
        batch_size = 256
        with self._encoders("text") as actors:
            # a round is what all workers encode at once; its vectors are then written batch by batch
            round_size = batch_size * self.workers * IN_FLIGHT_PER_WORKER * 4
            for round_start in range(0, len(todo), round_size):
                figures = todo[round_start:round_start + round_size]
                sentences = list(dict.fromkeys(s for _, text, _ in figures for s in texts_to_encode(text)))
                pieces = [sentences[i:i + batch_size] for i in range(0, len(sentences), batch_size)]
                vectors = [v for _, out in actors.map("texts", ((None, (p,)) for p in pieces)) for v in out]
                cache = dict(zip(sentences, vectors))
                for start in range(0, len(figures), batch_size):
                    batch = figures[start:start + batch_size]
                    # the same rows as a local build's embed_text
                    collection.vectors.save("text", key, [text_row(f, text, digest, cache) for f, text, digest in batch])
                    report.embedded += len(batch)
                    if progress:
                        progress(len(batch))
        return report


def build_on_ray(paths: Iterable, collection, *, address: str | None = "auto", workers: int | None = None,
                 **options):
    """``figsearch.build`` on a Ray cluster (see the module's doc); returns the same BuildReport."""
    from figsearch.pipeline.building import build

    return build(paths, collection, cluster=RayCluster(address, workers=workers), **options)


# -- helpers run on the driver -------------------------------------------------------------------

def _window(calls: Iterator, size: int) -> Iterator:
    """Submit lazily, at most ``size`` in flight, yield in submission order."""
    pending: collections.deque = collections.deque()
    for call in calls:
        pending.append(call)
        if len(pending) >= size:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


def _cause(exc) -> BaseException:
    """The exception a task or an actor's start raised (a CollectionError stops the build as it does locally)."""
    for _ in range(4):  # an actor that died starting wraps its start's error, which wraps the exception
        if isinstance(exc, FigsearchError):
            return exc
        cause = getattr(exc, "cause", None)
        if not isinstance(cause, BaseException):
            break
        exc = cause
    return exc


def _payload(unit: Unit) -> tuple[Unit, str, list[bytes | None]]:
    """The unit, the folder its files are in, and their bytes (a bulk file's: only this document's)."""
    base = os.path.commonpath([str(path.parent) for path in unit.files]) if unit.files else str(unit.path.parent)
    blobs: list[bytes | None] = []
    for index, path in enumerate(unit.files):
        try:
            blobs.append(unit.read_bytes() if index == 0 and unit.byte_range is not None else path.read_bytes())
        except OSError:
            blobs.append(None)  # the reader finds it missing there, as it would here
    return unit, base, blobs


def _store_files(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        try:
            atomic_write_bytes(root / relative, data, tmp_dir=root / TMP_DIR)
        except OSError as exc:
            raise CollectionError(f"cannot write {relative} in collection {root}: {exc.strerror or exc}") from None
    # the runner commits these figures next: their files must survive a power cut that the commit survives
    fsync_directories({(root / relative).parent for relative in files})


class _Actors:
    """A pool of actors fed in order: ``map(method, (key, args)...)`` yields (key, result) in order."""

    def __init__(self, cluster: RayCluster, actors: list) -> None:
        self.ray = cluster.ray
        self.actors = actors
        self.size = len(actors) * IN_FLIGHT_PER_WORKER

    def map(self, method: str, calls: Iterable) -> Iterator:
        submitted = ((key, getattr(self.actors[n % len(self.actors)], method).remote(*args))
                     for n, (key, args) in enumerate(calls))
        for key, ref in _window(submitted, self.size):
            try:
                yield key, self.ray.get(ref)
            except (self.ray.exceptions.RayTaskError, self.ray.exceptions.RayActorError) as exc:
                cause = _cause(exc)
                if isinstance(cause, FigsearchError):  # a worker without the model files, say
                    raise cause from None
                raise

    def __enter__(self) -> _Actors:
        return self

    def __exit__(self, *exc) -> None:
        for actor in self.actors:  # their CPUs go to the next stage's workers
            self.ray.kill(actor)


class _RayReadAhead:
    """The text boxes of each drawing, read by OCR actors ahead of the driver, in the order given."""

    def __init__(self, cluster: RayCluster, collection: Collection, drawings: list[Figure], engine) -> None:
        self.results = None
        self.pool = None
        if engine is None or not drawings:
            return
        actor = cluster.ray.remote(num_cpus=1, max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)(_SignReader)
        self.pool = _Actors(cluster, [actor.remote(engine.name) for _ in range(cluster.workers)])
        self.ids = iter([f.figure_id for f in drawings])

        def calls():
            for figure in drawings:
                try:
                    data = collection.path(figure.image_path).read_bytes() if figure.image_path else None
                except OSError:
                    data = None  # the driver finds it unreadable too and says why
                yield None, (data,)

        self.results = (boxes for _, boxes in self.pool.map("read", calls()))

    def boxes(self, figure: Figure):
        if self.results is None or figure.role != FigureRole.DRAWING:
            return None
        expected = next(self.ids)
        if expected != figure.figure_id:
            raise RuntimeError(f"read-ahead out of order: {expected} read, {figure.figure_id} written")
        return next(self.results)

    def __enter__(self) -> _RayReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.__exit__()


# -- run on the workers --------------------------------------------------------------------------

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


def _ingest_unit(unit: Unit, base: str, blobs: list[bytes | None]) -> tuple[UnitResult, dict[str, bytes]]:
    """A Ray task: ``process_unit`` on the unit's files unpacked here; the records and PNG bytes back."""
    with tempfile.TemporaryDirectory(prefix="figsearch-ray-") as scratch:
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
        result = process.process_unit(local, output)
        files = {}
        for ingested in result.documents:
            for figure in ingested.figures:
                for relative in (figure.image_path, figure.thumbnail_path):
                    if relative:
                        files[relative] = Path(output, relative).read_bytes()
    result.unit = None  # the driver puts its own unit back
    return result, files


class _SignReader:
    """A Ray actor: the OCR engine, loaded once, reads the text boxes of stored drawings."""

    def __init__(self, engine: str) -> None:
        signs_stage._start_worker(engine)

    def read(self, data: bytes | None):
        return None if data is None else signs_stage._read_in_worker(io.BytesIO(data))


class _RemoteEncoder:
    """The driver's stand-in for an encoder loaded by the workers: what it records is the identity."""

    def __init__(self, identity: dict) -> None:
        self.identity = identity
        self.name, self.dim = identity.get("name", ""), identity.get("dim", 0)


class _EncoderActor:
    """A Ray actor: one encoder, loaded once, encoding batches of stored drawings or sentences."""

    def __init__(self, modality: str, spec: str) -> None:
        from figsearch.embed.catalog import create_text, create_visual

        self.encoder, self.error = None, None
        try:
            self.encoder = (create_visual if modality == "visual" else create_text)(spec)
        except FigsearchError as exc:
            # kept for identity() to raise: an error in a method reaches the driver as itself,
            # while an actor that dies starting reaches it as text only
            self.error = exc

    def identity(self) -> dict:
        if self.error is not None:
            raise self.error
        return self.encoder.identity

    def images(self, blobs: list[bytes | None]) -> tuple[np.ndarray | None, dict[int, str]]:
        images, errors = [], {}
        for index, data in enumerate(blobs):
            if data is None:
                continue
            try:
                images.append(embed_stage.decode_stored(io.BytesIO(data)))
            except Exception as exc:  # a corrupt stored image: reported like embed_visual reports it
                errors[index] = str(exc)
        return (self.encoder.encode(images) if images else None), errors

    def texts(self, sentences: list[str]) -> np.ndarray:
        return self.encoder.encode(sentences)
