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


def as_utf8(data: bytes) -> bytes:
    """UTF-16/32 text (by its byte-order mark) as UTF-8, for sniffing and regex scans; else unchanged."""
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                       (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
                       # no byte-order mark: the XML spec (appendix F) tells UTF-16 by how "<?" is spelt
                       (b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be")):
        if data.startswith(bom):
            skip = 0 if codec.endswith(("-le", "-be")) else len(bom)
            usable = len(data) - (len(data) - skip) % (4 if codec == "utf-32" else 2)
            return data[:usable].decode(codec, errors="ignore").encode("utf-8")
    return data


def _root_name(data: bytes) -> str | None:
    """The root element's name when ``data`` starts as an XML document does, else None.

    Only a prolog (declaration, comments, doctype, processing instructions) may come
    first, so XML text stored inside another file (an uncompressed zip) is not mistaken
    for a document.
    """
    body = as_utf8(bytes(data[:65536])).removeprefix(b"\xef\xbb\xbf")
    position = 0
    while True:
        while position < len(body) and body[position:position + 1] in b" \t\r\n":
            position += 1
        rest = body[position:]
        if rest.startswith(b"<?"):
            end = rest.find(b"?>")
            skip = end + 2
        elif rest.startswith(b"<!--"):
            end = rest.find(b"-->")
            skip = end + 3
        elif rest[:9].upper() == b"<!DOCTYPE":
            match = re.match(rb"<!DOCTYPE[^\[>]*(?:\[.*?\]\s*)?>", rest, re.S)
            end = match.end() if match else -1
            skip = end
        else:
            match = _ROOT_TAG.match(rest)
            return match.group(1).decode("ascii", "replace") if match else None
        if end < 0:
            return None
        position += skip


def _refuse_entity_declarations(data: bytes, source: str) -> None:
    """Internal-subset entities other than unparsed image references (NDATA) are refused.

    lxml would not expand them (resolve_entities=False), but a document that declares
    text entities is either an attack (billion laughs, XXE) or not a patent publication.
    """
    match = _DOCTYPE_ENTITY.search(as_utf8(data[:1 << 20]))
    if not match:
        return
    for decl in re.findall(rb"<!ENTITY[^>]*>", match.group("subset")):
        if b"NDATA" not in decl:
            raise CorruptInput(
                f"{source}: XML declares entities in its DOCTYPE ({decl[:60].decode('utf-8', 'replace')}...); "
                "refused (patent XML never needs them; this is how entity-expansion and XXE attacks work)"
            )


#: libxml2 errors that leave the rest of a complete document intact: an unescaped "&" or "<" in a
#: name, an attribute without a value, an undeclared entity, a stray invalid byte
RECOVERABLE = frozenset({
    "ERR_NAME_REQUIRED", "ERR_ATTRIBUTE_WITHOUT_VALUE", "ERR_SPACE_REQUIRED", "ERR_GT_REQUIRED",
    "ERR_UNDECLARED_ENTITY", "ERR_ENTITYREF_SEMICOL_MISSING", "ERR_INVALID_CHAR", "ERR_LT_IN_ATTRIBUTE",
    "WAR_UNDECLARED_ENTITY",
})


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
        if "excessive depth" in first_error.lower():
            raise CorruptInput(f"{source}: XML nested more than 256 levels deep; refused") from None
        wrong_encoding = "encoding" in first_error.lower() or "utf-8" in first_error.lower()
    if wrong_encoding:
        # declared (or defaulted to) UTF-8 but written in a legacy 8-bit encoding
        recoded = _as_cp1252(data)
        if recoded is not None:
            try:
                root = etree.fromstring(recoded, _parser())
            except etree.XMLSyntaxError:
                root = None
            if root is not None:
                log.warning("%s: not valid UTF-8; read as Windows-1252 (%s)", source, first_error)
                return root
    # "Kador & Partner": a bare ampersand in a name is by far the commonest fault in EPO files
    escaped = _BARE_AMP.sub(b"&amp;", data)
    if escaped != data:
        try:
            root = etree.fromstring(escaped, _parser())
            log.warning("%s: unescaped '&' read as text (%s)", source, first_error)
            return root
        except etree.XMLSyntaxError:
            data = escaped
    root_name = _root_name(data)
    if root_name and re.search(rb"</" + re.escape(root_name.encode()) + rb">\s*$", data.rstrip()[-200:]):
        parser = _parser(recover=True)
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError:
            root = None
        kinds = {entry.type_name for entry in parser.error_log}
        if root is not None and root.tag == root_name and kinds <= RECOVERABLE:
            log.warning("%s: malformed XML read in recovery mode (%s)", source, first_error)
            return root
    raise CorruptInput(f"{source}: malformed XML: {first_error}")


_BARE_AMP = re.compile(rb"&(?!#\d+;|#x[0-9a-fA-F]+;|[A-Za-z_][\w.\-]*;)")


def _as_cp1252(data: bytes) -> bytes | None:
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    text = re.sub(r"^(\s*<\?xml[^>]*?encoding\s*=\s*)([\"'])[^\"']*\2", r"\1\2UTF-8\2", text, count=1)
    return text.encode("utf-8")


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
