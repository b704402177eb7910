"""Class-level retrieval on the 2007 US designs: drawings *of the same kind of thing*, not of the same patent.

Builds a collection of one parity of ``us-design-2007`` (default: the ODD-numbered patents, the
class-level evaluation set; ``--parity even`` gives the training-side twin used to choose settings),
one 512 px drawing per patent with its title as text and its USPC design class from
``metadata_2007.txt``, through a temporary folder of symlinks (the chosen images plus the metadata
rows of those patents) read by ``figsearch ingest``. OCR is skipped: design drawings carry no
reference signs, so the only text is the title. The collection is then indexed once per visual
encoder (``hog``, ``lines`` and the default ``drawing``; ``--encoder NAME`` adds any other name
that ``figsearch index --visual-model`` accepts) and every mode is evaluated with::

    figsearch evaluate --collection C --rule same-class:USPC:1 -k 50

(relevant = another patent of the same USPC design class, e.g. D2 for apparel; AP@50 divides by all
relevant drawings, trec_eval's definition). The table prints AP@50 per encoder and mode, and each
row's ratio to the ``hog`` row of the same run.

Usage (from the repository root; about 10 minutes on 2 cores for the three encoders)::

    nice -n 10 python benchmarks/class_level_eval.py \\
        [--data ../shared/data] [--work /tmp/figsearch-class] [--parity odd|even] \\
        [--encoder NAME ...] [--encoders hog,lines,drawing] [--reuse] [-k 50] [--modes ...] \\
        [--rerank drawing|all]

``--words ENCODER`` (e.g. ``backbone``, whose text adapter maps words into the drawing space) also
measures words -> drawings: a copy of the collection indexed with ``--visual-model ENCODER
--text-model none`` (no text in the index: the drawings carry none), and each patent's title
searching it through the search service, ``Query(text=TITLE, mode="visual", k)``. Relevant: the
patent's own drawing (same patent), or every drawing of its USPC design class, its own included
(same class). Against the mean of 20 seeded random rankings of the same drawings.

Everything is deterministic (no sampling; the random baseline is seeded), so a rerun prints the
same numbers. Reports, qrels and TREC runs land in WORK/PARITY/eval-ENCODER.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = "us-design-2007"
METADATA = "metadata_2007.txt"
RULE = "same-class:USPC:1"
DEFAULT_ENCODERS = ("hog", "lines", "drawing")
_NUMBER = re.compile(r"(\d+)$")


def parity_of(name: str) -> str | None:
    """``USD0534331`` -> ``odd``; None when the name ends in no digits."""
    found = _NUMBER.search(name)
    if not found:
        return None
    return "odd" if int(found.group(1)) % 2 else "even"


def make_source(data: Path, parity: str, folder: Path) -> int:
    """A folder of symlinks to the chosen parity's drawings plus their metadata rows; returns how many."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    chosen = set()
    for image in sorted((data / SOURCE).glob("*.png")):
        if parity_of(image.stem) == parity:
            (folder / image.name).symlink_to(image.resolve())
            chosen.add(image.stem)
    rows = [
        line for line in (data / SOURCE / METADATA).read_text(encoding="utf-8").splitlines()
        if line.split("\t", 1)[0].strip() in chosen
    ]
    (folder / METADATA).write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    return len(chosen)


def run(cli: list[str], env: dict, capture: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "figsearch", *cli]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=capture, text=True)
    if done.returncode != 0:
        if capture:
            sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"failed ({done.returncode}): figsearch {shlex.join(cli)}")
    return done


