"""A big index's shards added by Ray tasks on the cluster's CPUs (issue 16, item 5).

``figsearch.index.shards`` cuts the positions of a trained IVF index's vectors into shards and
merges the filled shard files in position order; this module is the executor that fills them on
Ray. A cluster's workers do not see the collection's directory (it stays local to the driver), so
each task gets the trained index and its shard's vectors through Ray's object store and sends the
filled shard back serialized (``shards.fill_shard``); the driver writes it where the task names,
atomically, so a shard kept by an interrupted build is not added again. At most ``in_flight``
shards are out at once, which bounds the object store (a shard of 2·10^6 float16 256-d vectors
is 1 GB). A task whose worker dies is run again by Ray (the shard is only written by the driver,
so nothing is written twice).

Imported only by the Ray build (``figsearch.pipeline.distributed``), which imports ``ray``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from figsearch.fsutil import atomic_write_bytes
from figsearch.index.shards import ShardDone, ShardTask, fill_shard


def shards_on_ray(ray, tasks: Iterable[ShardTask], *, in_flight: int, retries: int = 3) -> Iterator[ShardDone]:
    """Each task's ``ShardDone``, in task order, its shard filled by a Ray task of one CPU."""
    fill = ray.remote(num_cpus=1, max_retries=retries)(fill_shard)
    trained: dict[str, object] = {}  # the trained index file -> its bytes in the object store

    def send(task: ShardTask):
        if Path(task.out).exists():  # kept from an earlier, interrupted build
            return None
        if task.trained not in trained:
            trained[task.trained] = ray.put(Path(task.trained).read_bytes())
        vectors = np.memmap(task.vectors, dtype=task.dtype, mode="r", shape=(task.count, task.dim))
        return fill.remote(trained[task.trained], np.ascontiguousarray(vectors[task.start:task.stop]), task.start,
                           task.assignment)

    waiting = list(tasks)
    sent: list[tuple[ShardTask, object]] = []
    while waiting or sent:
        while waiting and len(sent) < max(1, in_flight):
            task = waiting.pop(0)
            sent.append((task, send(task)))
        task, ref = sent.pop(0)
        if ref is None:
            yield ShardDone(task.out)
            continue
        payload, done = ray.get(ref)
        atomic_write_bytes(Path(task.out), payload)
        yield dataclasses.replace(done, out=task.out)
