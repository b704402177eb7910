"""Cut figures through a collection: visual same-patent AP@50 of cut vs uncut queries, with the cut figures'
stored vectors mixed with their sheets' (``embed.sheet_context``) at several weights, and the mixing's cost.

    HF_HUB_OFFLINE=1 OMP_THREAD_LIMIT=1 PYTHONPATH=src python benchmarks/sheet_context_eval.py \
        --collection C --heldout benchmarks/heldout/val-patents-backbone2.txt --betas 0,0.5,1,1.5,2 [--nocut] [--timing]

C: a collection built with OCR (the default ``figsearch build``, so sheets are cut as for users) and indexed
with plain vectors (``--visual-model backbone:drawing-backbone5-lite0-288.onnx``, or any build before stop 27);
the benchmark reads its stored plain vectors, encodes the cut sheets itself and never writes to C. Stop 27
used the training side: ``figsearch build ../shared/data/us-design-pdfs ../shared/data/us-utility-sheets
../shared/data/us-applications ../shared/data/ep-documents -c C --visual-model
backbone:drawing-backbone5-lite0-288.onnx`` and the 24 patents bb5's training held out as queries.

Relevance is ``figsearch evaluate``'s same-patent rule (a query never counts itself, its own sheet or the
figures cut from its own sheet ... except its siblings, which are other views of the patent and count;
``--no-siblings`` adds a column without them). Ranking is the visual mode's: the best 200 by cosine re-scored
by alpha-QE (``search.rerank`` defaults) above the rest. Rows per weight: "stored" queries use the stored
(mixed) vector, as a query by a figure of the collection does; "upload" queries use the plain vector, as an
uploaded image of the same single view would (queries are never mixed). ``--nocut``: the collection as a
build without cutting would hold it (each cut sheet whole, with its own vector). ``--timing``: CPU ms of the
mixing step per cut sheet (decode + encode + mix), the only cost the sheet context adds to a build.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import numpy as np

from figsearch.embed.catalog import create_visual, encoder_key
from figsearch.embed.sheet_context import mix
from figsearch.pipeline.embed import decode_stored
from figsearch.records import FigureRole
from figsearch.search import rerank
from figsearch.store import Collection

PLAIN = "backbone:drawing-backbone5-lite0-288.onnx"


def average_precision(ranked: list[str], relevant: set[str], k: int = 50) -> float:
    """trec_eval's AP@k: divided by all relevant items."""
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked[:k], 1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant) if relevant else 0.0


