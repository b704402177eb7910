"""Safe XML parsing and small helpers shared by the patent XML readers.

Patent XML comes from strangers: the parser never resolves entities (XXE cannot read
local files), never loads a DTD or touches the network, and refuses huge trees and
deep entity expansion (billion laughs). Real EPO files sometimes hold an unescaped
``&`` or ``<`` in a name; such a file is re-read in recovery mode, but only when it is
complete (ends with its root's closing tag), so a truncated file is still refused.
"""

from __future__ import annotations

import logging
import re

from figsearch.errors import CorruptInput

log = logging.getLogger(__name__)

_DECL = re.compile(rb"^\s*(?:\xef\xbb\xbf)?<\?xml[^>]*\?>", re.S)
_ROOT_TAG = re.compile(rb"<([A-Za-z][\w.\-]*)[\s>/]")
_DOCTYPE_ENTITY = re.compile(rb"<!DOCTYPE[^\[>]*\[(?P<subset>.*?)\]\s*>", re.S)


def _parser(recover: bool = False):
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=False,
        recover=recover,
    )


def _root_name(data: bytes) -> str | None:
    body = _DECL.sub(b"", data[:8192], count=1)
    # skip comments, the doctype and processing instructions before the root element
    body = re.sub(rb"<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>|<\?.*?\?>", b"", body, flags=re.S)
    match = _ROOT_TAG.search(body)
    return match.group(1).decode("ascii", "replace") if match else None


def _refuse_entity_declarations(data: bytes, source: str) -> None:
    """Internal-subset entities other than unparsed image references (NDATA) are refused.

    lxml would not expand them (resolve_entities=False), but a document that declares
    text entities is either an attack (billion laughs, XXE) or not a patent publication.
    """
    match = _DOCTYPE_ENTITY.search(data[:1 << 20])
    if not match:
        return
    for decl in re.findall(rb"<!ENTITY[^>]*>", match.group("subset")):
        if b"NDATA" not in decl:
            raise CorruptInput(
                f"{source}: XML declares entities in its DOCTYPE ({decl[:60].decode('utf-8', 'replace')}...); "
                "refused (patent XML never needs them; this is how entity-expansion and XXE attacks work)"
            )


def parse(data: bytes, source: str):
    """Parse one XML document safely; returns the root element or raises CorruptInput."""
    from lxml import etree

    if not data.strip():
        raise CorruptInput(f"{source}: empty XML document")
    _refuse_entity_declarations(data, source)
    try:
        return etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        first_error = str(exc)
    root_name = _root_name(data)
    tail = data.rstrip()[-200:]
    if root_name and re.search(rb"</" + re.escape(root_name.encode()) + rb">\s*$", tail):
        try:
            root = etree.fromstring(data, _parser(recover=True))
        except etree.XMLSyntaxError:
            root = None
        if root is not None and root.tag == root_name:
            log.warning("%s: malformed XML read in recovery mode (%s)", source, first_error)
            return root
    raise CorruptInput(f"{source}: malformed XML: {first_error}")


def document_ranges(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the documents in a weekly bulk file (many ``<?xml ...?>`` documents glued together)."""
    starts = [m.start() for m in re.finditer(rb"<\?xml[\s?]", data)]
    if len(starts) <= 1:
        return [(0, len(data))]
    if data[: starts[0]].strip():
        starts.insert(0, 0)
    return list(zip(starts, starts[1:] + [len(data)]))


# -- text helpers -----------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def clean(text: str | None) -> str:
    return _SPACE.sub(" ", text or "").strip()


def text_of(element, skip: tuple[str, ...] = ()) -> str:
    """All text inside ``element`` as one line; sub-elements named in ``skip`` are left out."""
    if element is None:
        return ""
    if not skip:
        return clean("".join(element.itertext()))
    parts: list[str] = []

    def walk(el) -> None:
        if isinstance(el.tag, str) and local(el.tag) in skip:
            if el.tail:
                parts.append(el.tail)
            return
        if el.text and isinstance(el.tag, str):
            parts.append(el.text)
        for child in el:
            walk(child)
        if el.tail and el is not element:
            parts.append(el.tail)

    walk(element)
    return clean("".join(parts))


def local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def first_text(element, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path)
    value = text_of(found) if found is not None else ""
    return value or None


def iso_date(value: str | None) -> str | None:
    """``20210209`` -> ``2021-02-09``; partial dates (``20000400``) keep what is known."""
    digits = re.sub(r"\D", "", value or "")
    if len(digits) != 8:
        return None
    year, month, day = digits[:4], digits[4:6], digits[6:]
    if month == "00":
        return year
    if day == "00":
        return f"{year}-{month}"
    return f"{year}-{month}-{day}"
