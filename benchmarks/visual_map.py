"""Visual retrieval quality on the 50 US design grants, read straight from their TIFF sheets.

    PYTHONPATH=src python benchmarks/visual_map.py --encoder lines --max-side 1600
    PYTHONPATH=src python benchmarks/visual_map.py --collection DIR   # through the service, all modes

Same-patent rule (DeepPatent): for a query sheet, the other drawing sheets of its patent are
relevant; front pages (``-D00000``) are neither queries nor results; the query itself is not a
result; queries whose patent has no other sheet are skipped (nothing to find). AP@50 as in
trec_eval: precision summed at each relevant hit in the first 50, divided by *all* relevant
sheets (so a patent with 66 other sheets caps at 50/66). Sheets are scaled so that their longer
side is at most ``--max-side`` pixels first, as ingest bounds stored images.
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


def mean_ap(vectors: np.ndarray, patents: list[str], k: int = 50) -> tuple[float, int]:
    labels = np.array(patents)
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    aps = []
    for q in range(len(labels)):
        relevant = labels == labels[q]
        relevant[q] = False
        if not relevant.any():
            continue
        top = np.argsort(-scores[q], kind="stable")[:k]
        hits = relevant[top]
        precision = np.cumsum(hits) / np.arange(1, len(top) + 1)
        aps.append(float((precision * hits).sum() / relevant.sum()))
    return float(np.mean(aps)), len(aps)


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
        for mode in modes:
            aps, start = [], time.perf_counter()
            for figure in drawings:
                relevant = by_patent[figure.patent] - {figure.figure_id}
                if not relevant:
                    continue
                hits = service.search(Query(figure_id=figure.figure_id, mode=mode, k=k)).hits
                found = [h.figure_id in relevant for h in hits]
                precision = np.cumsum(found) / np.arange(1, len(found) + 1)
                aps.append(float((precision * found).sum() / len(relevant)))
            took = (time.perf_counter() - start) / max(len(aps), 1) * 1000
            print(f"{mode:>7}: mAP@{k} {np.mean(aps):.4f} over {len(aps)} queries ({took:.0f} ms/query)", flush=True)


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
    for spec in args.encoder or ["lines", "hog"]:
        encoder = create_visual(spec)
        start = time.perf_counter()
        vectors = encoder.encode(images)
        took = time.perf_counter() - start
        value, queries = mean_ap(vectors, patents, args.k)
        print(f"{spec:>10}: mAP@{args.k} {value:.4f} over {queries} queries ({len(images) / took:.1f} images/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
