"""The read side of the indexes: a snapshot of what the last index run wrote, opened read-only.

A snapshot is the manifest as it was at one moment with every modality's index it names, opened
together and never changed afterwards, so one search sees one index run's output and never half
of two. ``token`` identifies the manifest file (it is replaced by a rename, so a new one has a
new inode and mtime); a reader compares it with the file now to see that a newer snapshot exists.

Nothing here builds, trains, calibrates or writes: an index that is missing or behind the stored
vectors is reported as such (``Freshness``) for the search to say so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from figsearch.errors import CollectionError
from figsearch.index.files import MANIFEST, read_manifest
from figsearch.index.modality import ModalityIndex

log = logging.getLogger(__name__)

#: how often a snapshot is reopened when a writer replaced files between the manifest and them
_OPEN_TRIES = 5


def manifest_token(directory: Path) -> tuple | None:
    """(inode, mtime, size) of the manifest, or None when there is none."""
    try:
        st = os.stat(directory / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class IndexSnapshot:
    directory: Path
    token: tuple | None
    indexes: dict[str, ModalityIndex] = field(default_factory=dict)
    #: modality -> why its index named in the manifest could not be opened
    broken: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, directory: Path) -> IndexSnapshot:
        """Open every index the manifest names. A writer may replace the manifest and remove the
        files of the one read meanwhile: then the new manifest is read and opened instead."""
        for attempt in range(_OPEN_TRIES):
            token = manifest_token(directory)
            manifest = read_manifest(directory)
            indexes, broken = {}, {}
            for modality, entry in manifest["modalities"].items():
                try:
                    indexes[modality] = ModalityIndex.open(directory, modality, entry)
                except (OSError, RuntimeError, CollectionError, KeyError, ValueError) as exc:
                    broken[modality] = str(exc) or type(exc).__name__
            if not broken or manifest_token(directory) == token:
                return cls(directory, token, indexes, broken)
            log.info("the index manifest in %s changed while it was opened; opening the new one (%d)", directory,
                     attempt + 1)
        for modality, reason in broken.items():
            log.warning("the %s index in %s cannot be opened: %s", modality, directory, reason)
        return cls(directory, token, indexes, broken)

    def is_current(self) -> bool:
        """Whether the manifest on disk is still the one this snapshot was opened from."""
        return manifest_token(self.directory) == self.token


@dataclass(frozen=True)
class Freshness:
    """How an index compares with the stored vectors of its encoder."""

    #: figures with no vector in the index: embedded (or, for drawings, ingested) since it was built
    missing: int = 0
    #: indexed vectors replaced or deleted since the build (the index still finds them by the old ones)
    changed: int = 0

    @property
    def stale(self) -> bool:
        return self.missing > 0 or self.changed > 0
