"""``figsearch info``: what a collection holds (patents, figures, formats, failures) and what is searchable
(each modality's encoder and index, as ``figsearch.open(DIR).info()`` and ``/api/info`` give them)."""

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
    """Counts of what a collection holds: patents, figures, formats, failures; and what is searchable: each
    modality's encoder and how many of its vectors are indexed; for a collection built by an older figsearch,
    what it lacks against today's defaults and the command that brings it ("upgrade" lines)."""
    from figsearch.ingest.report import collection_info
    from figsearch.store import Collection

    from figsearch.pipeline.upgrade import upgrade_advice

    with Collection.open(collection) as store:
        info = collection_info(store)
        info["schema_version"] = store.schema_version
        advice = upgrade_advice(store)
    info["upgrades"] = [a.as_dict() for a in advice]
    info.update(_searchable(collection))
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
    for modality, index in info.get("indexes", {}).items():
        spec = info["encoders"][modality]["spec"]
        built = f", built {index['built_at'][:16].replace('T', ' ')}" if index.get("built_at") else ""
        if index.get("updated_at"):
            built += f", added to {index['updated_at'][:16].replace('T', ' ')}"
        click.echo(f"{modality:<11} {index['indexed']} of {index['vectors']} vectors indexed "
                   f"({spec}; {index['factory'] or 'no index'}{built})")
    if not info.get("indexes"):
        click.echo("indexes     none yet: nothing is searchable (figsearch index)")
    for item in advice:
        click.echo(f"upgrade     {item.what}: {for_shell(item.command, collection)}")
    click.echo(f"failures    {info['failures']}")
    for item in info["failed"][:show_failures]:
        click.echo(f"  {item['source']}: {item['reason']}")
    if info["failures"] > show_failures:
        click.echo(f"  ... and {info['failures'] - show_failures} more (figsearch info --json lists all)")


def _searchable(collection) -> dict:
    """The encoders and indexes of the collection's modalities (none before ``figsearch index``)."""
    from figsearch.api import open as open_collection
    from figsearch.errors import FigsearchError

    try:
        with open_collection(collection) as coll:
            found = coll.info()
    except FigsearchError:  # a collection without indexes yet: counts alone
        return {}
    return {"encoders": found.get("encoders", {}), "indexes": found.get("indexes", {})}


def for_shell(command: str, collection) -> str:
    """An advice's command with DIR replaced by the collection's path, quoted for a shell where it needs it."""
    import shlex

    return command.replace(" DIR", " " + shlex.quote(str(collection)))


def _pairs(mapping: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(mapping.items())) or "-"
