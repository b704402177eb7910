"""Planning an ingest: walk the inputs and group files into units (one per document).

Each folder is looked at as a whole, because what a file means depends on its neighbours:
an XML document claims the drawings it names; images left over form patents by their
folder's or their own names; a JSON or TXT file beside an image is its sidecar; a table of
publication numbers is metadata for the folder and below. What fits none of these is
reported as a failure ("not a patent document"), except READMEs and licences.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from figsearch.errors import InputError
from figsearch.ingest import xmlsafe
from figsearch.ingest.base import Unit, is_file, readers
from figsearch.ingest.detect import HEAD_BYTES, Kind, classify
from figsearch.ingest.metadata import MAX_METADATA_BYTES, MetaRecord, load_json, read_json_metadata, read_table
from figsearch.ingest.numbers import from_file_stem
from figsearch.records import Failure

log = logging.getLogger(__name__)

_XML_READERS = ("ep-xml", "us-xml", "us-xml-old")
PATENT_ROOTS = "ep-patent-document, us-patent-grant, us-patent-application, PATDOC, patent-application-publication"


@dataclass
class Plan:
    units: list[Unit] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    metadata_files: list[str] = field(default_factory=list)
    #: archives found, to be expanded by the runner: (real path, logical name)
    archives: list[tuple[Path, str]] = field(default_factory=list)
    #: images not referenced by any document (reported, not ingested)
    orphans: list[str] = field(default_factory=list)


class Namer:
    """Maps real paths to the names users see: the path itself, ``archive.zip!member``, or a URL."""

    def __init__(self, real_root: Path | None = None, logical_root: str | None = None, separator: str = "!") -> None:
        self.real_root = real_root
        self.logical_root = logical_root
        self.separator = separator

    def __call__(self, path: Path) -> str:
        if self.real_root is None:
            name = os.path.abspath(path)
        else:
            name = f"{self.logical_root}{self.separator}{path.relative_to(self.real_root).as_posix()}"
        # file names that are not UTF-8 reach us with surrogate escapes; SQLite wants real text
        return _text(name)


def plan_paths(paths: list[Path], namer: Namer | None = None, exclude: Path | None = None) -> Plan:
    """Units for ``paths``; ``exclude`` (the collection being written) is never walked into."""
    plan = Plan()
    namer = namer or Namer()
    excluded = exclude.resolve() if exclude is not None else None
    for path in paths:
        if excluded is not None and path.resolve().is_relative_to(excluded):
            log.warning("%s is inside the collection being written; not ingested", path)
            continue
        if path.is_dir():
            _walk(path, plan, namer, excluded)
        elif path.is_file():
            _plan_directory(path.parent, [path], [], plan, namer, {}, standalone=True)
        else:
            plan.failures.append(Failure(namer(path), _not_regular(path)))
    return plan


def _text(name: str) -> str:
    """A file name as storable text: bytes that are not UTF-8 become U+FFFD (SQLite refuses surrogates)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _not_regular(path: Path) -> str:
    if not path.exists():
        return "no such file or directory" + (" (a broken symbolic link)" if path.is_symlink() else "")
    return "not a regular file (a named pipe, device or socket); not read"


def _walk(root: Path, plan: Plan, namer: Namer, excluded: Path | None = None) -> None:
    scopes: dict[Path, dict[str, MetaRecord]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        folder = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and (excluded is None or (folder / d).resolve() != excluded)
        )
        inherited = scopes.get(folder.parent, {}) if folder != root else {}
        files = [folder / f for f in sorted(filenames)]
        scopes[folder] = _plan_directory(folder, files, dirnames, plan, namer, inherited)


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


