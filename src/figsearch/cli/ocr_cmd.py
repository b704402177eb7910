"""``figsearch ocr``: read the reference signs of new figures and link them to their sentences."""

from __future__ import annotations

import click

from figsearch.cli.base import collection_option, main


@main.command("ocr")
@collection_option
@click.option("--engine", default=None, help="OCR engine (default: the benchmarked default, 'tesseract').")
@click.option("--redo", is_flag=True, help="Forget earlier results (and cut figures) and read every figure again.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None,
              help="Worker processes that read drawings (default: CPUs, at most 4).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def ocr_command(collection: str, engine: str | None, redo: bool, jobs: int | None, no_progress: bool) -> None:
    """Read the reference signs of figures not yet done and link them to their sentences (resumable)."""
    from figsearch.store import Collection

    with Collection.open(collection, write=True) as coll:
        report = run_spot_and_link(coll, engine=engine, redo=redo, jobs=jobs, progress_bar=not no_progress)
    echo_report(report)


class SignsBar:
    """A tqdm bar on stderr for the reference-sign stage (drawings/s), started on its first figure."""

    def __init__(self, enabled: bool = True, desc: str = "ocr") -> None:
        self.enabled = enabled
        self.desc = desc
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            import sys

            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="drawing", desc=self.desc, file=sys.stderr)
        if total != self.bar.total:  # an overlapped build learns of more drawings as the ingest goes on
            self.bar.total = total
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_spot_and_link(coll, engine=None, redo=False, jobs=None, progress_bar=True):
    """spot_and_link with a tqdm bar on stderr."""
    from figsearch.pipeline.signs import spot_and_link

    bar = SignsBar(enabled=progress_bar)
    try:
        return spot_and_link(coll, engine=engine, progress=bar, redo=redo, jobs=jobs)
    finally:
        bar.close()


def summary_line(report) -> str:
    return (
        f"read {report.figures} figures: {report.signs} reference signs, {report.links} sentence links, "
        f"{report.split_sheets} sheets split into {report.new_figures} figures"
        + (f", {report.words} drawing words" if getattr(report, "words", 0) else "")
        + (f", {report.relinked_patents} patents relinked" if report.relinked_patents else "")
    )


def echo_report(report) -> None:
    click.echo(summary_line(report))
    for figure_id, figure_notes in sorted(report.notes.items()):
        for note in figure_notes:
            click.echo(f"  {figure_id}: {note}")
