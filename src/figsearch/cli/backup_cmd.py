"""``figsearch backup``: a consistent copy of a collection, also while it is served."""

from __future__ import annotations

import json

import click

from figsearch.cli.base import collection_option, json_option, main


@main.command("backup")
@collection_option
@click.argument("destination", type=click.Path(file_okay=False))
@click.option("--link", is_flag=True,
              help="Hard-link the drawings and thumbnails instead of copying them (same file system; they are "
                   "never changed in place, so the backup keeps its bytes).")
@json_option
def backup_command(collection, destination, link, as_json):
    """Copy the collection to DESTINATION (a new folder), consistent even while it is served: the database by
    SQLite's online backup, the rest file by file, holding the writer lock meanwhile (a build started during
    the copy is refused and can be rerun; searches go on). The copy is a collection of its own: serve it, move
    it, or copy it back."""
    from figsearch.store.backup import backup_collection

    report = backup_collection(collection, destination, link=link)
    if as_json:
        click.echo(json.dumps(vars(report), sort_keys=True))
        return
    linked = f", {report.linked} of them hard-linked" if report.linked else ""
    click.echo(f"backed up {collection} to {report.destination}: {report.files} files{linked}, "
               f"{report.bytes / 1e6:.1f} MB copied, in {report.seconds:.1f} s")
