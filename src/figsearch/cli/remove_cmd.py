"""``figsearch remove``: take patents out of a collection (ingested by mistake, withdrawn), indexes included."""

from __future__ import annotations

import json
import os

import click

from figsearch.cli.base import collection_option, json_option, main


@main.command("remove")
@click.argument("publication_numbers", nargs=-1)
@collection_option
@click.option("--list", "list_file", type=click.File("r"), default=None,
              help="A file of publication numbers to remove, one per line ('-': standard input).")
@click.option("--read-from", "read_from", multiple=True, type=click.Path(), metavar="PATH",
              help="Also remove every patent read from PATH: a file, or any file under a folder or in an archive "
                   "(the week's folder ingested by mistake). Repeatable.")
@click.option("--missing-ok", is_flag=True, help="Numbers the collection does not hold are noted, not an error.")
@json_option
def remove_command(publication_numbers, collection, list_file, read_from, missing_ok, as_json):
    """Remove patents (PUBLICATION_NUMBERS as stored, e.g. EP1667425A1) with their figures, texts, signs,
    vectors and image files, then update the indexes from the stored vectors. A running server stops showing
    them at once and searches the new indexes from its next search. The files they were read from stay
    recorded as read: a rerun over the same unchanged files does not bring them back ('figsearch ingest
    --force FILE' does)."""
    from figsearch.errors import InputError
    from figsearch.pipeline.remove import remove_patents
    from figsearch.store import Collection

    numbers = list(publication_numbers)
    if list_file is not None:
        numbers += [line.split("#", 1)[0].strip() for line in list_file]
    numbers = [n for n in numbers if n]
    if not numbers and not read_from:
        raise InputError("name the patents to remove (e.g. figsearch remove -c DIR EP1667425A1), or --list FILE, "
                         "or --read-from PATH")
    with Collection.open(collection, write=True) as store:
        for path in read_from:
            found = store.patents.read_from(os.path.abspath(path))
            if not found:
                raise InputError(f"no patent of collection {collection} was read from {path}")
            numbers += found
        report = remove_patents(store, numbers, missing_ok=missing_ok)
    if as_json:
        click.echo(json.dumps({"removed": report.patents, "figures": report.figures, "files": report.files,
                               "indexes": [{"modality": i.modality, "action": i.action, "count": i.count,
                                            "seconds": round(i.seconds, 3)} for i in report.indexes],
                               "notes": report.notes}, sort_keys=True))
        return
    click.echo(f"removed {len(report.patents)} patent(s) with {report.figures} figures "
               f"({report.files} image files): {', '.join(report.patents) or '-'}")
    for item in report.indexes:
        click.echo(f"{item.modality:6} index: {item.action}, {item.count} vectors, {item.seconds:.1f} s")
    for note in report.notes:
        click.echo(f"note: {note}")
