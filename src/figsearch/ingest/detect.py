"""What a file is, from its first bytes (its name only breaks ties between text formats).

Kinds: a registered reader's name (``ep-xml``, ``us-xml``, ``us-xml-old``, ``pdf``);
``image``; ``archive``; ``json`` and ``text`` (sidecars or metadata tables); ``ignore``
(READMEs, licences, hidden files: skipped quietly); ``empty``; ``xml-other`` (XML that is
not a patent document); ``refused`` (a known patent format that is not read, with the
reason); ``unknown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from figsearch.ingest import xmlsafe
from figsearch.ingest.base import readers

HEAD_BYTES = 65536

_IGNORED_NAMES = re.compile(
    r"^(readme|read_me|license|licence|copying|notice|authors|changelog|citation)([._\- ].*)?$|"
    r"^(thumbs\.db|desktop\.ini|\.ds_store)$",
    re.I,
)
_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
    b"GIF87a",
    b"GIF89a",
    b"BM",
)
_TEXT_SUFFIXES = (".txt", ".csv", ".tsv", ".tab", ".text")


@dataclass(frozen=True)
class Kind:
    name: str
    detail: str = ""


def is_archive(head: bytes, path: Path) -> bool:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return True
    if head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ\x00"):
        return True
    return len(head) > 262 and head[257:262] == b"ustar"


def classify(path: Path, head: bytes | None = None) -> Kind:
    name = path.name
    if name.startswith(".") or _IGNORED_NAMES.match(name) or path.suffix.lower() in (".md", ".rst"):
        return Kind("ignore")
    if head is None:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    if not head:
        return Kind("empty")
    for reader_name in readers.names():
        reader = readers.create(reader_name)
        if reader.sniff(head, path):
            return Kind(reader_name)
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return Kind("image")
    if is_archive(head, path):
        return Kind("archive")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if re.match(rb"PATN\r?\n(?:WKU|SRC|APN)", stripped):
        return Kind("refused", "USPTO APS \"Green Book\" text (grants 1976-2001) is not supported; "
                               "use the XML full text (PATDOC/v4) of those grants instead")
    if stripped.startswith(b"<"):
        root = xmlsafe._root_name(head)
        return Kind("xml-other", root or "")
    if stripped[:1] in (b"{", b"[") and path.suffix.lower() in (".json", ""):
        return Kind("json")
    if path.suffix.lower() == ".json":
        return Kind("json")
    if path.suffix.lower() in _TEXT_SUFFIXES and _is_text(head):
        return Kind("text")
    return Kind("unknown")


def _is_text(head: bytes) -> bool:
    if b"\x00" in head[:4096]:
        return False
    try:
        head[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > 4000  # cut in the middle of a multi-byte character
    return True
