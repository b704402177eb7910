"""``figsearch build``: the whole pipeline in one command (ingest, reference signs, indexes)."""

from __future__ import annotations

import click

from figsearch.cli.base import collection_option, main


@main.command("build")
@click.argument("paths", nargs=-1, required=True, callback=lambda ctx, param, value: _existing(value))
@collection_option
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None,
              help="Worker processes for decoding and OCR (default: CPUs, at most 4).")
@click.option("--skip-ocr", is_flag=True, help="Leave out reference-sign spotting (text then comes from captions and titles).")
@click.option("--ocr-engine", default=None, help="OCR engine (default: tesseract).")
@click.option("--visual-model", default=None, metavar="NAME", help="Visual encoder (default for a new collection: the shipped 'backbone:drawing-backbone5-lite0-288.onnx@sheet=1', whose figures cut from a sheet are stored mixed with their sheet's vector; 'drawing', 'lines', 'hog', 'clip', ...).")
@click.option("--text-model", default=None, metavar="NAME", help="Text encoder (default: the collection's, else minilm when every document is in English, use-multilingual when some are in other languages; 'none' leaves text out).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no failure lines (summaries stay).")
@click.option("--overlap/--no-overlap", default=True, show_default=True,
              help="Read the signs and embed the drawings of each document while the next ones are ingested "
                   "(with more than one job); --no-overlap runs the stages one after the other. Same collection "
                   "either way; overlapped is faster on idle cores (docs/performance.md).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS|auto|local]",
              help="Decode, read signs and embed on a Ray cluster (HOST:PORT; 'auto', the default: the cluster this "
                   "machine joined with 'ray start'; 'local': start one here with --jobs CPUs, all of this machine's without it). This process writes "
                   "the collection, the same as a local build. See docs/cluster.md.")
def build_command(paths, collection, jobs, skip_ocr, ocr_engine, visual_model, text_model, quiet, overlap, ray_address):
    """Build or update a searchable collection from patent documents: ingest, read the reference
    signs and link them to their sentences, embed, and index. Rerunning it only does what is new.

    PATHS may be URLs (s3://, gs://, file://), read through fsspec. The same build as the Python
    API's ``figsearch.build(PATHS, DIR)``. Then 'figsearch serve -c DIR'
    opens it in the browser, 'figsearch search' on the command line.
    """
    from figsearch.cli.index_cmd import echo_index_report
    from figsearch.cli.ingest_cmd import echo_ingest_summary, ingest_stage, signs_summary

    def on_stage(name: str, report) -> None:
        # each stage's summary as soon as it is done, as 'ingest' and 'index' print them
        if name == ("ingest" if skip_ocr else "signs"):
            echo_ingest_summary(report.ingest.as_dict(), None if skip_ocr else signs_summary(report))
        elif name == "index":
            echo_index_report(report.index)

    options = {"overlap": overlap}
    if ray_address is not None:  # Ray is imported only here: a local build never loads it
        from figsearch.pipeline.distributed import RayCluster

        options["cluster"] = RayCluster(ray_address, workers=jobs)
    ingest_stage(collection, paths, jobs=jobs, quiet=quiet, skip_ocr=skip_ocr, ocr_engine=ocr_engine, index=True,
                 visual_model=visual_model, text_model=text_model, on_stage=on_stage, **options)
    click.echo(f"collection {collection} is ready: figsearch serve --collection {collection}")


def _existing(paths: tuple[str, ...]) -> tuple[str, ...]:
    """Local paths must exist (checked before any work); URLs are listed by the ingest itself."""
    import os

    from figsearch.ingest.remote import is_url

    for path in paths:
        if not is_url(path) and not os.path.lexists(path):
            raise click.BadParameter(f"{path!r} does not exist.", param_hint="'PATHS...'")
    return paths
