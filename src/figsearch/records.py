"""Typed records passed between the pipeline stages.

Every stage speaks in these dataclasses (never in untyped dicts), so that the
ingest modules, the store, OCR, linking, search and the server agree on one
vocabulary. This module imports nothing from the rest of figsearch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class FigureRole(str, enum.Enum):
    """What an image of a patent is, which decides whether it is searched."""

    #: a drawing sheet or a single figure: searched and used as a query
    DRAWING = "drawing"
    #: a front-page or abstract image that repeats a drawing (USPTO ``-D00000``,
    #: EPO ``imgaf``, a PDF's first page): kept for display, never a query or a hit
    FRONT_PAGE = "front_page"
    #: not a drawing at all (a formula, a table, a chemical structure)
    NON_DRAWING = "non_drawing"
    #: a sheet that OCR split into its figures (children with ``parent_id`` = this sheet):
    #: kept for display and provenance, never a query or a hit, so nothing is searched twice
    SPLIT_SHEET = "split_sheet"


class Section(str, enum.Enum):
    DESCRIPTION = "description"
    ABSTRACT = "abstract"
    CLAIMS = "claims"


@dataclass(frozen=True)
class Classification:
    """One classification symbol. ``scheme`` is IPC, CPC, Locarno or USPC."""

    scheme: str
    code: str


@dataclass
class Paragraph:
    """A paragraph of the description, with the number the office printed (``[0012]``)."""

    text: str
    number: str | None = None
    section: Section = Section.DESCRIPTION
    #: the heading it stands under, e.g. "BRIEF DESCRIPTION OF THE DRAWINGS"
    heading: str | None = None
    #: the language of the paragraph's text (ISO 639-1), when known
    lang: str | None = None


@dataclass
class Figure:
    """One searchable image of a patent.

    ``figure_id`` is stable and readable: the publication number and the image's
    own key in its source (``US20250204297A1-D00003``, ``EP1667425A1-f0001``,
    ``USD0528368S-p003``); a sheet split into several figures gets ``-fig3a``.
    """

    figure_id: str
    patent: str
    #: the label printed or stated for it ("FIG. 3"), when known
    label: str | None = None
    role: FigureRole = FigureRole.DRAWING
    #: the file it came from, and the page within that file (multi-page TIFF, PDF), 1-based
    source_file: str | None = None
    page: int | None = None
    #: the "brief description of drawings" sentence for this figure, when the text has one
    description: str | None = None
    #: position among the patent's figures, for ordering
    sequence: int = 0
    #: normalised image and thumbnail, relative to the collection directory
    image_path: str | None = None
    thumbnail_path: str | None = None
    width: int | None = None
    height: int | None = None
    #: digest of the stored normalised image: derived data is kept while it is unchanged
    image_sha256: str | None = None
    #: the sheet this figure was cut from, when a sheet was split by its labels
    parent_id: str | None = None
    #: where a split figure lies on its parent sheet (x0, y0, x1, y1 in the sheet's pixels)
    box: tuple[int, int, int, int] | None = None


@dataclass
class Patent:
    """A patent document: bibliographic data and text. Figures travel beside it."""

    publication_number: str  # office + number + kind, e.g. "EP1667425A1"
    office: str  # "EP", "US", ...
    number: str  # "1667425"
    kind: str | None = None  # "A1", "B2", "S1", ...
    title: str | None = None
    publication_date: str | None = None  # ISO "YYYY-MM-DD"
    filing_date: str | None = None
    language: str | None = None
    classifications: list[Classification] = field(default_factory=list)
    abstract: str | None = None
    paragraphs: list[Paragraph] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    #: the file or folder it was read from, and the name of the reader
    source_path: str | None = None
    source_format: str | None = None
    #: the language of the patent's text (ISO 639-1), when known
    lang: str | None = None
    #: the application it was published from, office + digits (``ingest.numbers.application_number``:
    #: "US29740061", "EP05255002"): an application and its grant differ in publication number, not in this
    application_number: str | None = None


@dataclass
class SourceImage:
    """An image of a document as found in its source, before normalisation.

    Exactly one of ``path`` (a file on disk, possibly multi-page) or ``data``
    (bytes from an archive or a rendered PDF page) is set.
    """

    key: str  # the figure key inside the patent: "D00003", "f0001", "p003"
    path: Path | None = None
    data: bytes | None = None
    page: int | None = None  # 1-based page inside a multi-page file
    label: str | None = None
    role: FigureRole = FigureRole.DRAWING
    description: str | None = None
    #: an already decoded image (a rendered PDF page), to skip decoding again
    image: object | None = None


@dataclass
class Document:
    """What an ingest reader yields: a patent and the images that belong to it."""

    patent: Patent
    images: list[SourceImage] = field(default_factory=list)


@dataclass(frozen=True)
class Failure:
    """A document that could not be ingested: which file, and why, in words."""

    source: str
    reason: str


@dataclass
class ReferenceSign:
    """Text read in a drawing: a reference numeral ("14a") or a figure label ("FIG. 3")."""

    text: str
    #: "numeral" (a reference numeral; cited by the description when the patent has one),
    #: "figure_label", or "number" (read in the drawing but not a sign the description uses:
    #: axis ticks, table values)
    kind: str
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in the normalised image
    confidence: float | None = None


@dataclass
class DrawingWord:
    """A word printed in a drawing that is not a sign: box labels ("IMAGE PROCESSING UNIT"),
    flowchart steps, axis titles. The figure's own text."""

    text: str
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in the figure's image
    confidence: float | None = None
    #: words of one text line share a number (they are joined into a phrase in reading order)
    line: int = 0


@dataclass
class Sentence:
    """A sentence of a patent's description, addressable by (patent, index)."""

    patent: str
    index: int
    text: str
    paragraph_number: str | None = None


@dataclass(frozen=True)
class SentenceLink:
    """Why a sentence of the description belongs to a figure."""

    sentence_index: int
    reason: str  # 'sign', 'brief_description', 'label'
    sign: str = ""


@dataclass
class GlossaryEntry:
    """A reference sign and the term the description names it with ("14" -> "thermal head")."""

    patent: str
    sign: str
    term: str
    sentence_index: int | None = None


@dataclass
class Hit:
    """One result of a search, with what explains it."""

    figure_id: str
    patent: str
    score: float
    rank: int = 0
    label: str | None = None
    #: the score of each modality that saw this figure ("visual", "text")
    scores: dict[str, float] = field(default_factory=dict)
    #: sentences linked to the figure and reference signs read in it, for "why"
    sentences: list[str] = field(default_factory=list)
    reference_signs: list[str] = field(default_factory=list)
    title: str | None = None
    thumbnail_path: str | None = None
    #: the query's words that the figure's text contains, when the lexical part scored it (search.lexical)
    matched_words: list[str] = field(default_factory=list)
