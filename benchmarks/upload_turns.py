"""How an upright-first rule for uploads (``SearchService(upright_confident=T)``, off by default)
would change the answers, and what it would save.

With the rule, an uploaded drawing is encoded upright first; its three other quarter turns are
encoded (and searched with) only when the upright drawing's best match in the visual index scores
below T.
For each query image this script runs the visual search twice on one collection, without the
service's cache of recent uploads:

- with every turn (the service's default), and
- with the upright drawing alone (what the rule does when it fires),

and for each threshold asked (``--thresholds``) counts the queries on which the rule fires and the
ones whose top ``--k`` would differ (the same figures in the same order with the same scores, or
not; a differing query's two lists are printed), and the hits of the query's own patent in each top
``--k`` (the DeepPatent relevance: a design patent's other sheets show the same object; the query
sheet itself counts in both). CPU per search of both, this thread's.

Queries: image files (``--images``: files, or folders searched for ``*.tif``/``*.png``; a design
grant's front page ``-D00000`` is left out, as in the DeepPatent protocol), and/or ``--crops N``:
N drawings of the collection itself, each with a random crop of its margins (up to 2 % a side), as
``load_test.py`` uploads them.

    python benchmarks/upload_turns.py --collection /tmp/c50 --images ../shared/data/us-design-grants
    python benchmarks/upload_turns.py --collection /tmp/c07 --crops 60 --images odd-2007-folder

Choose a threshold on data other than the design grants (they are for evaluation only).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path


def query_files(paths: list[Path], limit: int | None, seed: int) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".tif", ".tiff", ".png", ".jpg"))
        else:
            files.append(path)
    files = [f for f in files if "-D00000" not in f.name.upper()]
    if limit and len(files) > limit:
        files = sorted(random.Random(seed).sample(files, limit))
    return files


def crops_of(collection: Path, count: int, seed: int) -> list[tuple[str, object]]:
    from figsearch.records import FigureRole
    from figsearch.search.inputs import load_query_image
    from figsearch.store import Collection

    rng = random.Random(seed)
    with Collection.open(collection) as store:
        figures = [f for f in store.figures(roles=(FigureRole.DRAWING,)) if f.image_path]
        rng.shuffle(figures)
        out = []
        for figure in figures[:count]:
            image = load_query_image(store.path(figure.image_path), figure.figure_id)
            w, h = image.size
            box = (round(rng.uniform(0, 0.02) * w), round(rng.uniform(0, 0.02) * h),
                   round(rng.uniform(0.98, 1) * w), round(rng.uniform(0.98, 1) * h))
            out.append((f"crop of {figure.figure_id} ({figure.patent})", image.crop(box)))
    return out


def hits_of(result) -> list[tuple[str, str]]:
    return [(hit.figure_id, repr(hit.score)) for hit in result.hits]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--images", type=Path, nargs="*", default=[], help="query image files or folders")
    parser.add_argument("--limit", type=int, help="at most this many image files (a seeded sample)")
    parser.add_argument("--crops", type=int, default=0, help="also this many cropped drawings of the collection")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--thresholds", default="0.8,0.85,0.9,0.95",
                        help="upright-match scores at or above which the rule skips the other turns")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--show", type=int, default=10, help="print at most this many differing queries")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from figsearch.search.inputs import load_query_image
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService
    from figsearch.store import Collection

    queries: list[tuple[str, object]] = [(str(f), f) for f in query_files(args.images, args.limit, args.seed)]
    queries += crops_of(args.collection, args.crops, args.seed) if args.crops else []
    if not queries:
        raise SystemExit("no queries: give --images and/or --crops")
    every = SearchService(Collection.open(args.collection), owns=True, query_cache=0, upright_confident=None)
    upright = SearchService(Collection.open(args.collection), owns=True, query_cache=0, upright_confident=-2.0)
    for service in (every, upright):
        service.limit_threads(1)  # as the server runs it
        service.warm()
    def own(name: str, result) -> int:
        """Hits of the query's own patent (a file's from its name, USD0907292-...; a crop's from its figure)."""
        stem = name.rsplit("(", 1)[1].rstrip(")") if name.endswith(")") else Path(name).name.split("-")[0]
        return sum(1 for hit in result.hits if hit.patent.startswith(stem) or stem.startswith(hit.patent))

    rows = []
    cpu_every, cpu_upright = [], []
    for name, source in queries:
        image = load_query_image(source, name) if isinstance(source, Path) else source
        started = time.thread_time()
        a = every.search(Query(image=image, mode="visual", k=args.k))
        cpu_every.append((time.thread_time() - started) * 1000)
        started = time.thread_time()
        b = upright.search(Query(image=image, mode="visual", k=args.k))
        cpu_upright.append((time.thread_time() - started) * 1000)
        assert a.timings.get("turns") == len(every.query_rotations) and b.timings.get("turns") == 1.0, (a.timings, b.timings)
        ha, hb = hits_of(a), hits_of(b)
        rows.append({
            "query": name,
            "upright_score": b.timings["upright_score"],
            "same": ha == hb,
            "same_figures": [f for f, _ in ha] == [f for f, _ in hb],
            "same_set": {f for f, _ in ha} == {f for f, _ in hb},
            "overlap": len({f for f, _ in ha} & {f for f, _ in hb}),
            "own_patent": [own(name, a), own(name, b)],
            "every_turn": ha,
            "upright_only": hb,
        })
    print(f"{len(rows)} queries on {args.collection}, visual mode, top {args.k}; CPU per search (this thread, "
          f"median): every turn {statistics.median(cpu_every):.1f} ms, upright alone {statistics.median(cpu_upright):.1f} ms")
    print(f"upright-alone top {args.k} equal to every turn's (figures, order and scores) on {sum(r['same'] for r in rows)} "
          f"of {len(rows)} queries when forced on all of them")
    summary = []
    for threshold in [float(t) for t in args.thresholds.split(",")]:
        fired = [r for r in rows if r["upright_score"] >= threshold]
        differ = [r for r in fired if not r["same"]]
        line = {
            "threshold": threshold, "queries": len(rows), "fired": len(fired),
            "same_top_k": len(rows) - len(differ), "differ": len(differ),
            "differ_same_set": sum(r["same_set"] for r in differ),
            "differ_mean_overlap": round(statistics.fmean(r["overlap"] for r in differ), 2) if differ else None,
            "mean_turns": round((len(fired) * 1 + (len(rows) - len(fired)) * 4) / len(rows), 2),
        }
        summary.append(line)
        print(f"  threshold {threshold}: fires on "
              f"{len(fired)} of {len(rows)} queries (mean turns encoded {line['mean_turns']}); the same top {args.k} on "
              f"{line['same_top_k']} of {len(rows)}; of the {len(differ)} that differ, {line['differ_same_set']} hold the "
              f"same figures in another order, mean overlap {line['differ_mean_overlap']} of {args.k}")
    for r in [r for r in rows if not r["same"]][: args.show]:
        print(f"  differs: {r['query']} (upright match {r['upright_score']})")
        for rank, (x, y) in enumerate(zip(r["every_turn"], r["upright_only"]), start=1):
            mark = "" if x == y else "   <-"
            print(f"    {rank:2d}. every turn {x[0]} {float(x[1]):.4f} | upright {y[0]} {float(y[1]):.4f}{mark}")
    print(f"hits of the query's own patent in the top {args.k}, mean over the queries: every turn "
          f"{statistics.fmean(r['own_patent'][0] for r in rows):.2f}, upright alone "
          f"{statistics.fmean(r['own_patent'][1] for r in rows):.2f} (more with upright alone on "
          f"{sum(r['own_patent'][1] > r['own_patent'][0] for r in rows)} queries, fewer on "
          f"{sum(r['own_patent'][1] < r['own_patent'][0] for r in rows)})")
    scores = sorted(r["upright_score"] for r in rows)
    print("upright match scores: min {:.3f}, p25 {:.3f}, median {:.3f}, p75 {:.3f}, max {:.3f}".format(
        scores[0], scores[len(scores) // 4], scores[len(scores) // 2], scores[3 * len(scores) // 4], scores[-1]))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows,
                                         "cpu_ms": {"every": cpu_every, "upright": cpu_upright}}, indent=1))
    every.close()
    upright.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
