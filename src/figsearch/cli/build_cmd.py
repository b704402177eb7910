"""``figsearch build``: the whole pipeline in one command (ingest, reference signs, indexes)."""

from __future__ import annotations

import click

from figsearch.cli.base import collection_option, main


@main.command("build")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@collection_option
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None,
              help="Worker processes for decoding and OCR (default: CPUs, at most 4).")
@click.option("--skip-ocr", is_flag=True, help="Leave out reference-sign spotting (text then comes from captions and titles).")
@click.option("--ocr-engine", default=None, help="OCR engine (default: tesseract).")
@click.option("--visual-model", default=None, metavar="NAME", help="Visual encoder (default: the offline, learned 'drawing'; 'lines', 'hog', 'clip', ...).")
@click.option("--text-model", default=None, metavar="NAME", help="Text encoder (default: minilm; 'none' leaves text out).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no failure lines (summaries stay).")
def build_command(paths, collection, jobs, skip_ocr, ocr_engine, visual_model, text_model, quiet):
    """Build or update a searchable collection from patent documents: ingest, read the reference
    signs and link them to their sentences, embed, and index. Rerunning it only does what is new.

    The same build as the Python API's ``figsearch.build(PATHS, DIR)``. Then 'figsearch serve -c DIR'
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

    ingest_stage(collection, paths, jobs=jobs, quiet=quiet, skip_ocr=skip_ocr, ocr_engine=ocr_engine, index=True,
                 visual_model=visual_model, text_model=text_model, on_stage=on_stage)
    click.echo(f"collection {collection} is ready: figsearch serve --collection {collection}")
