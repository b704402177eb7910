"""What the API answers with: pydantic models (for the OpenAPI schema) built from figsearch's records.

Records travel as they are, with what a client needs added: URLs of the figure's image and
thumbnail, and links to the patent on public registers.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

from figsearch.records import DrawingWord, Figure, GlossaryEntry, Hit, Patent, ReferenceSign
from figsearch.search.api import FigureDetails, LinkedSentence, PatentDetails, SearchResult


class Links(BaseModel):
    espacenet: str
    google_patents: str


class FigureOut(BaseModel):
    figure_id: str
    patent: str
    label: str | None = None
    role: str
    description: str | None = None
    sequence: int = 0
    page: int | None = None
    width: int | None = None
    height: int | None = None
    parent_id: str | None = None
    box: list[int] | None = Field(None, description="x0, y0, x1, y1 on the parent sheet, for a figure cut from one")
    image_url: str
    thumbnail_url: str


class HitOut(BaseModel):
    figure_id: str
    patent: str
    rank: int
    score: float
    scores: dict[str, float] = Field(default_factory=dict, description="score of each modality that saw the figure")
    label: str | None = None
    title: str | None = None
    sentences: list[str] = Field(default_factory=list)
    reference_signs: list[str] = Field(default_factory=list)
    matched_words: list[str] = Field(default_factory=list, description="the query's words the figure's text contains "
                                     "(when the lexical part of the text channel scored it)")
    image_url: str
    thumbnail_url: str
    links: Links


class QueryEcho(BaseModel):
    figure_id: str | None = None
    text: str | None = None
    image: bool = False
    crop: list[float] | None = None
    mode: str
    text_weight: float | None = None
    words: list[str] = Field(
        default_factory=list,
        description="the words read in the uploaded drawing; when the mode uses text they make its text (beside `text`)",
    )


class SearchOut(BaseModel):
    hits: list[HitOut]
    total: int = Field(description="candidates that passed the filters, before paging")
    k: int
    offset: int
    next_offset: int | None = Field(None, description="offset of the next page, when there is one")
    mode: str
    modalities: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    took_ms: float
    query: QueryEcho


class SignOut(BaseModel):
    text: str
    kind: str
    box: list[int] | None = Field(None, description="x0, y0, x1, y1 in the figure image's pixels")
    confidence: float | None = None


class WordOut(BaseModel):
    text: str
    box: list[int] | None = Field(None, description="x0, y0, x1, y1 in the figure image's pixels")
    confidence: float | None = None
    line: int = Field(0, description="words of one text line share a number")


class SentenceOut(BaseModel):
    index: int
    text: str
    reason: str
    signs: list[str] = Field(default_factory=list)
    lang: str | None = Field(None, description="the sentence's language (ISO 639-1), where known")


class GlossaryOut(BaseModel):
    sign: str
    term: str
    sentence_index: int | None = None


class FigureDetailsOut(BaseModel):
    figure: FigureOut
    patent_title: str | None = None
    links: Links
    reference_signs: list[SignOut]
    sentences: list[SentenceOut]
    glossary: list[GlossaryOut]
    words: list[WordOut] = Field(
        default_factory=list, description="the words printed in the drawing (box labels, flowchart steps): its own text"
    )


class ClassificationOut(BaseModel):
    scheme: str
    code: str


class PatentOut(BaseModel):
    publication_number: str
    office: str
    number: str
    kind: str | None = None
    title: str | None = None
    publication_date: str | None = None
    filing_date: str | None = None
    application_number: str | None = Field(None, description="the application, office + digits; shared by an "
                                           "application's publications (A1 and its grant)")
    language: str | None = None
    classifications: list[ClassificationOut] = Field(default_factory=list)
    abstract: str | None = None
    claims: int = Field(0, description="number of claims")
    links: Links


class PatentDetailsOut(BaseModel):
    patent: PatentOut
    figures: list[FigureOut]
    glossary: list[GlossaryOut]


class HealthOut(BaseModel):
    status: str
    collection: str


# -- conversions ----------------------------------------------------------------------------


def register_links(publication_number: str) -> Links:
    """The patent on Espacenet and Google Patents. Both want numbers without the zero padding
    that USPTO bulk data uses (``USD0528368S`` is ``USD528368S`` there)."""
    match = re.fullmatch(r"([A-Z]{2})([A-Z]*)0*(\d+)([A-Z]\d?)?", publication_number.upper())
    compact = "".join(g or "" for g in match.groups()) if match else publication_number
    return Links(
        espacenet=f"https://worldwide.espacenet.com/patent/search?q=pn%3D{quote(compact)}",
        google_patents=f"https://patents.google.com/patent/{quote(compact)}/en",
    )


def figure_urls(prefix: str, figure_id: str) -> tuple[str, str]:
    base = f"{prefix}/api/figures/{quote(figure_id, safe='')}"
    return f"{base}/image", f"{base}/thumbnail"


def figure_out(figure: Figure, prefix: str) -> FigureOut:
    image_url, thumbnail_url = figure_urls(prefix, figure.figure_id)
    return FigureOut(
        figure_id=figure.figure_id,
        patent=figure.patent,
        label=figure.label,
        role=getattr(figure.role, "value", str(figure.role)),
        description=figure.description,
        sequence=figure.sequence,
        page=figure.page,
        width=figure.width,
        height=figure.height,
        parent_id=figure.parent_id,
        box=list(figure.box) if figure.box else None,
        image_url=image_url,
        thumbnail_url=thumbnail_url,
    )


def hit_out(hit: Hit, prefix: str) -> HitOut:
    image_url, thumbnail_url = figure_urls(prefix, hit.figure_id)
    return HitOut(
        figure_id=hit.figure_id,
        patent=hit.patent,
        rank=hit.rank,
        score=float(hit.score),
        scores={k: float(v) for k, v in hit.scores.items()},
        label=hit.label,
        title=hit.title,
        sentences=list(hit.sentences),
        reference_signs=list(hit.reference_signs),
        matched_words=list(hit.matched_words),
        image_url=image_url,
        thumbnail_url=thumbnail_url,
        links=register_links(hit.patent),
    )


def search_out(result: SearchResult, *, k: int, offset: int, query: QueryEcho, prefix: str) -> SearchOut:
    end = offset + len(result.hits)
    return SearchOut(
        hits=[hit_out(h, prefix) for h in result.hits],
        total=result.total,
        k=k,
        offset=offset,
        next_offset=end if end < result.total and result.hits else None,
        mode=result.mode,
        modalities=list(result.modalities),
        notes=list(result.notes),
        took_ms=round(float(result.took_ms), 2),
        query=query,
    )


def sign_out(sign: ReferenceSign) -> SignOut:
    return SignOut(
        text=sign.text,
        kind=sign.kind,
        box=[int(v) for v in sign.box] if sign.box else None,
        confidence=sign.confidence,
    )


def word_out(word: DrawingWord) -> WordOut:
    return WordOut(text=word.text, box=[int(v) for v in word.box] if word.box else None,
                   confidence=word.confidence, line=word.line)


def sentence_out(sentence: LinkedSentence) -> SentenceOut:
    return SentenceOut(index=sentence.index, text=sentence.text, reason=sentence.reason, signs=list(sentence.signs),
                       lang=sentence.lang)


def glossary_out(entry: GlossaryEntry) -> GlossaryOut:
    return GlossaryOut(sign=entry.sign, term=entry.term, sentence_index=entry.sentence_index)


def figure_details_out(details: FigureDetails, prefix: str) -> FigureDetailsOut:
    return FigureDetailsOut(
        figure=figure_out(details.figure, prefix),
        patent_title=details.patent_title,
        links=register_links(details.figure.patent),
        reference_signs=[sign_out(s) for s in details.reference_signs],
        sentences=[sentence_out(s) for s in details.sentences],
        glossary=[glossary_out(g) for g in details.glossary],
        words=[word_out(w) for w in getattr(details, "words", [])],
    )


def patent_out(patent: Patent) -> PatentOut:
    return PatentOut(
        publication_number=patent.publication_number,
        office=patent.office,
        number=patent.number,
        kind=patent.kind,
        title=patent.title,
        publication_date=patent.publication_date,
        filing_date=patent.filing_date,
        application_number=patent.application_number,
        language=patent.language,
        classifications=[ClassificationOut(scheme=c.scheme, code=c.code) for c in patent.classifications],
        abstract=patent.abstract,
        claims=len(patent.claims),
        links=register_links(patent.publication_number),
    )


def patent_details_out(details: PatentDetails, prefix: str) -> PatentDetailsOut:
    return PatentDetailsOut(
        patent=patent_out(details.patent),
        figures=[figure_out(f, prefix) for f in details.figures],
        glossary=[glossary_out(g) for g in details.glossary],
    )


def jsonable(value: Any) -> Any:
    """info() promises JSON-serialisable data; make sure of it (paths, tuples, numpy scalars)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)
