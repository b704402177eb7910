"""What the other quarter turns of an uploaded drawing change in its answers, and what they cost.

The service searches an upload upright alone by default (``SearchService(upright_confident=-1.0)``,
stop 21), every turn with ``Query.all_turns``; ``upright_confident=T`` is the upright-first rule of
stop 17: the three other quarter turns are encoded (and searched with) only when the upright
drawing's best match in the visual index scores below T.
For each query image this script runs the visual search twice on one collection, without the
service's cache of recent uploads:

- with every turn (``all_turns``), and
- with the upright drawing alone (the default; what the rule does when it fires),

and for each threshold asked (``--thresholds``) counts the queries on which the rule fires and the
ones whose top ``--k`` would differ (the same figures in the same order with the same scores, or
not; a differing query's two lists are printed), and the hits of the query's own patent in each top
``--k`` (the DeepPatent relevance: a design patent's other sheets show the same object; the query
sheet itself counts in both). CPU per search of both, this thread's.

Queries: image files (``--images``: files, or folders searched for ``*.tif``/``*.png``; a design
grant's front page ``-D00000`` is left out, as in the DeepPatent protocol), and/or ``--crops N``:
N drawings of the collection itself, each with a random crop of its margins (up to 2 % a side), as
``load_test.py`` uploads them, and/or ``--leave-out N``: drawings NEW to the collection. One drawing
of each of N patents (a seeded sample of those with two drawings or more) is deleted from a copy of
the collection (``--scratch``; its index rebuilt from the stored vectors, nothing re-encoded) and
uploaded to that copy, so the patent's other drawings are the relevant ones and the drawing itself
is not there to be found. ``--folds F`` repeats that with F disjoint draws of held-out drawings.

``--turn-sets 0,180`` also searches each query with that set of orientations (every turn and the
upright one alone are always searched). Per set the script prints the relevant hits per top ``--k``
and AP@``k`` (trec_eval's: divided by all relevant drawings in the searched collection; relevant: the
query's patent's drawings, or with ``--relevance same-class:USPC:1`` those of the patents of its class
as ``figsearch evaluate`` judges them, e.g. on the even-numbered 2007 designs with ``--leave-out N
--patents-absent``), and CPU per search; per threshold, what the upright-first rule would give. For held-out drawings it
also prints in which orientation each one best matches its own patent's other drawings (how often a
new drawing is turned against its patent's others).

    python benchmarks/upload_turns.py --collection /tmp/c50 --images ../shared/data/us-design-grants
    python benchmarks/upload_turns.py --collection /tmp/c07 --crops 60 --images odd-2007-folder
    python benchmarks/upload_turns.py --collection /tmp/pdfs --leave-out 100 --folds 2 --turn-sets 0,180

Choose a threshold on data other than the design grants (they are for evaluation only).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np


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


def held_out(collection: Path, count: int, folds: int, seed: int, scratch: Path,
             turned: tuple[int, ...] = (), absent: bool = False,
             only: set[str] | None = None) -> list[tuple[Path, list[tuple[str, object]]]]:
    """``folds`` copies of ``collection`` under ``scratch``, each without one drawing of each of ``count``
    patents (seeded, disjoint between folds), with its index rebuilt from the stored vectors; per copy,
    the held-out drawings as queries, named ``held-out FIGURE (PATENT)``, and each also turned
    counter-clockwise by every angle of ``turned`` (``held-out FIGURE turned 90 (PATENT)``): a sheet
    scanned or drawn in landscape. ``absent``: the copy lacks the chosen patents' figures altogether (a
    drawing of a patent the collection does not hold: none is relevant), named ``held-out FIGURE, patent
    absent (PATENT)``. ``only``: draw from these patents alone (e.g. those held out of the model's training)."""
    import shutil

    from figsearch import pipeline
    from figsearch.records import FigureRole
    from figsearch.search.inputs import load_query_image
    from figsearch.store import Collection

    rng = random.Random(seed)
    with Collection.open(collection) as store:
        by_patent: dict[str, list] = {}
        for figure in store.figures(roles=(FigureRole.DRAWING,)):
            if figure.image_path:
                by_patent.setdefault(figure.patent, []).append(figure)
        patents = sorted(p for p, figures in by_patent.items()
                         if len(figures) >= (1 if absent else 2) and (only is None or p in only))
        chosen = sorted(rng.sample(patents, min(count, len(patents))))
        drawn = {p: rng.sample(by_patent[p], min(folds, len(by_patent[p]) - (0 if absent else 1))) for p in chosen}
        out = []
        for fold in range(folds):
            queries = [(f"held-out {figures[fold].figure_id}{', patent absent' if absent else ''} ({p})",
                        load_query_image(store.path(figures[fold].image_path), figures[fold].figure_id))
                       for p, figures in drawn.items() if fold < len(figures)]
            queries += [(f"{name.rsplit(' (', 1)[0]} turned {angle} ({patent_of(name)})",
                         image.rotate(angle, expand=True, fillcolor=255))
                        for angle in turned for name, image in list(queries)]
            out.append((fold, queries))
    copies = []
    for fold, queries in out:
        target = scratch / f"{collection.name}-without-{fold}"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(collection, target)
        ids = sorted({name.split()[1].rstrip(",") for name, _ in queries})
        if absent:
            with Collection.open(collection) as store:
                ids = [f.figure_id for p in drawn for f in store.figures(patent=p)]
        with Collection.open(target, write=True) as store, store.transaction() as db:
            db.executemany("DELETE FROM figures WHERE figure_id = ?", [(i,) for i in ids])
        with Collection.open(target, write=True) as store:
            report = pipeline.embed_and_index(store, rebuild=True)
        embedded = sum(item.embedded for item in report.embedded)
        assert embedded == 0, f"the copy re-encoded {embedded} drawings: it must only lose the held-out ones"
        copies.append((target, queries))
    return copies


def hits_of(result) -> list[tuple[str, str]]:
    return [(hit.figure_id, repr(hit.score)) for hit in result.hits]


def patent_of(name: str) -> str:
    """The query's patent: a crop's or held-out drawing's from its name, a file's from its name (USD0907292-...)."""
    return name.rsplit("(", 1)[1].rstrip(")") if name.endswith(")") else Path(name).name.split("-")[0]


def figure_of(name: str) -> str | None:
    """A crop's or held-out drawing's figure id, from its name."""
    words = name.split()
    return words[1].rstrip(",") if words[0] == "held-out" else words[2] if words[0] == "crop" else None


def same_patent(stem: str, patent: str) -> bool:
    return patent.startswith(stem) or stem.startswith(patent)


def average_precision(relevant: list[bool], total: int) -> float:
    """trec_eval's AP over the ranked hits given: divided by all ``total`` relevant items."""
    found, summed = 0, 0.0
    for rank, hit in enumerate(relevant, start=1):
        if hit:
            found += 1
            summed += found / rank
    return summed / total if total else 0.0


def turn_sets(text: str) -> list[tuple[int, ...]]:
    sets = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        angles = tuple(int(a) for a in part.split(","))
        if angles[0] != 0 or any(a not in (0, 90, 180, 270) for a in angles):
            raise SystemExit(f"--turn-sets: {part!r} must start with 0 and hold quarter turns only")
        sets.append(angles)
    return sets


def best_turns(service, name: str, image, collection) -> tuple[int, list[float]]:
    """The orientation in which ``image`` best matches its patent's drawings in ``collection`` (stored
    vectors), and the best cosine per orientation."""
    from figsearch.records import FigureRole

    stem = patent_of(name)
    settings = service._settings("visual")
    ids = [f.figure_id for f in collection.figures(roles=(FigureRole.DRAWING,)) if same_patent(stem, f.patent)]
    stored = collection.vectors.fetch("visual", settings["key"], ids)
    if not stored:
        return -1, []
    rows = service._encode_turns(image, (0, 90, 180, 270))
    best = (rows @ np.vstack(list(stored.values())).T).max(axis=1)
    return (0, 90, 180, 270)[int(best.argmax())], [round(float(b), 4) for b in best]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--images", type=Path, nargs="*", default=[], help="query image files or folders")
    parser.add_argument("--limit", type=int, help="at most this many image files (a seeded sample)")
    parser.add_argument("--crops", type=int, default=0, help="also this many cropped drawings of the collection")
    parser.add_argument("--leave-out", type=int, default=0,
                        help="also drawings new to the collection: one of each of this many patents, held out of a copy")
    parser.add_argument("--folds", type=int, default=1, help="with --leave-out: this many disjoint draws (a copy each)")
    parser.add_argument("--turned", default="", help="with --leave-out: also upload each held-out drawing turned "
                        "counter-clockwise by these angles, e.g. '90,270' (a sheet in landscape)")
    parser.add_argument("--patents-absent", action="store_true", help="with --leave-out: the copies lack the held-out "
                        "drawings' patents altogether (drawings of patents the collection does not hold)")
    parser.add_argument("--query-patents", type=Path, help="with --leave-out: draw the held-out drawings from the "
                        "patents this file lists, one a line ('#' comments), e.g. benchmarks/heldout/class-val-2007.txt")
    parser.add_argument("--scratch", type=Path, help="with --leave-out: where the copies go (default: a temporary folder)")
    parser.add_argument("--turn-sets", default="", help="other orientation sets to search with, e.g. '0,180;0,90'")
    parser.add_argument("--relevance", default="same-patent",
                        help="same-patent (the DeepPatent relevance), or a rule of figsearch.evaluate such as "
                             "same-class:USPC:1 (judged on --collection; for crops and held-out drawings)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--mode", default="visual",
                        help="search mode of every query (visual, or a fused one such as auto: the upload's words, "
                             "read from it, search the text channel beside its turns)")
    parser.add_argument("--thresholds", default="0.8,0.85,0.9,0.95",
                        help="upright-match scores at or above which the rule skips the other turns")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--show", type=int, default=10, help="print at most this many differing queries")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import tempfile

    from figsearch.search.inputs import load_query_image
    from figsearch.search.query import Query
    from figsearch.search.service import QUERY_ROTATIONS, SearchService
    from figsearch.store import Collection

    extra_sets = turn_sets(args.turn_sets)
    class_qrels = None
    if args.relevance != "same-patent":
        from figsearch.evaluate.rules import load_pool, parse_rule

        with Collection.open(args.collection) as store:
            class_qrels = parse_rule(args.relevance).judge(store, load_pool(store))
    plain: list[tuple[str, object]] = [(str(f), f) for f in query_files(args.images, args.limit, args.seed)]
    plain += crops_of(args.collection, args.crops, args.seed) if args.crops else []
    groups: list[tuple[Path, list[tuple[str, object]]]] = [(args.collection, plain)] if plain else []
    temporary = None
    if args.leave_out:
        if args.scratch is None:
            temporary = tempfile.TemporaryDirectory(prefix="upload-turns-")
            args.scratch = Path(temporary.name)
        args.scratch.mkdir(parents=True, exist_ok=True)
        turned = tuple(int(a) for a in args.turned.split(",") if a.strip())
        only = None
        if args.query_patents:
            only = {line.split("#")[0].strip() for line in args.query_patents.read_text().splitlines()} - {""}
        groups += held_out(args.collection, args.leave_out, args.folds, args.seed, args.scratch, turned,
                           args.patents_absent, only)
    if not any(queries for _, queries in groups):
        raise SystemExit("no queries: give --images, --crops and/or --leave-out")

    from figsearch.records import FigureRole

    names = ["every turn", "upright alone"] + ["+".join(map(str, s)) for s in extra_sets]
    rows = []
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for collection, queries in groups:
        services = {
            "every turn": SearchService(Collection.open(collection), owns=True, query_cache=0, upright_confident=None),
            "upright alone": SearchService(Collection.open(collection), owns=True, query_cache=0, upright_confident=-2.0),
        }
        for angles, name in zip(extra_sets, names[2:]):
            services[name] = SearchService(Collection.open(collection), owns=True, query_cache=0,
                                           query_rotations=angles, upright_confident=None)
        for service in services.values():
            service.limit_threads(1)  # as the server runs it
            service.warm()
        store = services["every turn"].collection
        present = {f.figure_id: f.patent for f in store.figures(roles=(FigureRole.DRAWING,))}
        for name, source in queries:
            image = load_query_image(source, name) if isinstance(source, Path) else source
            stem = patent_of(name)
            if class_qrels is None:  # same patent: the searched collection's drawings of the query's patent
                wanted = {fid for fid, patent in present.items() if same_patent(stem, patent)}
            else:  # same class: as the original collection judges the query's figure, of what the copy holds
                wanted = {fid for fid in class_qrels.get(figure_of(name), {}) if fid in present}
            relevant = len(wanted)
            results = {}
            for label, service in services.items():
                started = time.thread_time()
                results[label] = service.search(Query(image=image, mode=args.mode, k=args.k))
                cpu[label].append((time.thread_time() - started) * 1000)
            a, b = results["every turn"], results["upright alone"]
            assert a.timings.get("turns") == len(QUERY_ROTATIONS) and b.timings.get("turns") == 1.0, (a.timings, b.timings)
            ha, hb = hits_of(a), hits_of(b)
            row = {
                "query": name,
                "held_out": name.startswith("held-out "),
                "kind": ("file" if isinstance(source, Path) else "crop" if name.startswith("crop ")
                         else "held out, turned " + name.split(" turned ")[1].split()[0] if " turned " in name
                         else "patent absent" if ", patent absent" in name
                         else "held out"),
                "relevant": relevant,
                "upright_score": b.timings["upright_score"],
                "same": ha == hb,
                "same_figures": [f for f, _ in ha] == [f for f, _ in hb],
                "same_set": {f for f, _ in ha} == {f for f, _ in hb},
                "overlap": len({f for f, _ in ha} & {f for f, _ in hb}),
                "own": {label: sum(h.figure_id in wanted for h in r.hits) for label, r in results.items()},
                "ap": {label: average_precision([h.figure_id in wanted for h in r.hits], relevant)
                       for label, r in results.items()},
                "every_turn": ha,
                "upright_only": hb,
            }
            row["own_patent"] = [row["own"]["every turn"], row["own"]["upright alone"]]
            if row["held_out"]:
                row["best_turn"], row["turn_scores"] = best_turns(services["every turn"], name, image, store)
            rows.append(row)
        for service in services.values():
            service.close()

    print(f"{len(rows)} queries ({sum(r['held_out'] for r in rows)} held out of their collection), {args.mode} mode, "
          f"top {args.k}; CPU per search (this thread, median): "
          + ", ".join(f"{n} {statistics.median(cpu[n]):.1f} ms" for n in names))
    print(f"upright-alone top {args.k} equal to every turn's (figures, order and scores) on {sum(r['same'] for r in rows)} "
          f"of {len(rows)} queries when forced on all of them")
    kinds = [("all queries", rows)]
    names_of_kinds = sorted({r["kind"] for r in rows})
    if len(names_of_kinds) > 1:
        kinds += [(kind, [r for r in rows if r["kind"] == kind]) for kind in names_of_kinds]
    for kind, chosen in kinds:
        print(f"{kind} ({len(chosen)}): relevant hits ({args.relevance}) per top {args.k} / AP@{args.k} / CPU per search "
              f"(median):")
        for n in names:
            better = sum(r["ap"][n] > r["ap"]["every turn"] for r in chosen)
            worse = sum(r["ap"][n] < r["ap"]["every turn"] for r in chosen)
            spent = [c for c, r in zip(cpu[n], rows) if id(r) in {id(x) for x in chosen}]
            print(f"  {n:14s} {statistics.fmean(r['own'][n] for r in chosen):.2f} / "
                  f"{statistics.fmean(r['ap'][n] for r in chosen):.4f} / {statistics.median(spent):.1f} ms"
                  + ("" if n == "every turn" else f"  (AP above every turn's on {better}, below on {worse})"))
    summary = []
    for threshold in [float(t) for t in args.thresholds.split(",")]:
        fired = [r for r in rows if r["upright_score"] >= threshold]
        differ = [r for r in fired if not r["same"]]
        ruled = [r["ap"]["upright alone" if r["upright_score"] >= threshold else "every turn"] for r in rows]
        line = {
            "threshold": threshold, "queries": len(rows), "fired": len(fired),
            "same_top_k": len(rows) - len(differ), "differ": len(differ),
            "differ_same_set": sum(r["same_set"] for r in differ),
            "differ_mean_overlap": round(statistics.fmean(r["overlap"] for r in differ), 2) if differ else None,
            "mean_turns": round((len(fired) * 1 + (len(rows) - len(fired)) * 4) / len(rows), 2),
            "rule_ap": round(statistics.fmean(ruled), 4),
        }
        summary.append(line)
        print(f"  threshold {threshold}: fires on "
              f"{len(fired)} of {len(rows)} queries (mean turns encoded {line['mean_turns']}); the same top {args.k} on "
              f"{line['same_top_k']} of {len(rows)}; of the {len(differ)} that differ, {line['differ_same_set']} hold the "
              f"same figures in another order, mean overlap {line['differ_mean_overlap']} of {args.k}; AP@{args.k} with "
              f"the rule {line['rule_ap']:.4f}")
        for kind, chosen in kinds[1:]:
            fired_kind = sum(r["upright_score"] >= threshold for r in chosen)
            ap = statistics.fmean(r["ap"]["upright alone" if r["upright_score"] >= threshold else "every turn"]
                                  for r in chosen)
            line[kind] = {"fired": fired_kind, "queries": len(chosen), "rule_ap": round(ap, 4)}
            print(f"    {kind}: fires on {fired_kind} of {len(chosen)}, AP@{args.k} with the rule {ap:.4f} (every turn "
                  f"{statistics.fmean(r['ap']['every turn'] for r in chosen):.4f}, upright alone "
                  f"{statistics.fmean(r['ap']['upright alone'] for r in chosen):.4f})")
    for r in [r for r in rows if not r["same"]][: args.show]:
        print(f"  differs: {r['query']} (upright match {r['upright_score']})")
        for rank, (x, y) in enumerate(zip(r["every_turn"], r["upright_only"]), start=1):
            mark = "" if x == y else "   <-"
            print(f"    {rank:2d}. every turn {x[0]} {float(x[1]):.4f} | upright {y[0]} {float(y[1]):.4f}{mark}")
    print(f"relevant hits ({args.relevance}) in the top {args.k}, mean over the queries: every turn "
          f"{statistics.fmean(r['own_patent'][0] for r in rows):.2f}, upright alone "
          f"{statistics.fmean(r['own_patent'][1] for r in rows):.2f} (more with upright alone on "
          f"{sum(r['own_patent'][1] > r['own_patent'][0] for r in rows)} queries, fewer on "
          f"{sum(r['own_patent'][1] < r['own_patent'][0] for r in rows)})")
    turned = [r for r in rows if r.get("best_turn", -1) >= 0 and r["kind"] == "held out"]
    if turned:
        counts = {a: sum(r["best_turn"] == a for r in turned) for a in (0, 90, 180, 270)}
        margins = sorted(max(r["turn_scores"][1:]) - r["turn_scores"][0] for r in turned)
        print(f"held-out drawings whose best match among their patent's other drawings is in orientation 0 / 90 / 180 / "
              f"270: {counts[0]} / {counts[90]} / {counts[180]} / {counts[270]} of {len(turned)}; best other turn minus "
              f"upright: median {margins[len(margins) // 2]:+.3f}, max {margins[-1]:+.3f}; over +0.05 on "
              f"{sum(m > 0.05 for m in margins)}")
    for kind, chosen in kinds:
        scores = sorted(r["upright_score"] for r in chosen)
        print("upright match scores, {}: min {:.3f}, p10 {:.3f}, p25 {:.3f}, median {:.3f}, p75 {:.3f}, p90 {:.3f}, max {:.3f}".format(
            kind, scores[0], scores[len(scores) // 10], scores[len(scores) // 4], scores[len(scores) // 2],
            scores[3 * len(scores) // 4], scores[9 * len(scores) // 10], scores[-1]))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows, "cpu_ms": cpu}, indent=1))
    if temporary is not None:
        temporary.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
