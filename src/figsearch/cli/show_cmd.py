"""``figsearch show``: a figure's details (reference signs, glossary, linked sentences).

Printed from the search service's ``figure_details``, the same record ``/api/figures/ID`` and
the Python API's ``figsearch.open(DIR).figure(ID)`` return.
"""

from __future__ import annotations

import json

import click

from figsearch.cli.base import collection_option, json_option, main


def details_json(details) -> dict:
    """``show --json``'s object for a FigureDetails."""
    from figsearch.ocr.signs import sign_texts as _sign_texts

    fig, signs = details.figure, details.reference_signs
    numerals = _sign_texts(signs, "numeral")
    glossary = {entry.sign: entry.term for entry in details.glossary}
    return {
        "figure_id": fig.figure_id, "patent": fig.patent, "patent_title": details.patent_title,
        "label": fig.label, "role": fig.role.value, "description": fig.description,
        "parent_id": fig.parent_id, "children": list(details.children),
        "reference_signs": numerals,
        "figure_labels": _sign_texts(signs, "figure_label"),
        "other_numbers": _sign_texts(signs, "number"),
        "signs": [{"text": s.text, "kind": s.kind, "box": list(s.box) if s.box else None,
                   "confidence": s.confidence} for s in signs],
        # the terms of the signs read in this figure (the patent's whole glossary: figsearch.open(DIR).patent)
        "glossary": {sign: glossary[sign] for sign in numerals if sign in glossary},
        "sentences": [{"index": s.index, "text": s.text, "reason": s.reason, "signs": list(s.signs)}
                      for s in details.sentences],
        "notes": list(details.notes),
        # the words printed in the drawing (box labels, flowchart steps): part of its text
        "words": [w.text for w in getattr(details, "words", [])],
    }


@main.command("show")
@collection_option
@click.argument("figure")
@json_option
def show_command(collection: str, figure: str, as_json: bool) -> None:
    """Print a figure's reference signs, glossary entries and linked sentences.

    FIGURE is a figure id (EP1667425A1-f0001) or a readable reference ("EP1667425A1 FIG. 1").
    """
    from figsearch.api import open as open_collection

    with open_collection(collection) as coll:
        data = details_json(coll.figure(figure))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"{data['figure_id']}  ({data['patent']}, {data['label'] or 'no label'}, {data['role']})")
    if data["patent_title"]:
        click.echo(f"  {data['patent_title']}")
    if data["description"]:
        click.echo(f"  {data['description']}")
    if data["children"]:
        click.echo(f"  split into: {', '.join(data['children'])}")
    numerals = data["reference_signs"]
    click.echo(f"reference signs ({len(numerals)}): {' '.join(numerals) or '-'}")
    if data["glossary"]:
        click.echo("glossary:")
        for sign, term in data["glossary"].items():
            click.echo(f"  {sign:>6}  {term}")
    if data["words"]:
        click.echo(f"words in the drawing: {' '.join(data['words'])}")
    sentences = data["sentences"]
    click.echo(f"sentences ({len(sentences)}):")
    for entry in sentences:
        why = entry["reason"] + (f" {' '.join(entry['signs'])}" if entry["signs"] else "")
        index = entry["index"] if entry["index"] >= 0 else "-"
        click.echo(f"  [{index}] ({why}) {entry['text']}")
    for note in data["notes"]:
        click.echo(f"note: {note}")
