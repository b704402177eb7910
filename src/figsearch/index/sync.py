"""Bring a modality's index in line with the stored vectors: nothing, an append, or a rebuild.

The index holds the vectors of one encoder only: a different encoder, a changed dimension, a
new plan (the collection outgrew the last one, or another factory string was asked for), or
stored vectors that were replaced or deleted since the build all lead to a rebuild — always
from the ``embeddings`` table, never by running a model. Rows added since the build (their
rowids are above the highest one indexed) are appended.

This is the write path's only way into an index (``figsearch index`` and the build call it);
searches open what it last wrote (figsearch.index.snapshot) and never come here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from figsearch.index.files import index_dir, index_lock, read_manifest, remove_files, update_entries
from figsearch.index.modality import Chunks, Refused, append, build
from figsearch.index.plan import DEFAULT_BYTES_PER_VECTOR, IndexPlan, choose_plan
from figsearch.index.shards import ShardExecutor
from figsearch.store import Collection

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    modality: str
    encoder: str
    #: "unchanged", "appended", "rebuilt" or "empty" (no stored vectors of this encoder)
    action: str
    count: int
    added: int = 0
    factory: str | None = None
    reason: str = ""
    seconds: float = 0.0
    #: for approximate indexes: lists probed per query and the recall@50 measured at build time
    nprobe: int | None = None
    calibrated_recall: float | None = None


def is_current(directory: Path, entry: dict | None, state: dict, key: str) -> bool:
    """The index was built from exactly the stored vectors there are now, and its files exist."""
    return bool(
        entry
        and entry.get("encoder") == key
        and entry.get("db_state") == state
        and all((directory / name).exists() for name in entry.get("files", {}).values() if name)
    )


def rebuild_reason(directory: Path, entry: dict | None, key: str, dim: int, plan: IndexPlan) -> str:
    """Why ``entry`` cannot be appended to whatever the new vectors ("" if it can)."""
    if not entry:
        return "no index yet"
    if entry.get("encoder") != key:
        return f"encoder changed from {entry.get('encoder')} to {key} (indexes never mix encoders)"
    if entry.get("dim") != dim:
        return f"dimension changed from {entry.get('dim')} to {dim}"
    if entry["plan"]["factory"] != plan.factory:
        return f"index type changes from {entry['plan']['factory']} to {plan.factory}"
    if not all((directory / name).exists() for name in entry.get("files", {}).values() if name):
        return "index files are missing"
    return ""


@dataclass(frozen=True)
class IndexRequest:
    """One modality's index to bring up to date: the encoder whose stored vectors it holds."""

    modality: str
    key: str
    identity: dict
    #: an index-factory string asked for (None: the size rule chooses)
    factory: str | None = None


#: what ``_sync_one`` returns when the manifest entry stays as it is
_KEEP = object()


def sync_index(
    collection: Collection,
    modality: str,
    key: str,
    identity: dict,
    *,
    factory: str | None = None,
    bytes_per_vector: float = DEFAULT_BYTES_PER_VECTOR,
    directory: Path | None = None,
    force: bool = False,
    wait: bool = True,
) -> IndexReport:
    """Make ``directory`` (default COLLECTION/index) hold an up-to-date index of ``modality`` for encoder ``key``.

    ``wait=False``: raise IndexBusy instead of waiting for another process's index run.
    """
    return sync_indexes(collection, [IndexRequest(modality, key, identity, factory)], bytes_per_vector=bytes_per_vector,
                        directory=directory, force=force, wait=wait)[0]


def sync_indexes(
    collection: Collection,
    requests: list[IndexRequest],
    *,
    bytes_per_vector: float = DEFAULT_BYTES_PER_VECTOR,
    directory: Path | None = None,
    force: bool = False,
    wait: bool = True,
    shards: ShardExecutor | None = None,
) -> list[IndexReport]:
    """Bring several modalities' indexes up to date and publish them together.

    Every new file is written first and the manifest once, at the end, so a search (which opens
    what one manifest names) sees the indexes of the last run or of this one, never this run's
    visual index beside the last run's text index. Files no entry names any more go afterwards.
    ``shards``: where a rebuild adds its vectors in shards (the Ray build's workers); default the
    process pool of ``FIGSEARCH_INDEX_WORKERS`` (figsearch.index.shards).
    """
    directory = directory or index_dir(collection.root)
    with index_lock(directory, wait=wait):
        manifest = read_manifest(directory)
        reports, changes = [], {}
        for request in requests:
            report, entry = _sync_one(collection, directory, manifest["modalities"].get(request.modality), request,
                                      bytes_per_vector=bytes_per_vector, force=force, shards=shards)
            reports.append(report)
            if entry is not _KEEP:
                changes[request.modality] = entry
        if changes:
            remove_files(directory, update_entries(directory, changes))
    return reports


