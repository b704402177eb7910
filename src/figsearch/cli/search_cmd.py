"""CLI commands of the search stage: ``figsearch index`` and ``figsearch search`` (see figsearch.cli)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from figsearch.cli import collection_option, json_option, main
from figsearch.search.query import DEFAULT_MODE, MODES, Filters, Query


@main.command("index")
@collection_option
@click.option("--visual-model", default=None, metavar="NAME",
              help="Visual encoder: drawing (default, offline, learned), lines, hog, clip, clip:MODEL_OR_PATH, drawing:MODEL_FILE")
@click.option("--text-model", default=None, metavar="NAME",
              help="Text encoder: minilm (default, offline), stsb-roberta-base, sbert:MODEL_OR_PATH; 'none' leaves text out.")
@click.option("--index-factory", default=None, metavar="STR",
              help="FAISS index-factory string for both indexes (e.g. 'IVF4096,PQ64x8'); 'auto' returns to the size rule.")
@click.option("--bytes-per-vector", default=150.0, show_default=True, help="Memory budget per vector for the automatic choice.")
@click.option("--rebuild", is_flag=True, help="Rebuild the indexes from the stored vectors even when they are current.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars (the summary stays).")
@json_option
def index_command(collection, visual_model, text_model, index_factory, bytes_per_vector, rebuild, quiet, as_json):
    """Embed the drawings (and their texts) that are new or changed, and build or update the indexes."""
    from tqdm import tqdm

    from figsearch.index.update import update_collection
    from figsearch.store import Collection

    bars = []

    def progress(stage: str, total: int):
        for done in bars:  # one stage at a time
            done.close()
        bar = tqdm(total=total, desc=stage, unit="fig", file=sys.stderr, disable=as_json or quiet or total == 0, leave=True)
        bars.append(bar)
        return bar.update

    with Collection.open(collection, write=True) as store:
        try:
            report = update_collection(
                store, visual_model=visual_model, text_model=text_model, index_factory=index_factory,
                bytes_per_vector=bytes_per_vector, progress=progress, rebuild=rebuild,
            )
        finally:
            for bar in bars:
                bar.close()
    if as_json:
        click.echo(json.dumps(asdict(report), indent=1))
        return
    for item in report.embedded:
        line = f"{item.modality:6} {item.encoder}: {item.embedded} embedded, {item.unchanged} unchanged"
        if item.removed:
            line += f", {item.removed} text vectors dropped (no text any more)"
        if item.failed:
            line += f", {len(item.failed)} failed"
        click.echo(line)
        for figure_id, reason in item.failed[:20]:
            click.echo(f"  failed {figure_id}: {reason}", err=True)
    for item in report.indexes:
        detail = f" ({item.reason})" if item.reason else ""
        if item.calibrated_recall is not None:
            detail += f", nprobe {item.nprobe}, recall@50 {item.calibrated_recall:.3f} on stored vectors"
        click.echo(f"{item.modality:6} index: {item.action}{detail}, {item.count} vectors, {item.factory or '-'}, {item.seconds:.1f} s")
    for note in report.notes:
        click.echo(f"note: {note}")


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
    }


def _clip(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


@main.command("search")
@collection_option
@click.option("--figure", "figure_id", default=None, metavar="ID", help="Query by a figure of the collection.")
@click.option("--image", "image", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Query by a drawing file (TIFF, PNG, JPEG, or the first page of a PDF).")
@click.option("--text", default=None, metavar="T", help="Query text (alone or with a drawing).")
@click.option("--mode", type=click.Choice(MODES), default=DEFAULT_MODE, show_default=True, help="How visual and text scores combine.")
@click.option("--rerank/--no-rerank", "rerank", default=None,
              help="Re-rank the visual candidates (query expansion + database-side augmentation) "
                   "[default: the service's default].")
@click.option("-k", "k", default=10, show_default=True, help="Number of hits.")
@click.option("--offset", default=0, show_default=True, help="Skip this many hits (paging).")
@click.option("--text-weight", type=float, default=None, help="0..1: fused score = (1-w)·visual + w·text.")
@click.option("--exclude-own-patent", is_flag=True, help="Leave out the figures of the query figure's patent.")
@click.option("--date-from", default=None, metavar="DATE", help="Publication date from (YYYY[-MM[-DD]]).")
@click.option("--date-to", default=None, metavar="DATE", help="Publication date up to (YYYY[-MM[-DD]]).")
@click.option("--office", default=None, help="Only patents of this office (US, EP, ...).")
@click.option("--classification", default=None, metavar="PREFIX", help="Only patents with a classification code starting so.")
@json_option
def search_command(collection, figure_id, image, text, mode, rerank, k, offset, text_weight, exclude_own_patent,
                   date_from, date_to, office, classification, as_json):
    """Find the figures most similar to a figure, a drawing file and/or a text."""
    from figsearch.errors import InputError, NotFound
    from figsearch.search.service import SearchService

    if not (figure_id or image or text):
        raise InputError("give at least one of --figure, --image, --text")
    data = None
    if image is not None:
        if not image.is_file():
            raise NotFound(f"query image {image} does not exist")
        data = image.read_bytes()
    query = Query(
        figure_id=figure_id, image=data, text=text, mode=mode, rerank=rerank, k=k, offset=offset, text_weight=text_weight,
        exclude_query_patent=exclude_own_patent,
        filters=Filters(date_from=date_from, date_to=date_to, office=office, classification_prefix=classification),
    )
    with SearchService.open(collection) as service:
        if data is not None:
            query.image = _named(data, image)
        result = service.search(query)
    if as_json:
        click.echo(json.dumps({
            "hits": [_hit_json(h) for h in result.hits], "total": result.total, "mode": result.mode,
            "modalities": result.modalities, "notes": result.notes, "took_ms": round(result.took_ms, 1),
        }, indent=1, ensure_ascii=False))
        return
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
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
        click.echo(f"{hit.rank:>3} {hit.score:7.3f} {per}{_clip(hit.figure_id, 34):<34} {_clip(hit.label, 9):<9} {_clip(why, 70)}")
    click.echo(f"{len(result.hits)} of {result.total} candidates, mode {result.mode}, {result.took_ms:.0f} ms")


def _named(data: bytes, path: Path):
    """Bytes that remember the file name, so that decoding errors can name the file."""
    return _NamedBytes(data, str(path))


class _NamedBytes(bytes):
    def __new__(cls, data: bytes, name: str):
        obj = super().__new__(cls, data)
        obj.name = name
        return obj
