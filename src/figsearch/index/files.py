"""The index directory of a collection: one FAISS index per modality, tied together by a manifest.

    COLLECTION/index/
      manifest.json            per modality: encoder key and identity, plan, count, files,
                               and the state of the stored vectors it was built from
      visual.g3.a0.faiss       the FAISS index (generation 3, after 0 appends)
      visual.g3.ids            figure ids, fixed-width bytes, position = FAISS id (memory-mapped)
      visual.g3.f32            exact float32 vectors for re-ranking (approximate indexes only;
                               memory-mapped, so they stay on disk); visual.g3.f16 holds them
                               as float16 from 10^6 vectors on (``vector_dtype`` in the entry)

Every file is written under a temporary name and renamed; the manifest is renamed last, so a
reader sees either the old index or the new one. Ids and vectors files only grow within a
generation and the manifest's count says how much of them is valid, so a crash mid-append
leaves a tail that the next append cuts off. A rebuild starts a new generation.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from figsearch.errors import CollectionError
from figsearch.fsutil import atomic_write_bytes, utcnow

log = logging.getLogger(__name__)

INDEX_DIR = "index"
MANIFEST = "manifest.json"
FORMAT = 1


def index_dir(collection_root: Path) -> Path:
    return Path(collection_root) / INDEX_DIR


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not path.exists():
        return {"format": FORMAT, "modalities": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("index manifest %s is unreadable (%s); indexes will be rebuilt from stored vectors", path, exc)
        return {"format": FORMAT, "modalities": {}}
    if manifest.get("format") != FORMAT:
        log.warning("index manifest %s has format %s, not %s; rebuilding", path, manifest.get("format"), FORMAT)
        return {"format": FORMAT, "modalities": {}}
    return manifest


def write_manifest(directory: Path, manifest: dict) -> None:
    manifest = dict(manifest, format=FORMAT, written_at=utcnow())
    atomic_write_bytes(directory / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())


def update_entries(directory: Path, changes: dict[str, dict | None]) -> list[str]:
    """Write the manifest with the changed modalities' entries (None drops one), in one write so that a reader sees
    all of them or none; returns the changed modalities' files that no entry points to any more."""
    manifest = read_manifest(directory)
    for modality, entry in changes.items():
        if entry is None:
            manifest["modalities"].pop(modality, None)
        else:
            manifest["modalities"][modality] = entry
    write_manifest(directory, manifest)
    referenced = {name for e in manifest["modalities"].values() for name in e.get("files", {}).values() if name}
    return [p.name for p in directory.iterdir()
            if any(p.name.startswith(f"{m}.g") for m in changes) and p.name not in referenced]


def update_entry(directory: Path, modality: str, entry: dict | None) -> list[str]:
    """Set (or with None drop) one modality's entry; returns the file names no entry points to any more."""
    return update_entries(directory, {modality: entry})


def remove_files(directory: Path, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            (directory / name).unlink()


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def commit(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)


class IndexBusy(CollectionError):
    """Another process is building or updating the indexes right now."""


@contextlib.contextmanager
def index_lock(directory: Path, wait: bool = True) -> Iterator[None]:
    """One process at a time builds or updates the indexes of a collection (searches are not blocked).

    ``wait=False`` raises IndexBusy at once when another process holds the lock.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(directory / ".lock", "a+")
    except OSError as exc:
        raise CollectionError(f"cannot write indexes under {directory}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise IndexBusy(f"the indexes under {directory} are being updated by another process") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
