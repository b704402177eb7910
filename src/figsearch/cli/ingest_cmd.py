"""CLI commands of the ingest stage: ``figsearch ingest`` and ``figsearch info``."""

from __future__ import annotations

import json
import sys

import click

from figsearch.cli.base import collection_option, json_option, main


class _Bar:
    """tqdm progress for the runner; failure lines go above the bar, one per file."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None

    def start(self, total: int) -> None:
        if self.quiet or total == 0:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="doc", desc="ingest", file=sys.stderr, disable=None, dynamic_ncols=True)

    def advance(self, unit, result) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def failure(self, failure) -> None:
        if self.quiet:
            return
        line = f"figsearch: failed: {failure.source}: {failure.reason}"
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@collection_option
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None,
              help="Worker processes for decoding images and PDFs (default: CPUs, at most 4).")
@click.option("--force", is_flag=True, help="Re-read sources even when they are unchanged since the last run.")
@click.option("--strict", is_flag=True, help="Exit with status 1 when any document failed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no failure lines (the summary stays).")
@click.option("--skip-ocr", is_flag=True,
              help="Only read the documents; spot reference signs later with 'figsearch ocr'.")
@click.option("--ocr-engine", default=None, help="OCR engine for the reference signs (default: tesseract).")
@json_option
def ingest_command(paths, collection, jobs, force, strict, quiet, skip_ocr, ocr_engine, as_json):
    """Read patent documents (EP/US XML, PDFs, image folders, archives) into a collection.

    PATHS are files, folders (walked recursively) and .zip/.tar archives. Documents that
    cannot be read are reported, one line each, and skipped; everything else goes in.
    Unchanged sources are skipped on a rerun. Then the reference signs of the new drawings
    are read and linked to their sentences (as 'figsearch ocr' does) unless --skip-ocr.
    """
    result, ocr = ingest_stage(collection, paths, jobs=jobs, force=force, quiet=quiet, skip_ocr=skip_ocr,
                               ocr_engine=ocr_engine, as_json=as_json)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        echo_ingest_summary(result, ocr)
    if strict and result["failures"]:
        sys.exit(1)


def ingest_stage(collection: str, paths, *, jobs=None, force=False, quiet=False, skip_ocr=False, ocr_engine=None,
                 as_json=False) -> tuple[dict, dict | None]:
    """The pipeline's ingest (then its OCR stage) with a progress bar: (summary dict, OCR summary or None)."""
    from figsearch import pipeline
    from figsearch.store import Collection

    if not skip_ocr:  # a wrong engine name is said before the ingest, not after it
        pipeline.check_ocr_engine(ocr_engine)
    bar = _Bar(quiet)
    with Collection.open(collection, create=True) as store:
        try:
            summary = pipeline.ingest(store, list(paths), bar, jobs=jobs, force=force)
        finally:
            bar.close()
    result = summary.as_dict()
    ocr = None if skip_ocr else _spot_and_link(collection, ocr_engine, jobs, quiet or as_json)
    if ocr is not None:
        result["ocr"] = ocr
    return result, ocr


def echo_ingest_summary(result: dict, ocr: dict | None) -> None:
    click.echo(
        f"ingested {result['documents']} documents with {result['figures']} figures in {result['seconds']:.1f} s; "
        f"{result['skipped_unchanged']} unchanged skipped; {result['failures']} failed"
        + (f"; {result['ignored_files']} ignored (README/licence)" if result["ignored_files"] else "")
        + (f"; {result['metadata_files']} metadata files" if result["metadata_files"] else "")
        + (f"; {result['missing_images']} referenced images not present" if result["missing_images"] else "")
    )
    if ocr is not None:
        click.echo(ocr["summary"])


def _spot_and_link(collection: str, engine: str | None, jobs: int | None, quiet: bool) -> dict:
    """The ocr stage after an ingest; a missing OCR engine is a note, not a failed ingest."""
    from figsearch.cli.ocr_cmd import run_spot_and_link, summary_line
    from figsearch.errors import MissingDependency, ModelUnavailable
    from figsearch.store import Collection

    try:
        with Collection.open(collection, write=True) as store:
            report = run_spot_and_link(store, engine=engine, jobs=jobs, progress_bar=not quiet)
    except (MissingDependency, ModelUnavailable) as exc:
        return {"skipped": str(exc), "summary": f"reference signs not read: {exc}; then run 'figsearch ocr'"}
    return {
        "figures": report.figures, "reference_signs": report.signs, "sentence_links": report.links,
        "split_sheets": report.split_sheets, "new_figures": report.new_figures,
        "summary": summary_line(report) + " ('figsearch show' prints a figure's signs and sentences)",
    }


@main.command("info")
@collection_option
@json_option
@click.option("--failures", "show_failures", type=int, default=20, show_default=True,
              help="How many failures to list in the table view (all in --json).")
def info_command(collection, as_json, show_failures):
    """Counts of what a collection holds: patents, figures, formats, failures."""
    from figsearch.ingest.report import collection_info
    from figsearch.store import Collection

    with Collection.open(collection) as store:
        info = collection_info(store)
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
        return
    click.echo(f"collection  {info['collection']}")
    click.echo(f"patents     {info['patents']}  ({_pairs(info['offices'])})")
    click.echo(f"figures     {info['figures']}  ({_pairs(info['figures_by_role'])}); "
               f"{info['figures_with_description']} with a description")
    click.echo(f"paragraphs  {info['paragraphs']}  (patents with text: {info['patents_with_text']})")
    click.echo(f"languages   {info['languages_text']}")
    click.echo(f"formats     {_pairs(info['formats'])}")
    click.echo(f"classes     {_pairs(info['classifications'])}")
    click.echo(f"failures    {info['failures']}")
    for item in info["failed"][:show_failures]:
        click.echo(f"  {item['source']}: {item['reason']}")
    if info["failures"] > show_failures:
        click.echo(f"  ... and {info['failures'] - show_failures} more (figsearch info --json lists all)")


def _pairs(mapping: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(mapping.items())) or "-"
