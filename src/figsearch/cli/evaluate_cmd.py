"""CLI commands of the evaluate stage (see figsearch.cli)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from figsearch.cli.base import collection_option, json_option, main, rerank_default_text
from figsearch.search.query import MODES

_MODE_HELP = ", ".join(MODES)


class _Progress:
    """A tqdm bar per evaluated collection, started once the number of searches is known."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def start(self, total: int, label: str) -> None:
        self.close()
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"searching {Path(label).name}", unit="search", leave=False)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _modes(values: tuple[str, ...]) -> list[str]:
    modes = [m.strip() for value in values for m in value.split(",") if m.strip()]
    return modes or list(MODES)


@main.command("evaluate")
@collection_option
@click.option("--qrels", "qrels_file", type=click.Path(dir_okay=False), help="TREC qrels file (qid 0 docid rel).")
@click.option(
    "--rule",
    "rules",
    multiple=True,
    help="Judge by rule instead of a qrels file: same-patent, or same-class:SCHEME:DEPTH "
    "(SCHEME: CPC, IPC, USPC, Locarno). Repeat to combine.",
)
@click.option(
    "--combine",
    type=click.Choice(["sum", "max", "all"]),
    default="sum",
    show_default=True,
    help="How several rules' grades combine (all: relevant only when every rule says so).",
)
@click.option(
    "--queries",
    default="all",
    show_default=True,
    help="all (every eligible judged figure), sample:N:SEED, or a file with one figure id per line.",
)
@click.option("-k", "k", type=click.IntRange(min=1), default=50, show_default=True, help="Hits per query.")
@click.option("--modes", "modes", multiple=True, help=f"Modes to evaluate, comma-separated ({_MODE_HELP}); default all.")
@click.option("--measures", help="Comma-separated ir_measures names; default AP@k,P@10,R@k,RR,nDCG@10.")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Where to write reports, qrels and runs "
              "[default: COLLECTION/eval].")
@click.option("--compare", "compare_dir", type=click.Path(file_okay=False),
              help="A second collection (other documents or other model settings) evaluated side by side.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap and randomisation tests.")
@click.option("--rerank/--no-rerank", "rerank", default=None,
              help="Re-rank the visual candidates (alpha-query expansion with database-side augmentation, search/rerank.py) in "
                   f"every search, or not [default: {rerank_default_text()}].")
@click.option("--neighbour-text/--no-neighbour-text", "neighbour_text", default=None,
              help="Modes visual and auto: a query drawing without words borrows the texts of its nearest drawings "
                   "(search/neighbour_text.py), or not [default: the search service's default, on in auto, off in visual].")
@json_option
def evaluate_command(
    collection, qrels_file, rules, combine, queries, k, modes, measures, out, compare_dir, seed, rerank,
    neighbour_text, as_json
):
    """Measure retrieval quality per mode (text, visual, max, avg, rrf, zavg, auto) against judgments.

    Prints the table (one row per mode: AP@k with its 95% bootstrap interval, P@10, R@k, RR = MRR,
    nDCG@10, number of queries), paired tests between the modes, and writes report.md,
    report.json, qrels.txt, queries.txt, runs/MODE.run (TREC) and per_query.tsv under --out.
    With --json, prints {mode: {measure: value}} (with --compare: {"A": ..., "B": ...}).
    """
    from figsearch.evaluate import experiment, report

    judgments = experiment.Judgments(qrels_file=qrels_file, rules=tuple(rules), combine=combine)
    options = dict(
        queries=queries,
        k=k,
        modes=_modes(modes),
        measures=[m.strip() for m in measures.split(",") if m.strip()] if measures else None,
        seed=seed,
    )
    if rerank is not None or neighbour_text is not None:
        options["backend_factory"] = experiment.query_options_factory(rerank=rerank, neighbour_text=neighbour_text)
    progress = _Progress(enabled=not as_json)
    try:
        if compare_dir:
            result = experiment.compare(collection, compare_dir, judgments, progress=progress, **options)
            out_dir = experiment.output_dir(out or Path(collection) / "eval")
            written = report.write_comparison(result, out_dir)
            payload = {"A": report.summary(result.a), "B": report.summary(result.b)}
            text = report.comparison_markdown(result)
        else:
            result = experiment.evaluate(collection, judgments, progress=progress, **options)
            out_dir = experiment.output_dir(out or Path(collection) / "eval")
            written = report.write(result, out_dir)
            payload = report.summary(result)
            text = report.to_markdown(result)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(text)
        click.echo(f"written: {', '.join(str(p) for p in written if p.suffix in ('.md', '.json'))} (and qrels, runs)")
