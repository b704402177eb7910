"""``figsearch info``: what a collection holds (patents, figures, formats, failures)."""

from __future__ import annotations

import json

import click

from figsearch.cli.base import collection_option, json_option, main


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
