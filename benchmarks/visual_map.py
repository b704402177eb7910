"""Visual retrieval quality on the 50 US design grants, read straight from their TIFF sheets.

    python benchmarks/visual_map.py --encoder lines --max-side 1600
    python benchmarks/visual_map.py --collection DIR   # through the service, all modes

Same-patent rule (DeepPatent): for a query sheet, the other drawing sheets of its patent are
relevant; front pages (``-D00000``) are neither queries nor results; the query itself is not a
result; queries whose patent has no other sheet are skipped (nothing to find). AP@50 as in
trec_eval, scored by ir_measures: precision summed at each relevant hit in the first 50, divided
by *all* relevant sheets (so a patent with 66 other sheets caps at 50/66). Sheets are scaled so
that their longer side is at most ``--max-side`` pixels first, as ingest bounds stored images.

Runs against the installed package (``pip install -e .[visual,eval]``). Every encoder's mAP and
speed is also printed as a ratio to ``hog`` measured in the same run (with ``--collection``, to the
first mode, ``visual`` by default), so numbers from different machines compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from figsearch.embed.catalog import create_visual
from figsearch.train.metric import same_group_aps

# like tests/conftest.py: ../shared/data beside the project, or FIGSEARCH_SHARED_DATA
SHARED = Path(os.environ.get("FIGSEARCH_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
DEFAULT_DATA = SHARED / "us-design-grants"


def load_sheets(folder: Path, max_side: int | None) -> tuple[list[Image.Image], list[str]]:
    images, patents = [], []
    for path in sorted(folder.glob("*/*.TIF")):
        if "-D00000" in path.name:
            continue
        with Image.open(path) as image:
            grey = image.convert("L")
        if max_side and max(grey.size) > max_side:
            grey.thumbnail((max_side, max_side), Image.Resampling.BOX)
        images.append(grey)
        patents.append(path.name.split("-")[0])
    return images, patents


def ranked_aps(rankings: dict[str, list[str]], relevant: dict[str, set[str]], k: int) -> list[float]:
    """AP@k (ir_measures) of each query's ranking, in the order given: ranks, not scores, go to
    ir_measures, so its tie rule cannot reorder what the encoder or the service ranked."""
    import ir_measures

    qrels = {q: dict.fromkeys(docs, 1) for q, docs in relevant.items() if docs}
    run = {q: {doc: float(len(hits) - r) for r, doc in enumerate(hits[:k])} for q, hits in rankings.items() if q in qrels}
    values = {m.query_id: m.value for m in ir_measures.iter_calc([ir_measures.AP @ k], qrels, run)}
    return [float(values.get(q, 0.0)) for q in qrels]


def mean_ap(vectors: np.ndarray, patents: list[str], k: int = 50) -> tuple[float, int]:
    aps = same_group_aps(vectors, patents, k)
    return float(np.mean(list(aps.values()))), len(aps)


def collection_map(root: Path, modes: list[str], k: int) -> None:
    """The same measure through the search service on an indexed collection (queries by figure id)."""
    from figsearch.records import FigureRole
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService

    with SearchService.open(root) as service:
        drawings = service.collection.figures(roles=(FigureRole.DRAWING,))
        by_patent: dict[str, set[str]] = {}
        for figure in drawings:
            by_patent.setdefault(figure.patent, set()).add(figure.figure_id)
        relevant = {f.figure_id: by_patent[f.patent] - {f.figure_id} for f in drawings}
        relevant = {q: docs for q, docs in relevant.items() if docs}
        base = None
        for mode in modes:
            start = time.perf_counter()
            rankings = {
                q: [h.figure_id for h in service.search(Query(figure_id=q, mode=mode, k=k)).hits] for q in relevant
            }
            took = (time.perf_counter() - start) / max(len(rankings), 1) * 1000
            value = float(np.mean(ranked_aps(rankings, relevant, k)))
            base = base or (max(value, 1e-12), max(took, 1e-9))
            print(f"{mode:>7}: mAP@{k} {value:.4f} ({value / base[0]:.2f}x {modes[0]}) over {len(rankings)} queries "
                  f"({took:.0f} ms/query, {took / base[1]:.2f}x {modes[0]})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--encoder", action="append", help="visual encoder spec (repeatable); default: lines and hog")
    parser.add_argument("--max-side", type=int, default=1600)
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--collection", type=Path, help="measure through the search service on this indexed collection")
    parser.add_argument("--modes", nargs="+", default=["visual", "text", "avg", "max", "rrf"])
    args = parser.parse_args(argv)
    if args.collection:
        collection_map(args.collection, args.modes, args.k)
        return 0
    if not args.data.is_dir():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    images, patents = load_sheets(args.data, args.max_side)
    print(f"{len(images)} sheets of {len(set(patents))} patents, longer side <= {args.max_side}")
    rng = np.random.default_rng(0)
    random = rng.standard_normal((len(images), 64)).astype(np.float32)
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    print(f"{'random':>10}: mAP@{args.k} {mean_ap(random, patents, args.k)[0]:.4f}")
    # hog first: the baseline every other encoder is compared with, measured in this run
    specs = ["hog"] + [spec for spec in (args.encoder or ["lines"]) if spec != "hog"]
    base = None
    for spec in specs:
        encoder = create_visual(spec)
        start = time.perf_counter()
        vectors = encoder.encode(images)
        rate = len(images) / (time.perf_counter() - start)
        value, queries = mean_ap(vectors, patents, args.k)
        base = base or (max(value, 1e-12), rate)
        print(f"{spec:>10}: mAP@{args.k} {value:.4f} ({value / base[0]:.2f}x hog) over {queries} queries "
              f"({rate:.1f} images/s, {rate / base[1]:.2f}x hog)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
