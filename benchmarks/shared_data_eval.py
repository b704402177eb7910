"""Retrieval quality on the shared patent data: the reference-style table for the same-patent rule.

Builds a collection from ``../shared/data`` — the 50 US design grants, the 104 design PDFs, the 1,087
designs of 2007, the UPAIR utility figures and the 17 utility patents' sheets (the last three mostly
as distractors) — runs ingest, OCR + linking and indexing with the offline encoders, then evaluates
every mode (text, visual, max, avg, rrf, zavg, auto) with the same-patent rule (DeepPatent protocol: the other
drawing sheets of the query's patent are relevant; front pages and abstract images are neither
queries nor results; AP divides by all relevant sheets) and prints the table twice: over every
eligible query, and over the design grants' sheets only (the set the search and encoder issues quote),
each followed by every mode's AP@k as a ratio to the best single modality (visual or text) of the run.

Usage (from the repository root; about 15-30 minutes on 2 cores)::

    nice -n 10 python benchmarks/shared_data_eval.py \\
        [--data ../shared/data] [--work /tmp/figsearch-eval] [--reuse] [-k 50] [--index-args "..."] [--rerank]

The collection is rebuilt from scratch unless ``--reuse`` is given; every step is deterministic
(no sampling; bootstrap and randomisation tests seeded), so a rerun prints the same numbers.
Reports, qrels and TREC runs land in WORK/eval-all and WORK/eval-design-grants (with ``--rerank``, the
re-ranked runs also in WORK/eval-all-rerank and WORK/eval-design-grants-rerank).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("us-design-grants", "us-design-pdfs", "us-design-2007", "upair-queries", "us-utility-sheets")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FIGSEARCH_SHARED_DATA", REPO.parent / "shared" / "data")),
        help="The shared data folder [default: $FIGSEARCH_SHARED_DATA or ../shared/data].",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/figsearch-eval"))
    parser.add_argument("--reuse", action="store_true", help="Keep an existing collection in WORK (skip the build).")
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--ingest-args", default="", help="Extra arguments for figsearch ingest.")
    parser.add_argument("--ocr-args", default="", help="Extra arguments for figsearch ocr.")
    parser.add_argument("--index-args", default="", help="Extra arguments for figsearch index (e.g. the encoders).")
    parser.add_argument("--rerank", action="store_true",
                        help="Also evaluate with the visual re-ranking on (figsearch evaluate --rerank) and print both.")
    args = parser.parse_args()

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_THREAD_LIMIT="1")
    collection = args.work / "collection"
    missing = [s for s in SOURCES if not (args.data / s).is_dir()]
    if missing:
        print(f"shared data incomplete at {args.data}: missing {', '.join(missing)}", file=sys.stderr)
        return 2

    timings: dict[str, float] = {}
    commands: list[str] = []
    if not args.reuse or not (collection / "figsearch.sqlite").exists():
        shutil.rmtree(collection, ignore_errors=True)
        collection.parent.mkdir(parents=True, exist_ok=True)
        steps = [
            ("ingest", ["ingest", *[str(args.data / s) for s in SOURCES], "--collection", str(collection),
                        "--skip-ocr", *shlex.split(args.ingest_args)]),  # OCR timed as its own step
            ("ocr+link", ["ocr", "--collection", str(collection), *shlex.split(args.ocr_args)]),
            ("index", ["index", "--collection", str(collection), *shlex.split(args.index_args)]),
        ]
        for name, cli in steps:
            command = [sys.executable, "-m", "figsearch", *cli]
            commands.append("figsearch " + shlex.join(cli))
            start = time.perf_counter()
            done = subprocess.run(command, env=env, cwd=REPO)
            timings[name] = time.perf_counter() - start
            if done.returncode != 0:
                print(f"step {name} failed ({done.returncode}): {shlex.join(command)}", file=sys.stderr)
                return done.returncode

    # evaluation in this process, through the same code as `figsearch evaluate`
    os.environ.update({k: env[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OMP_THREAD_LIMIT")})
    from figsearch.evaluate import experiment, report
    from figsearch.evaluate.rules import build_qrels, load_pool, parse_rule
    from figsearch.store import Collection

    with Collection.open(collection) as c:
        counts = c.counts()
        pool = load_pool(c)
        judged = build_qrels(c, [parse_rule("same-patent")], pool=pool)
        grants = (args.data / "us-design-grants").resolve()
        from_grants = {
            pub for pub, source in c.patents.source_paths().items()
            if source and Path(source).resolve().is_relative_to(grants)
        }
        # the design grants' sheets that have another sheet of their patent to find
        design_grant_figures = sorted(f for f in judged if pool.figures[f].patent in from_grants)
    query_file = args.work / "design-grant-queries.txt"
    query_file.write_text("".join(f + "\n" for f in design_grant_figures))

    results = {}
    per_search = {}
    for rerank in (False, True) if args.rerank else (False,):
        suffix = " + rerank" if rerank else ""
        flag = " --rerank" if rerank else " --no-rerank"
        start = time.perf_counter()
        ev = experiment.evaluate(collection, experiment.Judgments(rules=("same-patent",)), queries="all", k=args.k,
                                 backend_factory=experiment.reranking_factory(rerank))
        timings["evaluate" + suffix] = time.perf_counter() - start
        per_search["evaluate" + suffix] = 1000 * timings["evaluate" + suffix] / (len(ev.queries) * len(ev.runset.runs))
        tag = "-rerank" if rerank else ""
        results["all" + suffix] = (ev, f"eval-all{tag}")
        commands.append(
            f"figsearch evaluate --collection {collection} --rule same-patent -k {args.k}{flag} "
            f"--out {args.work / ('eval-all' + tag)}"
        )
        if design_grant_figures:
            # the same runs re-scored on the design grants' sheets (identical to --queries FILE, without searching again)
            results["design-grants" + suffix] = (experiment.restrict(ev, design_grant_figures), f"eval-design-grants{tag}")
            commands.append(
                f"figsearch evaluate --collection {collection} --rule same-patent --queries {query_file} -k {args.k}"
                f"{flag} --out {args.work / ('eval-design-grants' + tag)}"
            )
        else:
            print("no figure of the collection comes from us-design-grants: second table skipped", file=sys.stderr)
    for name, (result, folder) in results.items():
        report.write(result, experiment.output_dir(args.work / folder))

    print("# figsearch on the shared data: same-patent retrieval\n")
    print("Commands:\n")
    for command in commands:
        print(f"    {command}")
    print(f"\nCollection: {json.dumps(counts, sort_keys=True)}")
    print("Time per step (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print("Evaluation time per search, all included (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in per_search.items()))
    for name, (ev, _) in results.items():
        print()
        print(f"### queries: {name}\n")
        print(report.to_markdown(ev))
        print(ratio_line(report.summary(ev), f"AP@{args.k}"))
    return 0


def ratio_line(means: dict[str, dict[str, float]], measure: str) -> str:
    """Each mode's ``measure`` as a ratio to the best single modality (visual or text) of this run."""
    single = {m: means[m][measure] for m in ("visual", "text") if m in means and measure in means[m]}
    if not single or max(single.values()) <= 0:
        return f"\n(no single-modality {measure} in this run to compare with)"
    best = max(single, key=single.get)
    ratios = ", ".join(f"{mode} {values[measure] / single[best]:.2f}x" for mode, values in means.items() if measure in values)
    return f"\n{measure} against the best single modality of this run ({best}, {single[best]:.3f}): {ratios}"


if __name__ == "__main__":
    sys.exit(main())
