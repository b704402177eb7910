"""What a search asks for. The CLI, the HTTP API and the evaluation build these."""

from __future__ import annotations

from dataclasses import dataclass, field

#: fusion modes; "visual" and "text" use one modality only (rules in figsearch.search.fusion)
MODES = ("visual", "text", "avg", "max", "rrf", "zavg", "auto")
#: the mode a search uses when it names none
DEFAULT_MODE = "auto"
#: the modes whose visual candidates are re-ranked (figsearch.search.rerank) when a query does not say.
#: Stop 20: the visual mode gained on every benchmark measured (design grants, the full collection, the odd
#: 2007 designs' class level, held-out training-side sets, words -> drawings); the fused modes did not (at
#: class level re-ranking lowered avg, and auto with drawing-backbone5-lite0-288): docs/encoder.md, "Stop 20".
#: Stop 22: auto too, now that its calibrated switch reads the visual head before re-ranking
#: (fusion.switch_head): with drawing-backbone5-lite0-288 it gained on every held-out training-side set
#: (docs/encoder.md, "Stop 22"). avg, max, rrf and zavg stay plain.
RERANKED_BY_DEFAULT = frozenset({"visual", "auto"})


def rerank_by_default(mode: str) -> bool:
    """Whether a search in ``mode`` re-ranks its visual candidates when the query does not say."""
    return mode in RERANKED_BY_DEFAULT


#: the modes in which a drawing query may borrow the texts of its nearest drawings (figsearch.search.neighbour_text)
NEIGHBOUR_TEXT_MODES = frozenset({"visual", "auto"})
#: the modes in which it does when the query does not say. Stop 23: in the visual mode it won on the training
#: side's held-out sets and on the design grants, the design-grant queries among all the shared data and the odd
#: 2007 designs (docs/encoder.md, "Stop 23"); on in ``auto`` the full collection fell 0.890 -> 0.830 (design PDFs
#: without text lost their own textless sheets). Stop 24 (docs/neighbour-text.md): with a drawing lending only when
#: its nearest figure has text, and a figure without text scored by its look, ``auto`` with it was at least ``auto``
#: without it on every training-side set and every evaluation benchmark, and an upload without words gains what the
#: visual mode with the option gains. The visual mode stays the visual channel alone unless asked: it is what the
#: visual targets, auto's calibrations and words -> drawings measure.
LENT_TEXTS_BY_DEFAULT: frozenset[str] = frozenset({"auto"})


def neighbour_text_by_default(mode: str) -> bool:
    """Whether a drawing query without text of its own borrows its neighbours' texts in ``mode`` by default."""
    return mode in LENT_TEXTS_BY_DEFAULT


@dataclass
class Filters:
    date_from: str | None = None  # ISO date, inclusive, on the publication date
    date_to: str | None = None
    office: str | None = None  # "US", "EP", ...
    classification_prefix: str | None = None  # matched against any scheme's codes
    exclude_patents: tuple[str, ...] = ()


@dataclass
class Query:
    """At least one of figure_id, image, text. ``image`` is a PIL image or the bytes of a file."""

    figure_id: str | None = None
    image: object | None = None
    #: the page of ``image`` searched with when it is a file of several (a PDF, a multi-page TIFF), 1-based
    page: int = 1
    text: str | None = None
    mode: str = DEFAULT_MODE
    #: 0..1; when set, fused score = (1-w)*visual + w*text instead of the mode's rule
    text_weight: float | None = None
    #: re-rank the visual candidates (figsearch.search.rerank: alpha-query expansion with database-side augmentation);
    #: None: as the mode's default (rerank_by_default)
    rerank: bool | None = None
    k: int = 10
    offset: int = 0
    exclude_query_patent: bool = False
    #: read the words printed in the query image and search the text channel with them (when the
    #: mode uses text); they join ``text`` when both are given
    read_words: bool = True
    #: match an uploaded drawing in every quarter turn (figsearch.search.service.QUERY_ROTATIONS), for a
    #: drawing that may be turned against how it was published (a sheet scanned sideways); by default it is
    #: searched upright alone (service.UPRIGHT_CONFIDENT), which answers a drawing as published as well or
    #: better for a third of the work
    all_turns: bool = False
    #: modes ``visual`` and ``auto``: also search the text channel with the texts of the drawing's nearest visual
    #: neighbours (the collection's texts) and fuse the two (figsearch.search.neighbour_text, docs/encoder.md
    #: "Stop 23"). In ``visual`` the query's own words never search the text channel; in ``auto`` only a drawing
    #: without text of its own borrows. None: the mode's default (neighbour_text_by_default: on in auto, off in
    #: visual)
    neighbour_text: bool | None = None
    #: a typed text also searches the figures' words by BM25 (figsearch.search.lexical, docs/lexical.md), fused
    #: into the text channel; None: as ``lexical.on_by_default`` (on, but off in a collection whose drawings are in several languages)
    lexical: bool | None = None
    filters: Filters = field(default_factory=Filters)