def _sync_one(collection: Collection, directory: Path, entry: dict | None, request: IndexRequest, *,
              bytes_per_vector: float, force: bool, shards: ShardExecutor | None = None):
    """Write what one modality's index needs (an append or a new generation); returns its report and
    the manifest entry to publish (None: drop it; _KEEP: leave it)."""
    start = time.perf_counter()
    modality, key, identity = request.modality, request.key, request.identity
    state = collection.vectors.state(modality, key)
    if collection.vectors.drawing_count(modality, key) == 0:
        # nothing of this encoder to search: an index of another one must not answer instead
        return IndexReport(modality, key, "empty", 0, seconds=time.perf_counter() - start), (
            None if entry is not None else _KEEP)
    dim = collection.vectors.dim(modality, key)
    plan = choose_plan(state["count"], dim, bytes_per_vector, request.factory)
    reason = "rebuild asked for" if force else rebuild_reason(directory, entry, key, dim, plan)
    if not reason and is_current(directory, entry, state, key):
        report = IndexReport(modality, key, "unchanged", entry["count"], factory=plan.factory,
                             seconds=time.perf_counter() - start)
        return report, _KEEP
    same_vectors = bool(entry) and entry.get("encoder") == key and entry.get("dim") == dim
    if same_vectors and collection.vectors.count_up_to(modality, key, entry["max_rowid"]) != entry["count"]:
        same_vectors = False
        reason = reason or "stored vectors were replaced or deleted since the last build"
    # the index holds the first of the vectors; those appended since its lists were trained, and the
    # new ones, come last: a rebuild draws half of its calibration queries from them
    since_build = (entry["count"] - entry.get("built_count", entry["count"])
                   + collection.vectors.count_after(modality, key, entry["max_rowid"])) if same_vectors else 0
    new_entry, action, reason, added = append_or_rebuild(
        directory, modality, entry, key=key, identity=identity, dim=dim, plan=plan, reason=reason, newest=since_build,
        new=lambda: collection.vectors.iterate(modality, key, after_rowid=entry["max_rowid"]),
        everything=lambda: collection.vectors.iterate(modality, key), shards=shards)
    new_entry["db_state"] = state
    return IndexReport(modality, key, action, new_entry["count"], added=added, factory=plan.factory, reason=reason,
                       seconds=time.perf_counter() - start, nprobe=new_entry.get("nprobe") or None,
                       calibrated_recall=new_entry.get("calibrated_recall")), new_entry


def append_or_rebuild(directory: Path, modality: str, entry: dict | None, *, key: str, identity: dict, dim: int,
                      plan: IndexPlan, reason: str, new: Callable[[], Chunks], everything: Callable[[], Chunks],
                      newest: int = 0, shards: ShardExecutor | None = None) -> tuple[dict, str, str, int]:
    """The step ``figsearch index`` takes for an index that is not current: (new entry, "appended" or
    "rebuilt", why it was rebuilt, vectors added). benchmarks/index_scale_benchmark.py --appends takes it too.

    ``reason``: a rebuild the caller already knows is needed ("" if none). Else the vectors ``new()``
    yields are appended (re-calibrated once the index has grown by 10 %); where the append is refused
    (the lists no longer serve the vectors, or an id does not fit), a new generation is built from
    ``everything()``, every vector in order, its lists retrained. ``newest``: how many of the last
    vectors of ``everything()`` came after ``entry``'s lists were trained (0: unknown, or other
    vectors); a rebuild draws half of its calibration queries from them (``build(newest=...)``), and
    after a refusal for recall it reuses the refusal's queries and their exact neighbours.
    """
    calibration = None
    if not reason:
        parts = list(new())
        ids = [i for part in parts for i in part[0]]
        if ids:
            vectors = np.concatenate([part[1] for part in parts])
            updated = append(directory, entry, ids, vectors, max(part[2] for part in parts))
            if not isinstance(updated, Refused):
                log.info("%s index: appended %d vectors (%d in all)", modality, len(ids), updated["count"])
                return updated, "appended", "", len(ids)
            reason = updated.reason
            if updated.retrain:  # calibrate the new lists on the appended vectors too, as the append did
                newest = entry["count"] + len(ids) - entry.get("built_count", entry["count"])
                if plan.vector_dtype == (entry.get("vector_dtype") or "<f4"):  # the same vectors: same neighbours
                    calibration = updated.calibration
        else:
            reason = "no new vectors to append"
    log.info("%s index: rebuilding from stored vectors (%s)", modality, reason)
    generation = (entry or {}).get("generation", 0) + 1
    new_entry = build(directory, modality, key=key, identity=identity, dim=dim, plan=plan, chunks=everything(),
                      generation=generation, workers=shards.workers if shards else None,
                      map_shards=shards.map if shards else None, newest=newest, calibration=calibration)
    return new_entry, "rebuilt", reason, new_entry["count"]
