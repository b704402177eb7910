"""The public Python API: build a collection, open it, search it, read a figure, evaluate it.

For notebooks and scripts, as pyserini's searchers or clip-retrieval's client offer::

    import figsearch

    report = figsearch.build(["patents/"], "/tmp/coll", skip_ocr=True)
    with figsearch.open("/tmp/coll") as coll:
        result = coll.search(image="query.png", text="hinge", mode="avg", k=10)
        for hit in result.hits:
            print(hit.rank, hit.figure_id, hit.score, hit.scores)
        details = coll.figure(result.hits[0].figure_id)
        scores = coll.evaluate(rules=["same-patent"], k=50, modes=["visual", "avg"]).means

The objects are the ones the CLI and the HTTP API use: ``build`` is the write path
(figsearch.pipeline.building.build, which ``figsearch build`` calls); a :class:`SearchCollection`
wraps the read-only :class:`~figsearch.search.service.SearchService` that ``figsearch search``,
``figsearch show`` and ``/api/...`` call; ``evaluate`` runs figsearch.evaluate.experiment as
``figsearch evaluate`` does. ``import figsearch`` loads none of this until a name is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from figsearch.records import Hit
from figsearch.search.api import FigureDetails, PatentDetails, SearchResult
from figsearch.search.query import DEFAULT_MODE, MODES, Filters, Query

if TYPE_CHECKING:
    from figsearch.evaluate.experiment import Evaluation
    from figsearch.pipeline.building import BuildReport
    from figsearch.pipeline.remove import RemoveReport
    from figsearch.search.service import SearchService


def build(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    collection: str | os.PathLike,
    *,
    jobs: int | None = None,
    force: bool = False,
    skip_ocr: bool = False,
    ocr_engine: str | None = None,
    visual_model: str | None = None,
    text_model: str | None = None,
    index_factory: str | None = None,
    on_stage: Callable[[str, BuildReport], None] | None = None,
) -> BuildReport:
    """Build or update the collection directory ``collection`` from patent documents.

    ``paths``: files, folders (walked recursively) and .zip/.tar archives of EP/US XML, PDFs
    and drawings. Runs ingest → reference signs (OCR, unless ``skip_ocr``) → embed → index,
    the stages of ``figsearch build`` one after the other (the command overlaps them); a rerun
    only does what is new. ``visual_model`` and ``text_model`` choose the encoders (default: the
    collection's, else the defaults: ``backbone:drawing-backbone5-lite0-288.onnx@sheet=1``, and ``minilm``
    when every document is in English, ``use-multilingual`` when some are in other languages
    (figsearch.embed.encoders.multilingual.choose_text_model); ``text_model="none"`` leaves
    text out). ``on_stage(name, report)`` is called
    after each stage ("ingest", "signs", "index") with the report so far. Returns a :class:`~figsearch.pipeline.building.BuildReport` (``.ingest``,
    ``.signs``, ``.signs_skipped``, ``.index``).
    """
    from figsearch.pipeline.building import build as run_build

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return run_build(
        list(paths), collection, jobs=jobs, force=force, skip_ocr=skip_ocr, ocr_engine=ocr_engine,
        visual_model=visual_model, text_model=text_model, index_factory=index_factory, on_stage=on_stage,
    )


def remove(collection: str | os.PathLike, publication_numbers: str | Iterable[str], *,
           missing_ok: bool = False) -> RemoveReport:
    """Remove patents from the collection directory ``collection``, as ``figsearch remove`` does: their rows,
    vectors and image files, then the indexes are updated from the stored vectors (no model runs). Unknown
    numbers raise NotFound (before anything is removed) unless ``missing_ok``. A rerun of ``build`` over the same
    unchanged files does not bring them back (``force=True`` does). Returns a
    :class:`~figsearch.pipeline.remove.RemoveReport` (``.patents``, ``.figures``, ``.files``, ``.indexes``)."""
    from figsearch.pipeline.remove import remove_patents
    from figsearch.store import Collection

    numbers = [publication_numbers] if isinstance(publication_numbers, str) else list(publication_numbers)
    with Collection.open(collection, write=True) as store:
        return remove_patents(store, numbers, missing_ok=missing_ok)


def open(path: str | os.PathLike) -> SearchCollection:  # noqa: A001 - figsearch.open, as io.open
    """Open a built collection for reading (searches, details, evaluation)."""
    return SearchCollection(path)


@dataclass
class EvaluationResult:
    """What ``figsearch evaluate`` reports, as data."""

    #: ``{mode: {measure: mean}}``, measure names as ir_measures writes them (``AP@50``)
    means: dict[str, dict[str, float]]
    #: how many queries were scored
    queries: int
    k: int
    #: the judgments in words ("rule same-patent", "qrels FILE")
    judgments: str
    #: everything else: per-query scores, runs, qrels, confidence intervals, paired tests
    evaluation: Evaluation

    def markdown(self) -> str:
        """The report table ``figsearch evaluate`` prints."""
        from figsearch.evaluate.report import to_markdown

        return to_markdown(self.evaluation)


class SearchCollection:
    """A built collection, opened read-only: searches answer from its last built indexes.

    Safe to share between threads. Close it (or use ``with``) to release the database.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        from figsearch.search.service import SearchService

        self.path = Path(path)
        self._service: SearchService = SearchService.open(self.path)

    @property
    def service(self) -> SearchService:
        """The search service underneath (the one the CLI and the HTTP API call)."""
        return self._service

    def close(self) -> None:
        self._service.close()

    def __enter__(self) -> SearchCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"figsearch.SearchCollection({str(self.path)!r})"

    def search(
        self,
        *,
        figure: str | None = None,
        image: Any = None,
        text: str | None = None,
        mode: str | None = None,
        k: int = 10,
        offset: int = 0,
        text_weight: float | None = None,
        rerank: bool | None = None,
        exclude_own_patent: bool = False,
        date_from: str | None = None,
        date_to: str | None = None,
        office: str | None = None,
        classification: str | None = None,
        exclude_patents: Sequence[str] = (),
        read_words: bool = True,
        all_turns: bool = False,
        neighbour_text: bool | None = None,
        lexical: bool | None = None,
    ) -> SearchResult:
        """The figures most similar to a figure of the collection, a drawing and/or a text.

        ``figure``: a figure id or a readable reference ("EP1667425A1 FIG. 1"); ``image``: a
        path, the bytes of a TIFF/PNG/JPEG/PDF, or a PIL image (not together with ``figure``);
        ``text``: words. ``mode``: one of figsearch.search.query.MODES (``visual``, ``text``,
        ``max``, ``avg``, ``rrf``, ``zavg``, ``auto``; default ``DEFAULT_MODE``). ``rerank``: re-rank
        the visual candidates (search/rerank.py; default: the service's). Filters: publication dates (``YYYY[-MM[-DD]]``),
        office, classification prefix, patents to leave out. Returns a
        :class:`~figsearch.search.api.SearchResult`: ``.hits`` (:class:`figsearch.records.Hit`:
        figure_id, patent, rank, score, per-modality ``scores``, label, title, sentences,
        reference_signs), ``.total``, ``.modalities``, ``.notes`` (e.g. a stale index),
        ``.query_words`` (the words read in ``image``: with ``read_words`` and a mode that uses text,
        they make the query's text, or join ``text``). ``all_turns``: match ``image`` in all four quarter
        turns, for a drawing that may be turned against how it was published (by default it is searched
        upright alone). ``neighbour_text`` (modes ``visual`` and ``auto``): a drawing without words borrows the
        texts of its nearest drawings for the text channel (search/neighbour_text.py); in ``auto`` only a drawing
        without text of its own borrows, and only a drawing whose nearest figure has text. None: the default,
        on in ``auto`` and off in ``visual`` (search/query.py, ``LENT_TEXTS_BY_DEFAULT``).
        ``lexical``: the words of ``text`` (English, German and French function words left out) also search the
        figures' texts by BM25 (search/lexical.py), fused into the text channel, at no share when the best figure
        text is already a near paraphrase of them (``lexical.query_weight``); figures in another language than the
        words keep their text score; each hit's ``matched_words`` says which of them its text contains (None: the
        default, on except in a collection whose drawings are in several languages:
        ``figsearch.search.lexical.on_by_default``; docs/lexical.md).
        """
        figure_id = self._service.resolve_figure(figure) if figure else None
        if isinstance(image, os.PathLike):
            image = str(image)
        query = Query(
            figure_id=figure_id, image=image, text=text, mode=mode or DEFAULT_MODE, k=k, offset=offset,
            text_weight=text_weight, rerank=rerank, exclude_query_patent=exclude_own_patent, read_words=read_words,
            all_turns=all_turns, neighbour_text=neighbour_text, lexical=lexical, filters=Filters(date_from=date_from, date_to=date_to, office=office, classification_prefix=classification,
                            exclude_patents=tuple(exclude_patents)),
        )
        return self._service.search(query)

    def figure(self, reference: str) -> FigureDetails:
        """A figure's details, as ``/api/figures/ID`` and ``figsearch show`` give them: the figure
        record (patent, label, role, description, image path), its patent's title, the reference
        signs read in it, its linked sentences (with why), the patent's glossary, the figures cut
        from it and the sign reader's notes. ``reference``: an id or e.g. "EP1667425A1 FIG. 1"."""
        return self._service.figure_details(self._service.resolve_figure(reference))

    def patent(self, publication_number: str) -> PatentDetails:
        """A patent's record (title, dates, classifications, abstract, claims), its figures and glossary."""
        return self._service.patent_details(publication_number)

    def info(self) -> dict[str, Any]:
        """What the collection holds (patents, figures, formats, failures, as ``figsearch info``
        reports them) and what it was indexed with (``encoders``, ``indexes``, ``modes``)."""
        from figsearch.ingest.report import collection_info

        return {**collection_info(self._service.collection), **self._service.info()}

    def evaluate(
        self,
        *,
        rules: Sequence[str] = (),
        qrels: str | os.PathLike | None = None,
        combine: str = "sum",
        queries: str = "all",
        k: int = 50,
        modes: Sequence[str] = MODES,
        measures: Sequence[str] | None = None,
        seed: int = 0,
    ) -> EvaluationResult:
        """Retrieval quality per mode, as ``figsearch evaluate`` measures it.

        Judgments come from ``rules`` (``same-patent``, ``same-class:SCHEME:DEPTH``; several
        combine by ``combine``) or a TREC ``qrels`` file. ``queries``: ``all``,
        ``sample:N:SEED`` or a file of figure ids. ``measures``: ir_measures names (default
        AP@k, P@10, R@k, RR, nDCG@10). Writes nothing.
        """
        from figsearch.evaluate import experiment, report

        judgments = experiment.Judgments(
            qrels_file=str(qrels) if qrels is not None else None, rules=tuple(rules), combine=combine
        )
        evaluation = experiment.evaluate(
            self.path, judgments, queries=queries, k=k, modes=list(modes),
            measures=list(measures) if measures else None, seed=seed,
        )
        return EvaluationResult(
            means=report.summary(evaluation), queries=len(evaluation.queries), k=evaluation.k,
            judgments=evaluation.judgments, evaluation=evaluation,
        )


def __getattr__(name: str) -> Any:
    if name == "BuildReport":  # the write path's report, loaded with the write path
        from figsearch.pipeline.building import BuildReport

        return BuildReport
    raise AttributeError(f"module 'figsearch.api' has no attribute {name!r}")


__all__ = [
    "BuildReport", "EvaluationResult", "FigureDetails", "Hit", "PatentDetails", "SearchCollection", "SearchResult",
    "build", "open",
]