def words_to_drawings(collection: Path, k: int) -> dict[str, float]:
    """Titles as text queries over a visual-only collection: AP@k (same patent, same class) and random."""
    import random

    from figsearch.evaluate.metrics import mean, per_query
    from figsearch.evaluate.rules import build_qrels, load_pool, parse_rule
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService

    measure = f"AP@{k}"
    with SearchService.open(collection) as service:
        pool = load_pool(service.collection)
        same_class = build_qrels(service.collection, [parse_rule(RULE)], pool=pool)
        titles = {p: service.collection.patents.title(p) for p in pool.by_patent}
        queries = [f for f in sorted(pool.figures) if titles.get(pool.figures[f].patent)]
        qrels = {
            "same patent": {f: dict.fromkeys(pool.by_patent[pool.figures[f].patent], 1) for f in queries},
            "same class": {f: {**same_class.get(f, {}), f: 1} for f in queries},
        }
        run, ranks, start = {}, [], time.perf_counter()
        for f in queries:
            result = service.search(Query(text=titles[pool.figures[f].patent], mode="visual", k=k))
            run[f] = [(h.figure_id, h.score) for h in result.hits]
            found = [h.figure_id for h in result.hits]
            ranks.append(found.index(f) + 1 if f in found else None)
        per_search = 1000 * (time.perf_counter() - start) / max(1, len(queries))
    everything = sorted(pool.figures)
    out = {"queries": len(queries), "ms per search": per_search,
           "own drawing in the top 10": sum(1 for r in ranks if r and r <= 10) / max(1, len(queries))}
    for name, judged in qrels.items():
        out[name] = mean(per_query(judged, run, [measure], queries)[measure])
        randoms = []
        for seed in range(20):
            order = everything[:]
            random.Random(seed).shuffle(order)
            shuffled = {f: [(d, float(-i)) for i, d in enumerate(order[:k])] for f in queries}
            randoms.append(mean(per_query(judged, shuffled, [measure], queries)[measure]))
        out[f"{name}, random"] = sum(randoms) / len(randoms)
    return out