def _plan_directory(folder: Path, files: list[Path], subdirs: list[str], plan: Plan, namer: Namer,
                    inherited: dict[str, MetaRecord], standalone: bool = False) -> dict[str, MetaRecord]:
    kinds: dict[Path, Kind] = {}
    for path in files:
        # linked files are read like files (the user chose them); linked folders are not walked
        if not path.is_file():
            # a named pipe would block the run forever, a device never ends: only regular files are read
            plan.failures.append(Failure(namer(path), _not_regular(path)))
            continue
        try:
            kinds[path] = classify(path)
        except OSError as exc:
            plan.failures.append(Failure(namer(path), f"cannot read: {exc.strerror or exc}"))
    scope = dict(inherited)
    claimed: set[Path] = set()
    # 1. documents (XML, PDF) and the drawings they claim
    for path, kind in kinds.items():
        if kind.name in _XML_READERS:
            claimed.add(path)
            _plan_xml(path, kind.name, plan, namer, claimed)
        elif kind.name in readers and kind.name != "image-folder":
            claimed.add(path)
            plan.units.append(Unit(source=namer(path), reader=kind.name, path=path, files=[path],
                                   options={"namer": namer}))
    # 2. metadata tables and JSON record files
    for path, kind in kinds.items():
        if kind.name in ("text", "json") and path not in claimed and not _is_sidecar(path, kinds):
            records = _metadata(path, kind, plan, namer)
            if records is not None:
                claimed.add(path)
                if records or namer(path) not in {f.source for f in plan.failures}:
                    plan.metadata_files.append(namer(path))
                for pub, record in records.items():
                    scope.setdefault(pub, MetaRecord()).merge(record)
    # 3. images not claimed by a document, grouped by patent
    images = [p for p, k in kinds.items() if k.name == "image" and p not in claimed]
    has_documents = any(kinds.get(p, Kind("")).name in readers for p in claimed)
    if images and has_documents:
        for path in images:
            plan.orphans.append(namer(path))
            claimed.add(path)
        images = []
    _plan_images(folder, images, kinds, claimed, scope, plan, namer, standalone)
    # 4. everything else
    for path, kind in kinds.items():
        if path in claimed:
            continue
        source = namer(path)
        if kind.name == "ignore":
            plan.ignored.append(source)
        elif kind.name == "archive":
            plan.archives.append((path, source))
        elif kind.name == "empty":
            plan.failures.append(Failure(source, "empty file (0 bytes)"))
        elif kind.name == "xml-other":
            plan.failures.append(Failure(source, f"not a patent document: XML root <{kind.detail or '?'}> "
                                                 f"(expected one of {PATENT_ROOTS})"))
        elif kind.name == "refused":
            plan.failures.append(Failure(source, kind.detail))
        elif kind.name == "image":
            pass  # reported by _plan_images
        else:
            what = {"json": "JSON without patent fields", "text": "text file that is neither a sidecar nor a "
                    "metadata table"}.get(kind.name, "unrecognised content")
            plan.failures.append(Failure(source, f"not a patent document ({what})"))
    return scope


