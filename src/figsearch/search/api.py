"""The contract of the one search service that the CLI, the HTTP API, the web page and the
evaluation all call. ``figsearch.search.service.SearchService`` implements it; tests of the
callers may use any object with these methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from figsearch.records import DrawingWord, Figure, GlossaryEntry, Hit, Patent, ReferenceSign
from figsearch.search.query import Query


@dataclass
class SearchResult:
    hits: list[Hit]
    #: how many candidates passed the filters before paging (at least len(hits))
    total: int
    mode: str
    #: the modalities that took part ("visual", "text") and why one did not, in words
    modalities: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    took_ms: float = 0.0
    #: the words read in the query drawing (an uploaded image), which made or joined its text
    query_words: list[str] = field(default_factory=list)
    #: milliseconds per phase of the search: decode, visual (the orientations of an uploaded drawing),
    #: words (reading them, beside the visual encoding; words_wait: what the search waited for them
    #: after it), text, neighbour_text (a ``Query.neighbour_text`` search's text list), search (indexes and
    #: fusion), explain (the hits' sentences and signs);
    #: cached = 1 when an upload's encodings came from the cache
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class LinkedSentence:
    index: int
    text: str
    #: why it is linked: "sign" (mentions a sign read in the figure), "brief_description", "title"
    reason: str
    signs: list[str] = field(default_factory=list)
    #: the sentence's language (ISO 639-1): detected from its words, else its patent's; None if unknown
    lang: str | None = None


@dataclass
class FigureDetails:
    figure: Figure
    patent_title: str | None
    reference_signs: list[ReferenceSign]
    sentences: list[LinkedSentence]
    glossary: list[GlossaryEntry]
    #: the figures cut from this one when it is a sheet of several
    children: list[str] = field(default_factory=list)
    #: what the sign reader noted about the figure (blank, unreadable, no description, ...)
    notes: list[str] = field(default_factory=list)
    #: the words printed in the drawing (box labels, flowchart steps), in reading order
    words: list[DrawingWord] = field(default_factory=list)


@dataclass
class PatentDetails:
    patent: Patent
    figures: list[Figure]
    glossary: list[GlossaryEntry]


class SearchBackend(Protocol):
    def search(self, query: Query) -> SearchResult:
        """Raises InputError (bad query, corrupt image), NotFound (unknown figure id),
        EmptyCollection (nothing indexed for the needed modality)."""

    def figure_details(self, figure_id: str) -> FigureDetails: ...

    def patent_details(self, publication_number: str) -> PatentDetails: ...

    def info(self) -> dict:
        """Counts, encoders and index types in use; JSON-serialisable."""
