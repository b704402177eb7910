"""Do a search's pages repeat or skip hits? Each query is searched page by page (k hits a page, as the web page
pages) and the pages are compared: hits shown twice, the first page against the same search's first page in the
baseline tree, and the answer's `total` from page to page.

    PYTHONPATH=src python benchmarks/paging_consistency.py -c COLL [--k 24] [--pages 5] [--baseline /tmp/pre/src]

Queries: words of the worked example and of the user sessions, and figures of even-numbered 2007 designs and the
EP documents (the training side; no evaluation set is needed: nothing is scored against a ground truth).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

TEXTS = ["bicycle rack", "thermal printer with platen roller", "chair", "rotor blade", "vehicle lamp",
         "Spanplattenschraube", "shoe sole", "bottle"]


def figures(root: str, count: int) -> list[str]:
    from figsearch.records import FigureRole
    from figsearch.store import Collection

    chosen = []
    with Collection.open(root) as c:
        for f in c.figures(roles=(FigureRole.DRAWING,)):
            digits = "".join(ch for ch in f.patent if ch.isdigit())
            if f.patent.startswith("EP") or ("2007" in (f.source_file or "") and digits and int(digits) % 2 == 0):
                chosen.append(f.figure_id)
    step = max(1, len(chosen) // count)
    return chosen[::step][:count]


def run(root: str, k: int, pages: int, queries: list[dict]) -> list[dict]:
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService

    out = []
    with SearchService.open(root) as service:
        for spec in queries:
            shown, totals, took = [], [], []
            for page in range(pages):
                result = service.search(Query(k=k, offset=page * k, **spec))
                shown.append([h.figure_id for h in result.hits])
                totals.append(result.total)
                took.append(result.took_ms)
            out.append({"query": spec, "pages": shown, "totals": totals, "took_ms": took})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--collection", required=True)
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--figures", type=int, default=12)
    parser.add_argument("--baseline", help="another tree's src: its first pages are compared with this tree's")
    parser.add_argument("--json", help=argparse.SUPPRESS)  # internal: the baseline's child run
    args = parser.parse_args()
    queries = [{"text": t, "mode": "auto"} for t in TEXTS] + [{"figure_id": f, "mode": "auto"} for f in
                                                              figures(args.collection, args.figures)]
    if args.json:
        json.dump(run(args.collection, args.k, args.pages, queries), open(args.json, "w"))
        return
    runs = {"this tree": run(args.collection, args.k, args.pages, queries)}
    if args.baseline:
        path = f"/tmp/paging_baseline_{os.getpid()}.json"
        env = dict(os.environ, PYTHONPATH=args.baseline)
        subprocess.run([sys.executable, __file__, "-c", args.collection, "--k", str(args.k), "--pages", str(args.pages),
                        "--figures", str(args.figures), "--json", path], env=env, check=True)
        runs = {"baseline": json.load(open(path)), **runs}
        os.remove(path)
    print(f"{len(queries)} queries (mode auto), {args.pages} pages of {args.k}")
    for name, results in runs.items():
        repeated = sum(len(f) - len(set(f)) for f in ([x for p in r["pages"] for x in p] for r in results))
        with_repeats = sum(1 for r in results if len({x for p in r["pages"] for x in p}) < sum(map(len, r["pages"])))
        moving = sum(1 for r in results if len(set(r["totals"])) > 1)
        first = sorted(r["took_ms"][0] for r in results)
        later = sorted(t for r in results for t in r["took_ms"][1:])
        print(f"{name:>9}: hits shown twice {repeated} (in {with_repeats} of {len(results)} queries); "
              f"total changes from page to page in {moving} queries; ms per search: first page median "
              f"{first[len(first) // 2]:.0f}, later pages median {later[len(later) // 2]:.0f} max {later[-1]:.0f}")
    if args.baseline:
        same = sum(1 for a, b in zip(runs["baseline"], runs["this tree"]) if a["pages"][0] == b["pages"][0])
        print(f"first pages identical to the baseline's: {same} of {len(queries)}")


if __name__ == "__main__":
    main()
