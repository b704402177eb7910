"""The ingest interface: a reader per source format, registered by name.

A reader answers two questions: does this file look like mine (``sniff``, from its first
bytes, never from its extension alone), and what documents does a unit hold (``read``).
A *unit* is what the runner plans, skips when unchanged and reports on: one XML file with
its drawing files, one document of a concatenated bulk file, one PDF, or a group of images
that belong to one patent.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from figsearch.records import Document, Failure
from figsearch.registry import Registry


@dataclass
class Unit:
    #: the name it is known by in the sources table and in messages (a path, ``zip!member``, ``file#3``)
    source: str
    reader: str
    #: the main file (or folder) of the unit
    path: Path
    #: every file whose bytes decide the result, for skip-unchanged
    files: list[Path] = field(default_factory=list)
    #: (start, end) byte offsets of one document inside a concatenated bulk file
    byte_range: tuple[int, int] | None = None
    #: reader-specific plan (the images of a folder group, its metadata, ...)
    options: dict = field(default_factory=dict)

    def read_bytes(self) -> bytes:
        if self.byte_range is None:
            return self.path.read_bytes()
        start, end = self.byte_range
        with open(self.path, "rb") as handle:
            handle.seek(start)
            return handle.read(end - start)


class Reader(ABC):
    """One source format. ``read`` yields Documents, or Failures for documents it cannot read."""

    name: ClassVar[str]
    #: whether a file of this format may concatenate many documents (weekly bulk files)
    multi_document: ClassVar[bool] = False

    def sniff(self, head: bytes, path: Path) -> bool:
        """Whether the file starting with ``head`` (its first 64 KiB) is in this format."""
        return False

    @abstractmethod
    def read(self, unit: Unit) -> Iterator[Document | Failure]:
        """The documents of ``unit``; raise a FigsearchError for a unit that cannot be read at all."""

    def referenced_files(self, data: bytes) -> list[str]:
        """Names of the files (drawings) a document refers to, found without parsing it."""
        return []


readers: Registry[Reader] = Registry("ingest reader")

_FILE_ATTR = re.compile(rb"""\bfile\s*=\s*["']([^"'<>]{1,255})["']""", re.I)
_NDATA = re.compile(rb"""<!ENTITY\s+\S+\s+SYSTEM\s+["']([^"'<>]{1,255})["']\s+NDATA""")


def xml_file_references(data: bytes) -> list[str]:
    """``file="imgf0001.tif"`` attributes and NDATA entities: the drawings an XML document uses."""
    from figsearch.ingest.xmlsafe import as_utf8

    data = as_utf8(bytes(data))
    names: list[str] = []
    for regex in (_FILE_ATTR, _NDATA):
        for match in regex.finditer(data):
            name = match.group(1).decode("utf-8", "replace").strip()
            if name and name not in names:
                names.append(name)
    return names


def reference(folder: Path, name: str) -> Path | None:
    """The drawing file ``name`` next to its document, or None when the name would leave that folder.

    Names come from the document itself (``file="../../etc/passwd"`` is an attack, not a drawing).
    """
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        return None
    return folder / name


def is_file(path: Path) -> bool:
    """``path.is_file()`` that says no instead of raising for names no file can have.

    A document may name a drawing longer than the file system allows (ENAMETOOLONG), which
    pathlib raises rather than answers (found by fuzzing: it stopped a whole run).
    """
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def reader_for(name: str) -> Reader:
    return readers.create(name)
