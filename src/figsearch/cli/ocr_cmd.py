"""CLI commands of the ocr stage: ``figsearch ocr`` (spot and link) and ``figsearch show``."""

from __future__ import annotations

import json
import re

import click

from figsearch.cli.base import collection_option, json_option, main
from figsearch.errors import NotFound


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


def run_spot_and_link(coll, engine=None, redo=False, jobs=None, progress_bar=True):
    """spot_and_link with a tqdm bar on stderr (shared by ``ocr``, ``ingest`` and ``build``)."""
    import sys

    from tqdm import tqdm

    from figsearch.pipeline.signs import spot_and_link

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not progress_bar:
            return
        if bar is None:
            bar = tqdm(total=total, unit="figure", desc="ocr", file=sys.stderr)
        bar.update(1)

    try:
        return spot_and_link(coll, engine=engine, progress=progress, redo=redo, jobs=jobs)
    finally:
        if bar is not None:
            bar.close()


def summary_line(report) -> str:
    return (
        f"read {report.figures} figures: {report.signs} reference signs, {report.links} sentence links, "
        f"{report.split_sheets} sheets split into {report.new_figures} figures"
        + (f", {report.relinked_patents} patents relinked" if report.relinked_patents else "")
    )


def echo_report(report) -> None:
    click.echo(summary_line(report))
    for figure_id, figure_notes in sorted(report.notes.items()):
        for note in figure_notes:
            click.echo(f"  {figure_id}: {note}")


def resolve_figure(coll, reference: str):
    """A figure id, or a readable reference such as ``EP1667425A1 FIG. 1``."""
    from figsearch.link.glossary import label_keys
    from figsearch.records import FigureRole

    try:
        return coll.figure(reference)
    except NotFound:
        pass
    match = re.match(r"\s*([A-Za-z]{2}\d+[A-Za-z]\d?)\s*[,:]?\s*(.+)$", reference)
    if match is None:
        raise NotFound(f"unknown figure {reference!r}: give a figure id or e.g. 'EP1667425A1 FIG. 1'")
    patent, label = match.group(1).upper(), match.group(2)
    wanted = label_keys(label) or label_keys(f"FIG. {label}")
    if not wanted:
        raise NotFound(f"cannot read a figure label in {label!r} (expected e.g. 'FIG. 3')")
    candidates = [f for f in coll.figures(patent=patent) if wanted[0] in label_keys(f.label)]
    if not candidates:
        raise NotFound(f"patent {patent} has no figure labelled FIG. {wanted[0]} in collection {coll.root}")
    # a figure cut from a sheet names it more precisely than the sheet itself
    candidates.sort(key=lambda f: (f.role == FigureRole.SPLIT_SHEET, len(label_keys(f.label)), f.figure_id))
    return candidates[0]


@main.command("show")
@collection_option
@click.argument("figure")
@json_option
def show_command(collection: str, figure: str, as_json: bool) -> None:
    """Print a figure's reference signs, glossary entries and linked sentences.

    FIGURE is a figure id (EP1667425A1-f0001) or a readable reference ("EP1667425A1 FIG. 1").
    """
    from figsearch.store import Collection

    with Collection.open(collection) as coll:
        fig = resolve_figure(coll, figure)
        signs = coll.signs.of(fig.figure_id)
        glossary = {entry.sign: entry for entry in coll.links.glossary(fig.patent)}
        links = coll.links.links_of(fig.figure_id)
        notes = coll.signs.notes_of(fig.figure_id)
        children = [f.figure_id for f in coll.figures(patent=fig.patent) if f.parent_id == fig.figure_id]
    from figsearch.ocr.signs import sign_texts

    numerals = sign_texts(signs, "numeral")
    sentences: dict[int, dict] = {}
    for link, text in links:
        entry = sentences.setdefault(link.sentence_index, {"index": link.sentence_index, "text": text,
                                                           "reasons": [], "signs": []})
        if link.reason not in entry["reasons"]:
            entry["reasons"].append(link.reason)
        if link.sign:
            entry["signs"].append(link.sign)
    terms = {s: glossary[s].term for s in numerals if s in glossary}
    if as_json:
        click.echo(json.dumps({
            "figure_id": fig.figure_id, "patent": fig.patent, "label": fig.label, "role": fig.role.value,
            "description": fig.description, "parent_id": fig.parent_id, "children": children,
            "reference_signs": numerals,
            "figure_labels": sign_texts(signs, "figure_label"),
            "other_numbers": sign_texts(signs, "number"),
            "signs": [{"text": s.text, "kind": s.kind, "box": list(s.box) if s.box else None,
                       "confidence": s.confidence} for s in signs],
            "glossary": terms,
            "sentences": list(sentences.values()),
            "notes": notes,
        }, indent=2))
        return
    click.echo(f"{fig.figure_id}  ({fig.patent}, {fig.label or 'no label'}, {fig.role.value})")
    if fig.description:
        click.echo(f"  {fig.description}")
    if children:
        click.echo(f"  split into: {', '.join(children)}")
    click.echo(f"reference signs ({len(numerals)}): {' '.join(numerals) or '-'}")
    if terms:
        click.echo("glossary:")
        for sign, term in terms.items():
            click.echo(f"  {sign:>6}  {term}")
    click.echo(f"sentences ({len(sentences)}):")
    for entry in sentences.values():
        why = ", ".join(entry["reasons"]) + (f" {' '.join(entry['signs'])}" if entry["signs"] else "")
        click.echo(f"  [{entry['index']}] ({why}) {entry['text']}")
    for note in notes:
        click.echo(f"note: {note}")
