"""What a search asks for. The CLI, the HTTP API and the evaluation build these."""

from __future__ import annotations

from dataclasses import dataclass, field

#: fusion modes; "visual" and "text" use one modality only (rules in figsearch.search.fusion)
MODES = ("visual", "text", "avg", "max", "rrf", "zavg", "auto")
#: the mode a search uses when it names none
DEFAULT_MODE = "auto"
#: whether the visual candidates are re-ranked (figsearch.search.rerank) when a query does not say
DEFAULT_RERANK = False


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
    text: str | None = None
    mode: str = DEFAULT_MODE
    #: 0..1; when set, fused score = (1-w)*visual + w*text instead of the mode's rule
    text_weight: float | None = None
    #: re-rank the visual candidates (figsearch.search.rerank: alpha-query expansion with database-side augmentation);
    #: None: DEFAULT_RERANK
    rerank: bool | None = None
    k: int = 10
    offset: int = 0
    exclude_query_patent: bool = False
    #: read the words printed in the query image and search the text channel with them (when the
    #: mode uses text); they join ``text`` when both are given
    read_words: bool = True
    #: encode an uploaded drawing in every orientation (figsearch.search.service.QUERY_ROTATIONS) even when
    #: its upright form closely matches a figure of the collection (service.UPRIGHT_CONFIDENT), which by
    #: default spares the other orientations
    all_turns: bool = False
    filters: Filters = field(default_factory=Filters)
