"""Archives of bulk data (.zip, .tar, .tar.gz/.tgz/.tar.bz2/.tar.xz, single-file .gz), unpacked safely.

USPTO's weekly drawings come as a tar of per-patent zips, so archives may nest (up to
``MAX_NESTING``). Members are extracted into a scratch folder inside the collection and
read from there under the names ``archive.zip!path/in/archive``. Nothing is written
outside that folder: absolute paths, ``..`` and links are refused (zip-slip), and members
whose expansion ratio or size is implausible are refused before they fill the disk
(zip bombs). Sizes are counted while copying, never trusted from headers.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import lzma
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from figsearch.errors import CorruptInput
from figsearch.records import Failure
from figsearch.store import TMP_DIR

log = logging.getLogger(__name__)

MAX_NESTING = 3
MAX_MEMBERS = 200_000
#: per member: more than this many times its compressed size (and over MIN_RATIO_BYTES) is a bomb
MAX_RATIO = 200
MIN_RATIO_BYTES = 16 << 20
MAX_MEMBER_BYTES = 8 << 30
MAX_TOTAL_BYTES = 64 << 30
#: inside the writer's scratch folder, which the next writer empties if this run is killed
SCRATCH = TMP_DIR


@dataclass
class Extracted:
    root: Path
    failures: list[Failure] = field(default_factory=list)


def extract(path: Path, name: str, stack: contextlib.ExitStack, collection_root: Path) -> Extracted:
    """Unpack ``path`` (shown as ``name``) into a scratch folder removed when ``stack`` closes."""
    scratch_parent = Path(collection_root) / SCRATCH
    scratch_parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="unpack-", dir=scratch_parent))
    # callbacks run last-in first-out: the scratch folder goes after what is in it
    stack.callback(_remove_if_empty, scratch_parent)
    stack.callback(shutil.rmtree, root, True)
    extracted = Extracted(root)
    with open(path, "rb") as handle:
        head = handle.read(512)
    try:
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            _unzip(path, name, root, extracted)
        elif _is_tar(path):
            _untar(path, name, root, extracted)
        elif head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
            _decompress_single(path, name, root, head)
        else:
            raise CorruptInput(f"{name}: not an archive figsearch can open (zip, tar, tar.gz, gz)")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, lzma.LZMAError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise CorruptInput(f"{name}: cannot unpack ({exc.strerror}); is the disk full?") from None
        raise CorruptInput(f"{name}: corrupt or truncated archive ({exc})") from None
    return extracted


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError, EOFError):
        return False


def safe_member_path(member: str) -> PurePosixPath | None:
    """The member's relative path, or None if it could land outside the extraction folder."""
    if not member or "\x00" in member:
        return None
    normalised = member.replace("\\", "/")
    candidate = PurePosixPath(normalised)
    if candidate.is_absolute() or normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return None
    parts = [p for p in candidate.parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


class _Budget:
    def __init__(self, name: str) -> None:
        self.name = name
        self.total = 0
        self.members = 0

    def member(self) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise CorruptInput(f"{self.name}: more than {MAX_MEMBERS} members; refused")

    def copy(self, source, target: Path, member: str, compressed: int | None) -> None:
        """Copy with the size counted as it grows; a member that exceeds its budget is removed."""
        limit = MAX_MEMBER_BYTES
        if compressed:
            limit = min(limit, max(MIN_RATIO_BYTES, compressed * MAX_RATIO))
        written = 0
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while True:
                block = source.read(1 << 20)
                if not block:
                    break
                written += len(block)
                self.total += len(block)
                if written > limit:
                    out.close()
                    target.unlink(missing_ok=True)
                    ratio = f" ({written // max(compressed or 1, 1)}× its compressed size)" if compressed else ""
                    raise _Refused(f"expands beyond {limit >> 20} MiB{ratio}; refused as a possible zip bomb")
                if self.total > MAX_TOTAL_BYTES:
                    out.close()
                    target.unlink(missing_ok=True)
                    raise CorruptInput(f"{self.name}: unpacks to more than {MAX_TOTAL_BYTES >> 30} GiB; refused")
                out.write(block)


class _Refused(Exception):
    pass


def _unzip(path: Path, name: str, root: Path, extracted: Extracted) -> None:
    budget = _Budget(name)
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            budget.member()
            if info.is_dir():
                continue
            label = f"{name}!{info.filename}"
            relative = safe_member_path(info.filename)
            if relative is None:
                extracted.failures.append(Failure(label, "unsafe path in archive (absolute or with '..'); "
                                                         "not extracted (zip-slip guard)"))
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                extracted.failures.append(Failure(label, "symbolic link in archive; not extracted"))
                continue
            if info.flag_bits & 0x1:
                extracted.failures.append(Failure(label, "encrypted archive member; cannot read it"))
                continue
            try:
                with archive.open(info) as source:
                    budget.copy(source, root / relative, info.filename, info.compress_size or None)
            except _Refused as exc:
                extracted.failures.append(Failure(label, str(exc)))
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                (root / relative).unlink(missing_ok=True)
                extracted.failures.append(Failure(label, f"corrupt archive member ({exc})"))


def _untar(path: Path, name: str, root: Path, extracted: Extracted) -> None:
    budget = _Budget(name)
    compressed_size = path.stat().st_size
    with tarfile.open(path, mode="r:*") as archive:
        for member in archive:
            budget.member()
            if member.isdir():
                continue
            label = f"{name}!{member.name}"
            relative = safe_member_path(member.name)
            if relative is None:
                extracted.failures.append(Failure(label, "unsafe path in archive (absolute or with '..'); "
                                                         "not extracted (zip-slip guard)"))
                continue
            if not member.isfile():
                kind = "link" if (member.issym() or member.islnk()) else "special file"
                extracted.failures.append(Failure(label, f"{kind} in archive; not extracted"))
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            try:
                # a tar member has no compressed size of its own: bound it by the whole archive's
                budget.copy(source, root / relative, member.name, compressed_size)
            except _Refused as exc:
                extracted.failures.append(Failure(label, str(exc)))


def _decompress_single(path: Path, name: str, root: Path, head: bytes) -> None:
    opener = gzip.open if head.startswith(b"\x1f\x8b") else bz2.open if head.startswith(b"BZh") else lzma.open
    stem = Path(name.rsplit("!", 1)[-1]).name
    for suffix in (".gz", ".bz2", ".xz"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    budget = _Budget(name)
    with opener(path, "rb") as source:
        try:
            budget.copy(source, root / (stem or "content"), stem, path.stat().st_size)
        except _Refused as exc:
            raise CorruptInput(f"{name}: {exc}") from None
