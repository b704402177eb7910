"""``figsearch index``: embed new or changed drawings and texts, then build or update the indexes."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from figsearch.cli.base import collection_option, json_option, main


@main.command("index")
@collection_option
@click.option("--visual-model", default=None, metavar="NAME",
              help="Visual encoder: backbone:drawing-backbone5-lite0-288.onnx@sheet=1 (default for a new collection: shipped, offline, ONNX; a figure cut from a sheet stored mixed with its sheet; without @sheet=1 the plain vectors; backbone:drawing-backbone3.onnx the previous one), backbone:MODEL_FILE, drawing (the default until stop 12), lines, hog, clip, clip:MODEL_OR_PATH, drawing:MODEL_FILE")
@click.option("--text-model", default=None, metavar="NAME",
              help="Text encoder: minilm (offline; the default for English collections), use-multilingual (offline; the default when documents in other languages are present), stsb-roberta-base, sbert:MODEL_OR_PATH; 'none' leaves text out.")
@click.option("--index-factory", default=None, metavar="STR",
              help="FAISS index-factory string for both indexes (e.g. 'IVF4096,PQ64x8'); 'auto' returns to the size rule.")
@click.option("--bytes-per-vector", default=150.0, show_default=True, help="Memory budget per vector for the automatic choice.")
@click.option("--rebuild", is_flag=True, help="Rebuild the indexes from the stored vectors even when they are current.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars (the summary stays).")
@json_option
def index_command(collection, visual_model, text_model, index_factory, bytes_per_vector, rebuild, quiet, as_json):
    """Embed the drawings (and their texts) that are new or changed, and build or update the indexes."""
    report = index_stage(collection, visual_model=visual_model, text_model=text_model, index_factory=index_factory,
                         bytes_per_vector=bytes_per_vector, rebuild=rebuild, quiet=quiet or as_json)
    if as_json:
        click.echo(json.dumps(asdict(report), indent=1))
        return
    echo_index_report(report)


class IndexBars:
    """One tqdm bar per step of the embed-and-index stage (figsearch.pipeline.index's ProgressFactory)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bars: list = []

    def __call__(self, stage: str, total: int):
        from tqdm import tqdm

        for done in self.bars:  # one step at a time
            done.close()
        bar = tqdm(total=total, desc=stage, unit="drawing", file=sys.stderr, disable=self.quiet or total == 0, leave=True)
        self.bars.append(bar)
        return bar.update

    def close(self) -> None:
        for bar in self.bars:
            bar.close()


def index_stage(collection: str, *, quiet: bool = False, **options):
    """The pipeline's embed-and-index stage with one progress bar per step (``options``: see update_collection)."""
    from figsearch import pipeline
    from figsearch.store import Collection

    bars = IndexBars(quiet)
    with Collection.open(collection, write=True) as store:
        try:
            return pipeline.embed_and_index(store, progress=bars, **options)
        finally:
            bars.close()


def echo_index_report(report) -> None:
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
