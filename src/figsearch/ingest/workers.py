"""Running units in worker processes, in order, surviving a worker that dies.

A hostile PDF or image can crash a native decoder (pdfium, libtiff) and with it the worker
process. Then every unit in flight is retried alone in a fresh worker, so that the one
that crashes it again is reported as a failure and the others go in as usual.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Iterator

from figsearch.ingest.base import Unit
from figsearch.ingest.process import UnitResult, process_unit
from figsearch.records import Failure

log = logging.getLogger(__name__)


def run_units(units: list[Unit], root: str, jobs: int, *, processes: int | None = None,
              context=None) -> Iterator[UnitResult]:
    """Results of ``process_unit`` for each unit, in the order given. ``processes``: how many worker
    processes (default ``jobs``; with one job, or a single unit, the units run in this process unless
    ``processes`` asks for one). ``context``: their multiprocessing context (default spawn; the
    overlapped build passes its readers' forkserver, whose server has imported this module)."""
    if (processes is None and jobs <= 1) or len(units) < 2:
        for unit in units:  # in this process: fastest to start, but a native crash ends the run
            yield process_unit(unit, root)
        return
    from concurrent.futures.process import BrokenProcessPool

    jobs = max(1, processes if processes is not None else jobs)
    window = jobs * 2
    queue = collections.deque(units)
    pool = _pool(jobs, context)
    in_flight: collections.deque = collections.deque()
    try:
        while queue or in_flight:
            while queue and len(in_flight) < window:
                unit = queue.popleft()
                in_flight.append((unit, pool.submit(process_unit, unit, root)))
            unit, future = in_flight[0]
            try:
                result = future.result()
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                suspects = [u for u, _ in in_flight]
                in_flight.clear()
                log.warning("a worker process died; retrying %d document(s) one at a time", len(suspects))
                yield from _isolate(suspects, root, context)
                pool = _pool(jobs, context)
                continue
            in_flight.popleft()
            yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _isolate(units: list[Unit], root: str, context) -> Iterator[UnitResult]:
    from concurrent.futures.process import BrokenProcessPool

    for unit in units:
        pool = _pool(1, context)
        try:
            yield pool.submit(process_unit, unit, root).result()
        except BrokenProcessPool:
            result = UnitResult(unit)
            result.fatal = Failure(unit.source, "reading it crashed the decoder (the worker process died); "
                                                "the file is probably damaged or hostile")
            yield result
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _pool(jobs: int, context=None):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn (or a forkserver), not fork: the parent holds an SQLite connection and maybe a progress thread
    context = context or multiprocessing.get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(level,))


#: the kernel's name of an ingest worker process (``/proc/PID/comm``): forked by a forkserver, its command
#: line is the server's, so this is what tells it from the OCR readers (``benchmarks/build_speed.py``)
WORKER_NAME = "fs-ingest"


def _init_worker(level: int) -> None:
    """Workers log like the parent (the CLI's -v), so their warnings look the same, and die with it: a
    parent killed alone (kill -9 PID, an OOM kill) would leave them waiting on the task queue forever,
    writing into the collection the next run uses."""
    from figsearch.fsutil import exit_with_parent, name_native_thread

    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    name_native_thread(WORKER_NAME)
    exit_with_parent()
