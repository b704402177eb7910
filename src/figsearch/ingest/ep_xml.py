"""EPO publication XML (``ep-patent-document``, DTD 1.0 to 1.5.1) with its TIFF images.

Drawings are ``<drawings><figure><img file="imgf0001.tif">``; the abstract figure
(``imgaf001.tif``) repeats a drawing and is a front-page image; images inside the text
(``img-content`` math, chem, table, e.g. ``imgb0001.tif`` formulae) are not drawings.
A figure's key is its image file's stem without ``img`` (``f0001``, ``af001``, ``b0001``).

Languages: the root's ``lang`` is the document's; ``description`` and each ``claims`` block
carry their own (a B1 grant prints its claims in English, German and French). Every claims
block is kept as CLAIMS paragraphs with its language; ``Patent.claims`` keeps the one block
of the working language (English if present, else the document's) as before.
"""

from __future__ import annotations

import logging

import re
from collections.abc import Iterator
from pathlib import Path

from figsearch.errors import CorruptInput
from figsearch.ingest import figtext, language as languages, xmlsafe
from figsearch.ingest.base import Reader, Unit, readers, reference, xml_file_references
from figsearch.ingest.numbers import application_number, normalise
from figsearch.records import Classification, Document, FigureRole, Paragraph, Patent, Section, SourceImage

log = logging.getLogger(__name__)

ROOT = "ep-patent-document"
_PARA_TAGS = ("p", "heading")
# text elements that are not prose: left out of paragraph text
_SKIP = ("maths", "chemistry", "tables", "img", "figref-skip")


@readers.register("ep-xml", help="EPO publication XML (ep-patent-document, DTD 1.0-1.5.1) + TIFF images")
class EpXmlReader(Reader):
    name = "ep-xml"
    multi_document = True

    def sniff(self, head: bytes, path: Path) -> bool:
        return xmlsafe._root_name(head) == ROOT

    def referenced_files(self, data: bytes) -> list[str]:
        return [n for n in xml_file_references(data) if not n.lower().endswith((".xml", ".sgm"))]

    def read(self, unit: Unit) -> Iterator[Document]:
        root = xmlsafe.parse(unit.read_bytes(), unit.source)
        if xmlsafe.local(root.tag) != ROOT:
            raise CorruptInput(f"{unit.source}: expected <{ROOT}>, found <{xmlsafe.local(root.tag)}>")
        yield parse_document(root, unit.source, unit.path.parent)


def parse_document(root, source: str, folder: Path) -> Document:
    number = root.get("doc-number") or xmlsafe.first_text(root, ".//B110")
    kind = root.get("kind") or xmlsafe.first_text(root, ".//B130")
    if not number:
        raise CorruptInput(f"{source}: EP document without a publication number (doc-number / B110)")
    pub = normalise(root.get("country") or "EP", number, kind)
    language = (root.get("lang") or "").lower() or None
    patent = Patent(
        publication_number=pub.publication_number,
        office=pub.office,
        number=pub.number,
        kind=pub.kind,
        title=_title(root, language),
        publication_date=xmlsafe.iso_date(root.get("date-publ") or xmlsafe.first_text(root, ".//B140/date")),
        filing_date=xmlsafe.iso_date(xmlsafe.first_text(root, ".//B220/date")),
        application_number=application_number("EP", xmlsafe.first_text(root, ".//B210")),
        language=language,
        classifications=_classifications(root),
        source_path=source,
        source_format="ep-xml",
        lang=language,
    )
    abstract = _pick_language(root.findall("abstract"), language)
    if abstract is not None:
        patent.abstract = " ".join(xmlsafe.text_of(p, _SKIP) for p in abstract.iter("p")) or None
    description = root.find("description")
    if description is not None:
        patent.paragraphs = list(_paragraphs(description, _lang_of(description) or language))
    described = list(patent.paragraphs)
    blocks = root.findall("claims")
    claims = _pick_language(blocks, language)
    if claims is not None:
        patent.claims = [t for t in (xmlsafe.text_of(c, _SKIP) for c in claims.iter("claim")) if t]
    for block in blocks:
        patent.paragraphs.extend(_claim_paragraphs(block, _lang_of(block) or language))
    languages.annotate(patent, language)
    images = _images(root, folder)
    figtext.assign(images, figtext.figure_sentences(described))
    return Document(patent=patent, images=images)


def _lang_of(element) -> str | None:
    return languages.normalise_code(element.get("lang"))