def visual_ranking(query: np.ndarray, vectors: np.ndarray, own: int, candidates: int = 200) -> np.ndarray:
    """Row order of ``vectors`` for ``query`` as the visual mode ranks them (``own`` left out)."""
    scores = vectors @ query
    scores[own] = -np.inf
    n = min(candidates, len(vectors) - 1)
    top = np.argpartition(-scores, n - 1)[:n]
    ranked = scores.copy()
    ranked[top] = 10.0 + rerank.rerank(query, vectors[top])
    return np.argsort(-ranked, kind="stable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", required=True)
    parser.add_argument("--heldout", default="", help="patents whose drawings are the queries (default: all)")
    parser.add_argument("--betas", default="0,1")
    parser.add_argument("--visual-model", default=PLAIN, help="the plain encoder the collection was indexed with")
    parser.add_argument("--nocut", action="store_true")
    parser.add_argument("--no-siblings", action="store_true")
    parser.add_argument("--timing", action="store_true")
    args = parser.parse_args()

    collection = Collection.open(args.collection)
    figures = collection.figures()
    sheets = {f.figure_id: f for f in figures if f.role is FigureRole.SPLIT_SHEET}
    encoder = create_visual(args.visual_model)
    if encoder.sheet_context:
        sys.exit(f"--visual-model {args.visual_model}: give the plain encoder (its vectors are mixed here)")
    key = encoder_key(encoder)
    drawings = [f for f in figures if f.role is FigureRole.DRAWING and f.image_path]
    stored = collection.vectors.fetch("visual", key, [f.figure_id for f in drawings])
    if not stored:
        sys.exit(f"{args.collection}: no visual vectors under {key} ({args.visual_model}); index it with that encoder")
    drawings = [f for f in drawings if f.figure_id in stored]
    wanted = sorted({f.parent_id for f in drawings if f.parent_id})
    started, cpu = time.perf_counter(), time.process_time()
    images = [decode_stored(collection.path(sheets[s].image_path)) for s in wanted]
    decoded = time.process_time()
    sheet_vectors = dict(zip(wanted, encoder.encode(images))) if wanted else {}
    encoded = time.process_time()
    print(f"{len(drawings)} drawings, {sum(1 for f in drawings if f.parent_id)} cut from {len(wanted)} sheets; "
          f"the sheets decoded and encoded in {time.perf_counter() - started:.1f} s wall", flush=True)
    if args.timing and wanted:
        cut_ids = [f.figure_id for f in drawings if f.parent_id]
        t0 = time.process_time()
        for _ in range(10):
            mix(np.stack([stored[i] for i in cut_ids]), np.stack([sheet_vectors[f.parent_id] for f in drawings if f.parent_id]), 1.0)
        mixing = (time.process_time() - t0) / 10
        print(f"cost per cut sheet: decode {1000 * (decoded - cpu) / len(wanted):.1f} CPU ms, encode "
              f"{1000 * (encoded - decoded) / len(wanted):.1f} CPU ms; mixing all {len(cut_ids)} cut figures "
              f"{1000 * mixing:.2f} CPU ms; per drawing of the collection "
              f"{1000 * (encoded - cpu + mixing) / len(drawings):.1f} CPU ms", flush=True)

    ids = [f.figure_id for f in drawings]
    plain = np.stack([stored[i] for i in ids]).astype(np.float32)
    parents = [f.parent_id for f in drawings]
    was_cut: set[str] = set()
    if args.nocut:  # each cut sheet whole, its own vector, no cut figures
        keep = [i for i, p in enumerate(parents) if p is None]
        ids = [ids[i] for i in keep] + wanted
        plain = np.concatenate([plain[keep], np.stack([sheet_vectors[s] for s in wanted])]) if wanted else plain[keep]
        patents = [drawings[i].patent for i in keep] + [sheets[s].patent for s in wanted]
        parents = [None] * len(ids)
        was_cut = set(wanted)
    else:
        patents = [f.patent for f in drawings]
    cut = np.array([p is not None for p in parents])
    by_patent: dict[str, set[str]] = defaultdict(set)
    for fid, patent in zip(ids, patents):
        by_patent[patent].add(fid)
    siblings: dict[str, set[str]] = defaultdict(set)
    for fid, parent in zip(ids, parents):
        if parent:
            siblings[parent].add(fid)
    if args.heldout:
        held = {line.strip() for line in open(args.heldout) if line.strip() and not line.startswith("#")}
        queries = [i for i, p in enumerate(patents) if p in held]
    else:
        queries = list(range(len(ids)))
    print(f"queries: {len(queries)} ({sum(cut[q] or ids[q] in was_cut for q in queries)} cut or, with --nocut, "
          f"sheets that would be cut), of {len({patents[q] for q in queries})} patents", flush=True)

    for beta in [float(b) for b in args.betas.split(",")]:
        vectors = plain.copy()
        if beta and cut.any():
            rows = np.flatnonzero(cut)
            vectors[rows] = mix(plain[rows], np.stack([sheet_vectors[parents[r]] for r in rows]), beta)
        for kind in ("stored", "upload") if beta and cut.any() else ("stored",):
            scores: dict[str, list[float]] = {"cut": [], "uncut": [], "cut, no siblings": []}
            for q in queries:
                query = vectors[q] if kind == "stored" else plain[q]
                family = {parents[q]} if parents[q] else set()
                relevant = by_patent[patents[q]] - {ids[q]} - family
                if not relevant:
                    continue
                ranked = [ids[j] for j in visual_ranking(query, vectors, q) if j != q and ids[j] not in family]
                group = "cut" if cut[q] or ids[q] in was_cut else "uncut"
                scores[group].append(average_precision(ranked, relevant))
                if args.no_siblings and parents[q]:
                    others = siblings[parents[q]] - {ids[q]}
                    if relevant - others:
                        scores["cut, no siblings"].append(
                            average_precision([d for d in ranked if d not in others], relevant - others))
            every = scores["cut"] + scores["uncut"]
            line = f"beta={beta:<5g} {kind:<6} all {np.mean(every):.4f} (n={len(every)})"
            for group in ("cut", "uncut", "cut, no siblings"):
                if scores[group]:
                    line += f"  {group} {np.mean(scores[group]):.4f} (n={len(scores[group])})"
            print(line, flush=True)


if __name__ == "__main__":
    main()
