"""``figsearch search``: the figures most similar to a figure, a drawing file and/or a text."""

from __future__ import annotations

import json
from pathlib import Path

import click

from figsearch.cli.base import collection_option, json_option, main, rerank_default_text
from figsearch.search.query import DEFAULT_MODE, MODES


def _hit_json(hit) -> dict:
    return {
        "figure_id": hit.figure_id,
        "patent": hit.patent,
        "figure": hit.label,
        "score": round(hit.score, 6),
        "scores": {m: round(s, 6) for m, s in hit.scores.items()},
        "rank": hit.rank,
        "title": hit.title,
        "sentences": hit.sentences,
        "reference_signs": hit.reference_signs,
        "thumbnail_path": hit.thumbnail_path,
        "matched_words": hit.matched_words,
    }


def _date(ctx, param, value: str | None) -> str | None:
    """YYYY, YYYY-MM or YYYY-MM-DD, a real date (as the HTTP API checks it): '2021-13' found nothing, silently."""
    if value is None:
        return None
    from figsearch.errors import InputError
    from figsearch.search.filters import normalise_date

    try:
        return normalise_date(value, "")
    except InputError as exc:
        raise click.BadParameter(str(exc).lstrip("=")) from None


def _office(ctx, param, value: str | None) -> str | None:
    """A two-letter office code, upper case (as the HTTP API checks it): 'EPO' found nothing, silently."""
    if value is None:
        return None
    if not (len(value.strip()) == 2 and value.strip().isalpha()):
        raise click.BadParameter(f"{value!r} is not a two-letter office code (US, EP, WO, ...)")
    return value.strip().upper()