def _plan_xml(path: Path, reader_name: str, plan: Plan, namer: Namer, claimed: set[Path]) -> None:
    """One unit per document: a weekly bulk file becomes one unit per ``<?xml`` document in it."""
    with open(path, "rb") as handle, contextlib.ExitStack() as stack:
        try:
            data = stack.enter_context(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
        except ValueError:  # an empty file cannot be mapped (classify reported it already)
            return
        ranges = xmlsafe.document_ranges(data)
        multi = len(ranges) > 1
        for index, (start, end) in enumerate(ranges):
            head = data[start:min(end, start + HEAD_BYTES)]
            name = _xml_reader(head) or reader_name
            files = [path]
            for ref in readers.create(name).referenced_files(data[start:end]):
                if "/" in ref or "\\" in ref or ref.startswith("."):
                    continue  # a drawing reference never leaves the document's folder
                image = path.parent / ref
                claimed.add(image)
                if is_file(image):
                    files.append(image)
            plan.units.append(Unit(
                source=f"{namer(path)}#{index + 1}" if multi else namer(path),
                reader=name,
                path=path,
                files=files,
                byte_range=(start, end) if multi else None,
                options={"namer": namer},
            ))


def _xml_reader(head: bytes) -> str | None:
    for name in _XML_READERS:
        if readers.create(name).sniff(head, Path("document.xml")):
            return name
    return None


def _is_sidecar(path: Path, kinds: dict[Path, Kind]) -> bool:
    stem = path.stem
    return any(k.name == "image" and p.stem == stem for p, k in kinds.items())


def _metadata(path: Path, kind: Kind, plan: Plan, namer: Namer) -> dict[str, MetaRecord] | None:
    if path.stat().st_size > MAX_METADATA_BYTES:
        return None
    data = path.read_bytes()
    try:
        if kind.name == "json":
            return read_json_metadata(load_json(data, namer(path)), namer(path))
        return read_table(path, data)
    except InputError as exc:
        plan.failures.append(Failure(namer(path), str(exc)))
        return {}  # claimed (reported once, as malformed), contributes nothing


_USPTO_SHEET = re.compile(r"-(D\d{5})$", re.I)


def _plan_images(folder: Path, images: list[Path], kinds: dict[Path, Kind], claimed: set[Path],
                 scope: dict[str, MetaRecord], plan: Plan, namer: Namer, standalone: bool) -> None:
    if not images:
        return
    folder_number = None if standalone else from_file_stem(folder.name)
    groups: dict[str, list[tuple[str, Path]]] = {}
    for path in images:
        claimed.add(path)
        named = from_file_stem(path.stem)
        if named:
            pub, key = named[0].publication_number, named[1] or _text(path.stem)
        elif folder_number:
            pub, key = folder_number[0].publication_number, _text(path.stem)
        else:
            pub, key = _number_from_sidecar(path, kinds), _text(path.stem)
            if pub is None:
                plan.failures.append(Failure(namer(path), "image without a patent number: none in its file name, "
                                                          "its folder's name or a sidecar JSON"))
                continue
        groups.setdefault(pub, []).append((key, path))
    text_files = [p for p, k in kinds.items() if k.name in ("json", "text") and p not in claimed]
    for pub, members in groups.items():
        stems = {p.stem: key for key, p in members}
        sidecars = {stems[p.stem]: str(p) for p in text_files if p.stem in stems}
        for p in text_files:
            if p.stem in stems:
                claimed.add(p)
        folder_sidecars = []
        if folder_number and folder_number[0].publication_number == pub:
            folder_sidecars = [str(p) for p in text_files if p.stem not in stems and p not in claimed]
            claimed.update(Path(p) for p in folder_sidecars)
        by_folder = bool(folder_number and folder_number[0].publication_number == pub)
        source = namer(folder) if by_folder else (namer(members[0][1]) if len(members) == 1 else
                                                  f"{namer(folder)}#{pub}")
        keys = [k for k, _ in members]
        if len(set(keys)) != len(keys):
            plan.failures.append(Failure(source, f"two images of {pub} have the same key; renamed files?"))
            continue
        files = [p for _, p in members] + [Path(p) for p in sidecars.values()] + [Path(p) for p in folder_sidecars]
        plan.units.append(Unit(
            source=source,
            reader="image-folder",
            path=folder,
            files=files,
            options={
                "publication": pub,
                "images": [(k, str(p)) for k, p in sorted(members, key=lambda m: _natural(m[0]))],
                "sidecars": sidecars,
                "folder_sidecars": folder_sidecars,
                "metadata": scope.get(pub),
                "namer": namer,
            },
        ))


def _number_from_sidecar(path: Path, kinds: dict[Path, Kind]) -> str | None:
    for candidate in (path.with_suffix(".json"), path.with_suffix(".JSON")):
        if candidate in kinds:
            from figsearch.ingest.metadata import read_sidecar

            try:
                record = read_sidecar(candidate)
            except InputError:
                return None
            return record.publication
    return None


def _natural(key: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", key)]
