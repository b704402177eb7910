"""``figsearch show``: a figure's details (reference signs, glossary, linked sentences), or a patent's
(its bibliographic data, abstract and every figure) when given a publication number.

Printed from the search service's ``figure_details`` and ``patent_details``, the same records
``/api/figures/ID`` and ``/api/patents/PN`` and the Python API's ``figsearch.open(DIR).figure(ID)`` and
``.patent(PN)`` return.
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


def patent_json(details) -> dict:
    """``show PN --json``'s object for a PatentDetails: the patent's record and its figures."""
    patent = details.patent
    return {
        "publication_number": patent.publication_number, "office": patent.office, "kind": patent.kind,
        "title": patent.title, "publication_date": patent.publication_date, "filing_date": patent.filing_date,
        "application_number": patent.application_number, "language": patent.lang or patent.language,
        "classifications": [f"{c.scheme} {c.code}" for c in patent.classifications],
        "abstract": patent.abstract, "claims": len(patent.claims), "paragraphs": len(patent.paragraphs),
        "figures": [{"figure_id": f.figure_id, "label": f.label, "role": f.role.value, "description": f.description,
                     "parent_id": f.parent_id} for f in details.figures],
        "glossary": {entry.sign: entry.term for entry in details.glossary},
    }


def _show_patent(data: dict) -> None:
    click.echo(f"{data['publication_number']}  {data['title'] or '(no title)'}")
    dates = ", ".join(f"{name} {data[key]}" for name, key in (("published", "publication_date"), ("filed", "filing_date"),
                                                              ("application", "application_number")) if data[key])
    click.echo(f"  {data['office']} {data['kind'] or ''}{', ' + dates if dates else ''}"
               f"{', ' + data['language'] if data['language'] else ''}")
    if data["classifications"]:
        click.echo(f"  classes: {', '.join(data['classifications'])}")
    click.echo(f"  text: {data['paragraphs']} paragraphs, {data['claims']} claims, "
               f"{len(data['glossary'])} reference signs named")
    if data["abstract"]:
        click.echo(f"abstract: {data['abstract']}")
    click.echo(f"figures ({len(data['figures'])}):")
    for figure in data["figures"]:
        role = "" if figure["role"] == "drawing" else f" [{figure['role']}]"
        what = figure["description"] or ""
        click.echo(f"  {figure['figure_id']:<34} {figure['label'] or '-':<9}{role} {what}".rstrip())
    click.echo("(figsearch show -c DIR FIGURE for a figure's signs and sentences)")


@main.command("show")
@collection_option
@click.argument("figure")
@json_option
def show_command(collection: str, figure: str, as_json: bool) -> None:
    """Print a figure's reference signs, glossary entries and linked sentences, or a patent's
    bibliographic data, abstract and figures.

    FIGURE is a figure id (EP1667425A1-f0001), a readable reference ("EP1667425A1 FIG. 1"), or a
    publication number (EP1667425A1) for the patent.
    """
    from figsearch.api import open as open_collection
    from figsearch.errors import NotFound

    with open_collection(collection) as coll:
        try:
            data = details_json(coll.figure(figure))
        except NotFound as not_a_figure:
            try:  # a publication number: the patent, as /api/patents/PN gives it
                patent = patent_json(coll.patent(figure.strip().upper()))
            except NotFound:
                raise not_a_figure from None
            if as_json:
                click.echo(json.dumps(patent, indent=2, ensure_ascii=False))
            else:
                _show_patent(patent)
            return
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