def _clip(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


@main.command("search")
@collection_option
@click.option("--figure", "figure_id", default=None, metavar="ID", help="Query by a figure of the collection: its id (EP1667425A1-f0001) or a readable reference "
                   "(\"EP1667425A1 FIG. 1\").")
@click.option("--image", "image", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Query by a drawing file (TIFF, PNG, JPEG or PDF; --page picks the page of a PDF or multi-page TIFF).")
@click.option("--page", type=click.IntRange(1, 10_000), default=1, show_default=True,
              help="Page of the --image file to search with (1-based), as the web page's page field.")
@click.option("--text", default=None, metavar="T", help="Query text (alone or with a drawing).")
@click.option("--mode", type=click.Choice(MODES), default=DEFAULT_MODE, show_default=True, help="How visual and text scores combine.")
@click.option("--rerank/--no-rerank", "rerank", default=None,
              help="Re-rank the visual candidates (alpha-query expansion with database-side augmentation, search/rerank.py) "
                   f"[default: {rerank_default_text()}].")
@click.option("--read-words/--no-read-words", "read_words", default=True, show_default=True,
              help="Read the words printed in the --image drawing and search the text channel with them "
                   "(with --text too) when the mode uses text.")
@click.option("--all-turns", is_flag=True,
              help="Match the --image drawing in all four quarter turns, for a drawing that may be turned against how it "
                   "was published (a sheet scanned sideways); by default it is searched upright alone.")
@click.option("--neighbour-text/--no-neighbour-text", "neighbour_text", default=None,
              help="Modes visual and auto: a drawing without words borrows the texts of its nearest drawings for the "
                   "text channel (in auto only a drawing without text of its own) [default: on in auto, off in visual].")
@click.option("--lexical/--no-lexical", "lexical", default=None,
              help="The words of --text also search the figures' texts by BM25 (SQLite FTS5; English, German and French "
                   "function words left out), fused into the text channel, unless the best figure text is already a "
                   "near paraphrase of them; figures in another language than the words keep their text score "
                   "(search/lexical.py, docs/lexical.md) [default: on, except in a collection whose drawings are in "
                   "several languages].")
@click.option("-k", "k", default=10, show_default=True, help="Number of hits.")
@click.option("--offset", default=0, show_default=True, help="Skip this many hits (paging).")
@click.option("--text-weight", type=float, default=None, help="0..1: fused score = (1-w)·visual + w·text.")
@click.option("--exclude-own-patent", is_flag=True, help="Leave out the figures of the query figure's patent; with --image, of the patent whose drawing the file is a copy of (the notes say which).")
@click.option("--date-from", default=None, metavar="DATE", callback=_date, help="Publication date from (YYYY[-MM[-DD]]).")
@click.option("--date-to", default=None, metavar="DATE", callback=_date, help="Publication date up to (YYYY[-MM[-DD]]).")
@click.option("--office", default=None, callback=_office, help="Only patents of this office (US, EP, ...).")
@click.option("--classification", default=None, metavar="PREFIX", help="Only patents with a classification code starting so.")
@click.option("--exclude-patents", "exclude_patents", multiple=True, metavar="PN[,PN...]",
              help="Leave out these patents' figures (publication numbers, commas between them; the option may be "
                   "repeated), as the API's exclude_patents and the page's \"Leave out patents\".")
@json_option
@click.option("--csv", "as_csv", is_flag=True,
              help="Print the hits as CSV (rank, patent, figure, title, scores, matched words, reference signs, "
                   "sentences), as the API's format=csv and the page's \"Download CSV\"; notes go to stderr.")
def search_command(collection, figure_id, image, page, text, mode, rerank, read_words, all_turns, neighbour_text, lexical, k, offset, text_weight, exclude_own_patent,
                   date_from, date_to, office, classification, exclude_patents, as_json, as_csv):
    """Find the figures most similar to a figure, a drawing file and/or a text.

    The same search as the Python API's ``figsearch.open(DIR).search(...)``.
    """
    from figsearch.api import open as open_collection
    from figsearch.errors import InputError

    if not (figure_id or image or text):
        raise InputError("give at least one of --figure, --image, --text")
    if as_json and as_csv:
        raise InputError("--json and --csv each print the hits: give one of them")
    excluded = [p.strip().upper() for value in exclude_patents for p in value.split(",") if p.strip()]
    if page != 1 and image is None:
        raise InputError("--page picks a page of the --image file: give --image")
    query_image, page_notes = None, []
    if image is not None:
        from figsearch.search.inputs import load_query_page, page_note

        # the page decoded as the search decodes a file (figsearch.open().search takes the first page of a path),
        # and the user told which page of how many was searched
        query_image, pages = load_query_page(str(image), page=page)
        page_notes = [n for n in [page_note(page, pages, "--page N")] if n]
    with open_collection(collection) as coll:
        result = coll.search(
            figure=figure_id, image=query_image, text=text, mode=mode, k=k,
            offset=offset, text_weight=text_weight, rerank=rerank, exclude_own_patent=exclude_own_patent,
            date_from=date_from, date_to=date_to, office=office, classification=classification,
            exclude_patents=excluded, read_words=read_words, all_turns=all_turns, neighbour_text=neighbour_text, lexical=lexical,
        )
    result.notes[:0] = page_notes
    if as_json:
        click.echo(json.dumps({
            "hits": [_hit_json(h) for h in result.hits], "total": result.total, "mode": result.mode,
            "modalities": result.modalities, "notes": result.notes, "took_ms": round(result.took_ms, 1),
            "query_words": list(result.query_words),
        }, indent=1, ensure_ascii=False))
        return
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if as_csv:
        from figsearch.search.export import hits_csv

        click.echo(hits_csv(result.hits), nl=False)
        return
    if result.query_words:
        click.echo(f"words read in the drawing: {_clip(' '.join(result.query_words), 100)}")
    if not result.hits:
        click.echo("no hits")
        return
    columns = [m for m in ("visual", "text") if m in result.modalities]
    header = f"{'#':>3} {'score':>7} " + "".join(f"{m:>7} " for m in columns) + f"{'figure':<34} {'label':<9} {'title / why':<}"
    click.echo(header)
    for hit in result.hits:
        per = "".join(f"{hit.scores[m]:7.3f} " if m in hit.scores else f"{'-':>7} " for m in columns)
        why = hit.sentences[0] if hit.sentences else (hit.title or "")
        if hit.reference_signs:
            why = f"[{' '.join(hit.reference_signs[:6])}] " + why
        if hit.matched_words:
            why = f"words: {' '.join(hit.matched_words)} | " + why
        click.echo(f"{hit.rank:>3} {hit.score:7.3f} {per}{_clip(hit.figure_id, 34):<34} {_clip(hit.label, 9):<9} {_clip(why, 70)}")
    shown = f"{offset + 1}-{offset + len(result.hits)}" if offset else str(len(result.hits))
    more = f" (the next {k}: --offset {offset + k})" if offset + len(result.hits) < result.total else ""
    click.echo(f"{shown} of {result.total} candidates{more}, mode {result.mode}, {result.took_ms:.0f} ms")
