"""A consistent copy of a collection while it is served (``figsearch backup``).

``cp -a`` of a collection is a good copy only while nothing writes it: a weekly build that commits while the
copy runs can leave the copied database and its ``-wal`` file from different moments, or an index manifest
naming files the copy missed. Here the writer lock is held for the whole copy (a build started meanwhile is
refused at once, with the usual message, and searches go on), the database is copied by SQLite's online
backup (every committed transaction, the ``-wal`` file's included, in one file), and the rest file by file.
The copy is a collection of its own: nothing in a collection names its own folder, so it can be opened,
served or moved anywhere.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from figsearch.errors import CollectionError, InputError
from figsearch.store.collection import DB_NAME
from figsearch.store.connection import LOCK_NAME, WriterLock, connect
from figsearch.store.files import TMP_DIR
from figsearch.store.schema import check_version

#: never copied: the writer's scratch, its lock, SQLite's side files (the online backup holds their content)
SKIPPED = {TMP_DIR, LOCK_NAME, DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal"}


@dataclass
class BackupReport:
    destination: str
    files: int = 0
    linked: int = 0
    bytes: int = 0
    seconds: float = 0.0


def backup_collection(root: str | os.PathLike, destination: str | os.PathLike, *, link: bool = False) -> BackupReport:
    """Copy the collection at ``root`` to ``destination`` (which must not exist, or be an empty folder).

    ``link``: hard-link the image files and thumbnails instead of copying them (they are never changed in
    place: a new version is written beside and renamed over, so a link keeps the old bytes); needs the same
    file system, and falls back to copying where it cannot link.
    """
    root, destination = Path(root), Path(destination)
    if not (root / DB_NAME).is_file():
        raise CollectionError(f"no collection at {root} (no {DB_NAME})")
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise InputError(f"backup destination {destination} exists and is not an empty folder; name a new one")
    if destination.resolve().is_relative_to(root.resolve()):
        raise InputError(f"backup destination {destination} is inside the collection {root}")
    started = time.perf_counter()
    report = BackupReport(str(destination))
    lock = WriterLock(root)
    lock.acquire()  # CollectionLocked, naming the writer, while a build, index or remove runs
    try:
        _copy(root, destination, link, report)
    except CollectionError as exc:
        raise CollectionError(f"{exc} (the partial copy in {destination} is no backup: remove it)") from exc
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    return report


def _copy(root: Path, destination: Path, link: bool, report: BackupReport) -> None:
    source = connect(root / DB_NAME, write=False)
    try:
        check_version(source, root, DB_NAME)
        destination.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(destination / DB_NAME)
        try:
            source.backup(target)
        finally:
            target.close()
    except (sqlite3.Error, OSError) as exc:
        raise CollectionError(f"cannot back up {root / DB_NAME} to {destination}: {exc}") from exc
    finally:
        source.close()
    report.bytes += (destination / DB_NAME).stat().st_size
    report.files += 1

    def copy(src: str, dst: str) -> str:
        if link and Path(src).relative_to(root).parts[0] in ("images", "thumbs"):
            try:
                os.link(src, dst)
                report.linked += 1
                report.files += 1
                return dst
            except OSError:
                pass
        report.bytes += os.path.getsize(src)
        report.files += 1
        return shutil.copy2(src, dst)

    for entry in sorted(root.iterdir()):
        if entry.name in SKIPPED:
            continue
        target_path = destination / entry.name
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.copytree(entry, target_path, copy_function=copy, dirs_exist_ok=True)
            else:
                copy(str(entry), str(target_path))
        except (OSError, shutil.Error) as exc:
            raise CollectionError(f"cannot copy {entry} to {target_path}: {exc}") from exc
