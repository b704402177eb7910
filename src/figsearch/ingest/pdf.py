"""Patent PDFs (front page + drawing sheets, with or without a text layer), via pypdfium2.

The patent number comes from, in order: the file name (``103-USD528368.pdf``), the PDF's
title metadata (USPTO's ``US0000D0906013S120201229``), the front page's text layer
("Patent No.: US D528,368 S") and, when the ``ocr`` extra is installed and nothing else
worked, OCR of the front page's header. Page 1 is the front page (``FRONT_PAGE``); later
pages are drawing sheets, except pages whose text layer is plain prose without the
"Sheet n of m" header of a drawing sheet, which are text and not rendered.
Figure keys are ``p001``, ``p002``, ...
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from figsearch import imaging
from figsearch.errors import CorruptInput, MissingDependency
from figsearch.extras import require
from figsearch.ingest import figtext, inid, language
from figsearch.ingest.base import Reader, Unit, readers
from figsearch.ingest.numbers import PubNumber, find_in_text, from_file_stem, normalise
from figsearch.records import Document, FigureRole, Paragraph, Patent, Section, SourceImage

log = logging.getLogger(__name__)

MAX_PAGES = 2000
# the header of a drawing sheet, also as OCR text layers garble it ("Sheet S of 6", "Sheet Sheet 6 6 of of 8 8")
_SHEET = re.compile(r"\bSheet\b.{0,24}?\bof\b|^\s*U\s*\.\s*S\s*\.\s*Patent\b", re.I | re.S)
_USPTO_TITLE = re.compile(r"US0*(D\d{6,7}|PP\d+|RE\d+|\d{7,8})([A-Z]\d?)(\d{8})?")
_PATENT_NO = re.compile(r"Patent\s*No\s*\.?\s*:?\s*(US\s*[A-Z]{0,2}\s*[\d,\s]{6,12}\s*[A-Z]\d?)", re.I)
_PUB_NO = re.compile(r"Pub\s*\.?\s*No\s*\.?\s*:?\s*(US\s*\d{4}\s*/\s*\d{7}\s*A\d)", re.I)
_DATE = re.compile(r"Date of Patent.{0,80}?\b([A-Z][a-z]{2})[a-z]*\s*\.?\s*(\d{1,2})\s*,\s*(\d{4})", re.S)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_TITLE = re.compile(r"\(\s*54\s*\)\s*([^\r\n]+)")
# a design's claim names the article: "The ornamental design for a toy scale, as shown and described."
_DESIGN_CLAIM = re.compile(r"ornamental design for (?:an?\s+|the\s+)?(.+?)\s*,?\s*as shown", re.I | re.S)
_TESSDATA = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata", "/usr/share/tessdata")


@readers.register("pdf", help="patent PDFs: front page + drawing sheets (pypdfium2), text layer when present")
class PdfReader(Reader):
    name = "pdf"

    def sniff(self, head: bytes, path: Path) -> bool:
        return head[:1024].lstrip().startswith(b"%PDF")

    def read(self, unit: Unit) -> Iterator[Document]:
        pdfium = require("pypdfium2", "reading patent PDFs")
        # pdfium is not thread-safe: the whole document (open, text, rendering, close) under the one lock
        with imaging.PDFIUM_LOCK:
            try:
                pdf = pdfium.PdfDocument(str(unit.path))
            except pdfium.PdfiumError as exc:
                raise CorruptInput(f"{unit.source}: {_open_error(unit.path, exc)}") from None
            try:
                document = self._document(pdf, unit)
            except pdfium.PdfiumError as exc:
                # a page that opens in no viewer either (found by fuzzing: "Failed to load page.")
                raise CorruptInput(f"{unit.source}: damaged PDF ({exc})") from None
            finally:
                pdf.close()
        yield document

    def _document(self, pdf, unit: Unit) -> Document:
        pages = len(pdf)
        if pages == 0:
            raise CorruptInput(f"{unit.source}: PDF has no pages")
        if pages > MAX_PAGES:
            raise CorruptInput(f"{unit.source}: PDF has {pages} pages; refused (limit {MAX_PAGES})")
        texts = [_page_text(pdf, i) for i in range(pages)]
        front = texts[0]
        # the front page's columns one after the other: its sentences, its title and the claim that names the article
        front_read = _page_text(pdf, 0, columns=True) if front.strip() else front
        pub = self._number(pdf, unit, front)
        patent = Patent(
            publication_number=pub.publication_number,
            office=pub.office,
            number=pub.number,
            kind=pub.kind,
            title=_title(front_read),
            publication_date=_date(front) or _metadata_date(pdf),
            language="en",
            source_path=unit.source,
            source_format="pdf",
        )
        images: list[SourceImage] = []
        # USPTO prints "Sheet n of m" on every drawing sheet: where the text layer has it, pages
        # without it are prose (continued references, description, claims)
        marked = any(_SHEET.search(text) for text in texts[1:])
        for index, text in enumerate(texts):
            is_prose = (not _SHEET.search(text) and len(text.strip()) > 50) if marked else len(text.strip()) > 400
            if index and is_prose:
                if text.strip():
                    # a page of references continued from the front page: its "(56) References Cited" is no sign
                    page_text = inid.strip_codes(_page_text(pdf, index, columns=True))
                    patent.paragraphs.append(Paragraph(text=_clean(page_text),
                                                       section=Section.DESCRIPTION, heading=f"PDF page {index + 1}"))
                continue
            if index == 0 and text.strip():
                # without its INID codes ("(10) Patent No."), which linking would read as reference signs
                patent.paragraphs.append(Paragraph(text=_clean(inid.strip_codes(front_read, front_page=True)),
                                                   section=Section.DESCRIPTION,
                                                   heading="FRONT PAGE"))
            role = FigureRole.FRONT_PAGE if index == 0 else FigureRole.DRAWING
            images.append(SourceImage(key=f"p{index + 1:03d}", page=index + 1, role=role,
                                      image=imaging.render_pdf_page(pdf, index, unit.source)))
        language.annotate(patent)  # a PDF does not say its language: its text decides
        figtext.assign(images, figtext.figure_sentences(patent.paragraphs))
        return Document(patent=patent, images=images)

    def _number(self, pdf, unit: Unit, front_text: str) -> PubNumber:
        named = from_file_stem(Path(unit.source).stem)
        if named:
            return named[0]
        title = (pdf.get_metadata_dict().get("Title") or "").strip()
        match = _USPTO_TITLE.search(title.upper())
        if match:
            return normalise("US", match.group(1), match.group(2))
        if title:
            tail = re.search(r"(?:^|[-_\s])(D\d{6,7})$", title)
            if tail:
                return normalise("US", tail.group(1), None)
            found = find_in_text(title)
            if found:
                return found
        for text in (front_text, _ocr_header(pdf, unit.source)):
            for regex in (_PATENT_NO, _PUB_NO):
                match = regex.search(text or "")
                if match:
                    found = find_in_text(match.group(1))
                    if found:
                        return found
            found = find_in_text(text or "")
            if found:
                return found
        raise CorruptInput(
            f"{unit.source}: no patent number in the file name, the PDF's metadata or its text layer"
            + ("" if _ocr_available() else " (install figsearch[ocr] to read it from the front page)")
        )


def _open_error(path: Path, exc) -> str:
    if getattr(exc, "err_code", None) == 0 or re.search(rb"/Count\s*0\b", path.read_bytes()[-65536:]):
        return "PDF has no pages"
    return imaging.pdf_open_error(exc)


def _page_text(pdf, index: int, columns: bool = False) -> str:
    """The page's text layer in the layer's own order; with ``columns``, a two-column page (a US front
    page, a page of the description) read left column first, then the right one (``_by_columns``)."""
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range() or ""
            if columns and text.strip():
                try:
                    text = _by_columns(textpage, page.get_width()) or text
                except Exception as exc:  # boxes pdfium cannot give: the text in the layer's order, not none
                    log.debug("page %d: text layer kept in its own order (%s)", index + 1, exc)
            return text
        finally:
            textpage.close()
    except Exception:  # a page without a usable text layer is just an image
        return ""
    finally:
        page.close()


#: the gutter between two columns: a vertical band at least this wide (pt) that almost no character crosses
_GUTTER_WIDTH = 4
#: where the gutter may be, as fractions of the page's width
_GUTTER_BAND = (0.35, 0.65)


def _by_columns(textpage, width: float) -> str | None:
    """The text of a two-column page, left column then right; None where the page is not two columns.

    USPTO's text layers (OCR of the scanned page) run each printed row across both columns: the front
    page's brief description came out as "DESCRIPTION (56) References Cited FIG. 1 is a perspective view
    of a bicycle rack; U.S. PATENT DOCUMENTS FIG. 2 is a front view thereof; D201,143 S * 5/1965 ...",
    so the figures' sentences were not found (32 of 709 drawings of us-design-pdfs had one). A word goes
    to the column its first character stands in; a line break ends the line in both columns."""
    count = textpage.count_chars()
    text = textpage.get_text_range(0, count)
    if count < 40 or len(text) != count:  # a character of more than one UTF-16 unit: keep the layer's order
        return None
    boxes = [textpage.get_charbox(i) for i in range(count)]
    low, high = int(width * _GUTTER_BAND[0]), int(width * _GUTTER_BAND[1])
    covered = [0] * (high - low + 1)
    inked = 0
    for char, (left, _, right, _) in zip(text, boxes):
        if char.isspace():
            continue
        inked += 1
        for x in range(max(low, int(left)), min(high, int(right)) + 1):
            covered[x - low] += 1
    lines = text.count("\n") + 1
    limit = max(1, lines // 20)  # a title row or two across both columns, no more
    gutter, run = None, []
    for offset, n in enumerate(covered + [limit + 1]):
        if n <= limit:
            run.append(offset)
            continue
        if len(run) >= _GUTTER_WIDTH and (gutter is None or abs(_middle(run) - (high - low) / 2)
                                          < abs(_middle(gutter) - (high - low) / 2)):
            gutter = run
        run = []
    if gutter is None:
        return None
    split = low + _middle(gutter)
    columns: tuple[list[str], list[str]] = ([], [])
    side, word_start = 0, True
    for char, (left, _, right, _) in zip(text, boxes):
        if char in "\r\n":
            for column in columns:
                if column and column[-1] != "\n":
                    column.append("\n")
            word_start = True
            continue
        if char.isspace():
            columns[side].append(char)
            word_start = True
            continue
        if word_start:
            side = 0 if (left + right) / 2 < split else 1
            word_start = False
        columns[side].append(char)
    left_text, right_text = "".join(columns[0]), "".join(columns[1])
    # both columns must hold text: a page with one narrow column (a short title, a page number) is one column
    if min(len(left_text.strip()), len(right_text.strip())) < 0.15 * inked:
        return None
    return left_text.rstrip() + "\n" + right_text.rstrip() + "\n"


def _middle(run: list[int]) -> float:
    return (run[0] + run[-1]) / 2


def _clean(text: str) -> str:
    """One line, single spaces; punctuation put back against its word where the text layer (OCR) spaced it
    off ("FIG . 2 is a front view thereof ;", "( 57 ) CLAIM"), so that "FIG. 2" is found in the sentences; a
    heading on a line of its own ("DESCRIPTION") ends with a full stop, not run into the sentence after it."""
    text = re.sub(r"(?m)^[ \t]*([A-Z][A-Z ]{3,40}?)[ \t]*\r?$", r"\1.", text)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\( (?=\S)", "(", re.sub(r"(?<=\S) ([.,;:)])(?=\s|$)", r"\1", text))


def _title(front: str) -> str | None:
    claim = _DESIGN_CLAIM.search(_clean(front))
    if claim and len(claim.group(1)) < 200:
        article = claim.group(1).strip(" \"'“”‘’„")  # "an “ice chest with wheels, as shown" (USD528368)
        return article[:1].upper() + article[1:]
    match = _TITLE.search(front)
    if not match:
        return None
    # two-column front pages run the right column into the title line: keep the capitalised run
    words = []
    for word in _clean(match.group(1)).split():
        if not (word.isupper() or not word.isalpha()) or word in ("FOREIGN", "U.S.", "OTHER", "PATENT"):
            break
        words.append(word)
    title = " ".join(words).strip(" ,;.")  # a title on a line of its own ends with _clean's full stop
    return title.capitalize()[:300] if title else None


def _date(front: str) -> str | None:
    match = _DATE.search(front)
    if not match or match.group(1) not in _MONTHS:
        return None
    return f"{match.group(3)}-{_MONTHS[match.group(1)]:02d}-{int(match.group(2)):02d}"


def _metadata_date(pdf) -> str | None:
    title = (pdf.get_metadata_dict().get("Title") or "").upper()
    match = _USPTO_TITLE.search(title)
    if match and match.group(3):
        d = match.group(3)
        return f"{d[:4]}-{d[4:6]}-{d[6:]}"
    return None


def _ocr_available() -> bool:
    try:
        require("tesserocr")
        return True
    except MissingDependency:
        return False


def _ocr_header(pdf, source: str) -> str:
    """OCR of the front page's top band, where the patent number is printed (needs tesserocr)."""
    if not _ocr_available():
        return ""
    tesserocr = require("tesserocr")
    page = pdf[0]
    try:
        width, height = page.get_size()
        image = page.render(scale=300 / 72, grayscale=True, crop=(0, height * 0.75, 0, 0)).to_pil()
    finally:
        page.close()
    candidates = [os.environ.get("TESSDATA_PREFIX")] + list(_TESSDATA)
    for path in [c for c in candidates if c] + [None]:
        try:
            if path is None:
                return tesserocr.image_to_text(image)
            if Path(path).is_dir():
                return tesserocr.image_to_text(image, path=path)
        except RuntimeError:
            continue
    log.info("%s: tesseract could not read the front page header", source)
    return ""