def print_tables(results: dict[str, dict], modes: list[str], measure: str) -> None:
    print("| visual encoder | " + " | ".join(modes) + " |")
    print("|---|" + "---:|" * len(modes))
    hog = results["hog"]
    for encoder, result in results.items():
        print(f"| `{encoder}` | " + " | ".join(f"{result[m][measure]:.3f}" for m in modes) + " |")
    print()
    print("Ratio to `hog` in the same run (same mode):\n")
    print("| visual encoder | " + " | ".join(modes) + " |")
    print("|---|" + "---:|" * len(modes))
    for encoder, result in results.items():
        cells = []
        for m in modes:
            base_value = hog.get(m, {}).get(measure)
            cells.append(f"{result[m][measure] / base_value:.2f}×" if base_value else "–")
        print(f"| `{encoder}` | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FIGSEARCH_SHARED_DATA", REPO.parent / "shared" / "data")),
        help="The shared data folder [default: $FIGSEARCH_SHARED_DATA or ../shared/data].",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/figsearch-class"))
    parser.add_argument("--parity", choices=("odd", "even"), default="odd",
                        help="odd: the evaluation set (default); even: the training side, for choosing settings.")
    parser.add_argument("--encoders", default=",".join(DEFAULT_ENCODERS),
                        help="Comma-separated visual encoders to index with [default: hog,lines,drawing]; "
                             "'none' evaluates no encoder (with --words: words -> drawings only).")
    parser.add_argument("--encoder", action="append", default=[],
                        help="One more visual encoder name (repeatable), e.g. a new model's registry name.")
    parser.add_argument("--reuse", action="store_true", help="Keep existing collections in WORK (skip ingest/index).")
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--modes", default="", help="Modes to evaluate (comma-separated); default: all.")
    parser.add_argument("--jobs", type=int, default=1, help="Ingest worker processes [default: 1].")
    parser.add_argument("--rerank", default="", metavar="ENCODERS",
                        help="Also evaluate these encoders (comma-separated, or 'all') with the visual re-ranking on "
                             "(figsearch evaluate --rerank).")
    parser.add_argument("--words", default="", metavar="ENCODER",
                        help="Also measure words -> drawings with this visual encoder (it needs a text adapter, "
                             "e.g. backbone): titles search a copy indexed without text.")
    args = parser.parse_args()

    names = [] if args.encoders == "none" else [e.strip() for e in args.encoders.split(",") if e.strip()]
    encoders = list(dict.fromkeys([*names, *args.encoder]))
    if encoders and "hog" not in encoders:
        encoders.insert(0, "hog")  # the baseline every row is divided by
    if not (args.data / SOURCE / METADATA).is_file():
        print(f"shared data incomplete: {args.data / SOURCE / METADATA} is missing", file=sys.stderr)
        return 2
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_THREAD_LIMIT="1")
    work = args.work / args.parity
    base = work / "collection"
    timings: dict[str, float] = {}
    commands: list[str] = []

    if not args.reuse or not (base / "figsearch.sqlite").exists():
        count = make_source(args.data, args.parity, work / "source")
        shutil.rmtree(base, ignore_errors=True)
        cli = ["ingest", str(work / "source"), "--collection", str(base), "--skip-ocr", "-q", "-j", str(args.jobs)]
        commands.append("figsearch " + shlex.join(cli))
        start = time.perf_counter()
        run(cli, env)
        timings["ingest"] = time.perf_counter() - start
        print(f"{count} {args.parity}-numbered drawings ingested", file=sys.stderr)

    results: dict[str, dict] = {}
    per_search: dict[str, float] = {}
    for encoder in encoders:
        collection = work / f"collection-{encoder.replace(':', '_').replace('/', '_')}"
        if not args.reuse or not (collection / "figsearch.sqlite").exists():
            shutil.rmtree(collection, ignore_errors=True)
            shutil.copytree(base, collection, symlinks=True)
            cli = ["index", "--collection", str(collection), "--visual-model", encoder, "-q"]
            commands.append("figsearch " + shlex.join(cli))
            start = time.perf_counter()
            run(cli, env)
            timings[f"index {encoder}"] = time.perf_counter() - start
        also = args.rerank == "all" or encoder in args.rerank.split(",")
        for rerank in (False, True) if also else (False,):
            name = encoder.replace(":", "_").replace("/", "_") + ("-rerank" if rerank else "")
            cli = ["evaluate", "--collection", str(collection), "--rule", RULE, "-k", str(args.k),
                   "--out", str(work / f"eval-{name}"), "--json", "--rerank" if rerank else "--no-rerank"]
            if args.modes:
                cli += ["--modes", args.modes]
            commands.append("figsearch " + shlex.join(cli))
            start = time.perf_counter()
            done = run(cli, env, capture=True)
            label = f"{encoder} + rerank" if rerank else encoder
            timings[f"evaluate {label}"] = time.perf_counter() - start
            results[label] = json.loads(done.stdout)
            report = json.loads((work / f"eval-{name}" / "report.json").read_text())
            searches = int(report.get("queries", 0)) * len(results[label])
            if searches:
                per_search[label] = 1000 * timings[f"evaluate {label}"] / searches

    words = None
    if args.words:
        collection = work / f"collection-words-{args.words.replace(':', '_').replace('/', '_')}"
        if not args.reuse or not (collection / "figsearch.sqlite").exists():
            shutil.rmtree(collection, ignore_errors=True)
            shutil.copytree(base, collection, symlinks=True)
            cli = ["index", "--collection", str(collection), "--visual-model", args.words, "--text-model", "none", "-q"]
            commands.append("figsearch " + shlex.join(cli))
            start = time.perf_counter()
            run(cli, env)
            timings[f"index {args.words} without text"] = time.perf_counter() - start
        commands.append(f"words -> drawings: Query(text=TITLE, mode='visual', k={args.k}) over {collection}")
        start = time.perf_counter()
        words = words_to_drawings(collection, args.k)
        timings["words -> drawings"] = time.perf_counter() - start

    measure = f"AP@{args.k}"
    modes = list(dict.fromkeys(m for r in results.values() for m in r))
    print(f"# figsearch class level: {args.parity}-numbered us-design-2007, rule {RULE}, {measure}\n")
    print("Commands:\n")
    for command in commands:
        print(f"    {command}")
    print("\nTime per step (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    if per_search:
        print("Evaluation time per search, all included (ms): "
              + ", ".join(f"{k} {v:.1f}" for k, v in per_search.items()))
    print()
    if results:
        print_tables(results, modes, measure)
    if words is not None:
        print(f"\nWords -> drawings (`{args.words}`, no text in the index; {words['queries']} titles as queries, "
              f"mode visual; {words['ms per search']:.0f} ms per search):\n")
        print(f"| relevant | {measure} | random | ratio |")
        print("|---|---:|---:|---:|")
        for name in ("same patent", "same class"):
            value, chance = words[name], words[f"{name}, random"]
            print(f"| {name} | {value:.4f} | {chance:.4f} | {value / chance:.1f}× |")
        print(f"\nThe patent's own drawing is in the first 10 for {100 * words['own drawing in the top 10']:.1f} % of the titles.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
