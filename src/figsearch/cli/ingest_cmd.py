"""``figsearch ingest``: read patent documents into a collection (then their reference signs)."""

from __future__ import annotations

import json
import sys

import click

from figsearch.cli.base import collection_option, json_option, main


class _Bar:
    """tqdm progress for the runner (documents, with the drawings stored and their rate); failure
    lines go above the bar, one per file."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.drawings = 0

    def start(self, total: int) -> None:
        if self.quiet or total == 0:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="doc", desc="ingest", file=sys.stderr, disable=None, dynamic_ncols=True)

    def advance(self, unit, result) -> None:
        if self.bar is not None:
            self.drawings += sum(len(d.figures) for d in (result.documents if result else []))
            elapsed = self.bar.format_dict["elapsed"]
            self.bar.set_postfix_str(f"{self.drawings} drawings, {self.drawings / max(elapsed, 1e-3):.1f} drawings/s",
                                     refresh=False)
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
    result, ocr, _ = ingest_stage(collection, paths, jobs=jobs, force=force, quiet=quiet, skip_ocr=skip_ocr,
                               ocr_engine=ocr_engine, as_json=as_json)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        echo_ingest_summary(result, ocr)
    if strict and result["failures"]:
        sys.exit(1)


def ingest_stage(collection: str, paths, *, jobs=None, force=False, quiet=False, skip_ocr=False, ocr_engine=None,
                 as_json=False, index: bool = False, on_stage=None, **index_options):
    """The pipeline's build (figsearch.pipeline.building.build) with progress bars on stderr.

    ``index=False`` (``figsearch ingest``) stops after the reference signs. Returns (the ingest
    summary as a dict with the OCR summary under "ocr", the OCR summary or None, the BuildReport).
    """
    from figsearch import pipeline
    from figsearch.cli.index_cmd import IndexBars
    from figsearch.cli.ocr_cmd import SignsBar

    bar = _Bar(quiet)
    # the overlapped build embeds each drawing as it writes its signs: one bar for both
    signs_bar = SignsBar(enabled=not (quiet or as_json),
                         desc="read signs + embed" if index and index_options.get("overlap") else "ocr")
    index_bars = IndexBars(quiet=quiet or as_json)

    def stage_done(name: str, stage_report) -> None:
        if name == "ingest":
            bar.close()
        elif name == "signs":
            signs_bar.close()
        elif name == "index":
            index_bars.close()
        if on_stage is not None:
            on_stage(name, stage_report)

    try:
        report = pipeline.build(
            list(paths), collection, jobs=jobs, force=force, skip_ocr=skip_ocr, ocr_engine=ocr_engine, index=index,
            ingest_progress=bar, signs_progress=signs_bar, index_progress=index_bars, on_stage=stage_done,
            **index_options,
        )
    finally:
        bar.close()
        signs_bar.close()
        index_bars.close()
    result = report.ingest.as_dict()
    ocr = None if skip_ocr else signs_summary(report)
    if ocr is not None:
        result["ocr"] = ocr
    return result, ocr, report


def signs_summary(report) -> dict:
    """The OCR stage's summary for the ingest's output; a missing OCR engine is a note, not a failed ingest."""
    from figsearch.cli.ocr_cmd import summary_line

    if report.signs is None:
        why = report.signs_skipped
        return {"skipped": why, "summary": f"reference signs not read: {why}; then run 'figsearch ocr'"}
    signs = report.signs
    return {
        "figures": signs.figures, "reference_signs": signs.signs, "sentence_links": signs.links,
        "split_sheets": signs.split_sheets, "new_figures": signs.new_figures,
        "summary": summary_line(signs) + " ('figsearch show' prints a figure's signs and sentences)",
    }


def echo_ingest_summary(result: dict, ocr: dict | None) -> None:
    click.echo(
        f"ingested {result['documents']} documents with {result['figures']} figures in {result['seconds']:.1f} s; "
        f"{result['skipped_unchanged']} unchanged skipped"
        + (f" ({result['skipped_moved']} of them read before from another folder)"
           if result.get("skipped_moved") else "")
        + f"; {result['failures']} failed"
        + (f"; {result['ignored_files']} ignored (README/licence)" if result["ignored_files"] else "")
        + (f"; {result['metadata_files']} metadata files" if result["metadata_files"] else "")
        + (f"; {result['missing_images']} referenced images not present" if result["missing_images"] else "")
    )
    if ocr is not None:
        click.echo(ocr["summary"])