def _claim_paragraphs(block, lang: str | None) -> Iterator[Paragraph]:
    for claim in block.iter("claim"):
        text = xmlsafe.text_of(claim, _SKIP)
        if text:
            yield Paragraph(text=text, number=(claim.get("num") or "").strip() or None, section=Section.CLAIMS,
                            lang=lang)


def _title(root, language: str | None) -> str | None:
    b540 = root.find(".//B540")
    if b540 is None:
        return None
    titles: dict[str, str] = {}
    current = None
    for child in b540:
        if child.tag == "B541":
            current = (child.text or "").strip().lower()
        elif child.tag == "B542":
            titles.setdefault(current or "", xmlsafe.text_of(child))
    for lang in ("en", language or "", ""):
        if titles.get(lang):
            return titles[lang]
    return next(iter(titles.values()), None)


def _pick_language(elements: list, language: str | None):
    """English if present (the collection's working language), else the document's, else the first."""
    if not elements:
        return None
    for lang in ("en", language):
        for element in elements:
            if (element.get("lang") or "").lower() == lang:
                return element
    return elements[0]


def _classifications(root) -> list[Classification]:
    out: list[Classification] = []
    for element in root.iterfind(".//classification-ipcr/text"):
        code = _ipc_code(element.text)
        if code:
            out.append(Classification("IPC", code))
    for element in root.iterfind(".//classification-cpc/text"):
        code = _ipc_code(element.text)
        if code:
            out.append(Classification("CPC", code))
    # DTD 1.0 documents of older applications: B511 main and B512 further IPC symbols
    for tag in ("B511", "B512"):
        for element in root.iterfind(f".//B510/{tag}"):
            code = _ipc_code(xmlsafe.text_of(element))
            if code:
                out.append(Classification("IPC", code))
    return list(dict.fromkeys(out))


_IPC = re.compile(r"^\s*([A-H]\d\d[A-Z])\s*0*(\d+)\s*/\s*(\d+)")


def _ipc_code(text: str | None) -> str | None:
    """``H04N   1/40        20060101AFI...`` -> ``H04N 1/40``."""
    match = _IPC.match(text or "")
    if not match:
        return None
    return f"{match.group(1)} {match.group(2)}/{match.group(3)}"


def _paragraphs(description, lang: str | None) -> Iterator[Paragraph]:
    heading = None
    for element in description.iter("heading", "p"):
        if element.tag == "heading":
            heading = xmlsafe.text_of(element) or heading
            continue
        if any(a.tag == "p" for a in element.iterancestors()):
            continue  # a <p> inside a <p> (lists) is read with its parent
        text = xmlsafe.text_of(element, _SKIP)
        if text:
            yield Paragraph(text=_spread_list(element) or text, number=element.get("num") or None,
                            section=Section.DESCRIPTION, heading=heading, lang=lang)


def _spread_list(element) -> str | None:
    """A paragraph that is a list (``<ul><li>FIG. 1 is ...;</li>``) keeps one item per line."""
    items = [xmlsafe.text_of(li, _SKIP) for li in element.iter("li")]
    if not items:
        return None
    lead = xmlsafe.clean(element.text)
    return "\n".join(([lead] if lead else []) + [i for i in items if i])


def _images(root, folder: Path) -> list[SourceImage]:
    images: list[SourceImage] = []
    seen: set[str] = set()
    drawings = root.find("drawings")
    for img in root.iter("img"):
        name = (img.get("file") or "").strip()
        if not name or name in seen:
            continue
        seen.add(name)
        key = re.sub(r"^img", "", Path(name).stem, flags=re.I) or Path(name).stem
        figure = img.getparent()
        in_drawings = drawings is not None and any(a is drawings for a in img.iterancestors())
        in_abstract = any(a.tag == "abstract" for a in img.iterancestors())
        content = (img.get("img-content") or "").lower()
        if in_abstract or key.lower().startswith("af"):
            role = FigureRole.FRONT_PAGE
        elif in_drawings and content in ("", "drawing"):
            role = FigureRole.DRAWING
        else:
            role = FigureRole.NON_DRAWING
        label = None
        if role == FigureRole.DRAWING and figure is not None and figure.tag == "figure":
            num = (figure.get("num") or "").strip()
            if num:
                label = f"FIG. {num.lstrip('0') or num}"
        path = reference(folder, name)
        if path is None:
            log.warning("%s: drawing reference %r leaves the document's folder; ignored", folder, name)
            continue
        images.append(SourceImage(key=key, path=path, role=role, label=label))
    return images
