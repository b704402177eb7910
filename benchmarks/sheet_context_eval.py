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

Stop 30 (cut38) added the variants of a cut figure's stored vector (each row names its geometry and mix):

- ``--geometry tight,margin=0.25,aspect,place,scale``: the input the cut figure's own vector is encoded from.
  ``tight``: the stored crop as every drawing is prepared (trimmed, padded to a square) -- today's; ``margin=F``:
  the trimmed crop padded with white, F of its longer side on each side; ``aspect``: padded to its sheet's
  (trimmed) aspect first; ``place``: the sheet's frame with everything outside the figure's box whitened (the
  figure at the sheet's scale, where it stood); ``scale``: the figure at the sheet's scale, centred; ``A+B``:
  the sum of both inputs' vectors (before the mix, which normalises).
- ``--mix sum,ink=0.5,head,pooled``: how figure and sheet are mixed. ``sum``: normalise(f + beta s) (today's);
  ``ink=P``: the same with beta scaled per figure by (n * share)^-P, share its box's part of the sheet's ink and
  n the figures cut from the sheet (P > 0: small figures take more of their sheet); ``head``: the head's
  outputs before their normalisation; ``pooled``: the network's pooled features before the head
  ((f + beta s) / (1 + beta) through the rest of the model).
- ``--query-betas``: extra rows where a query by a stored cut figure is mixed with another weight than the
  stored vectors (``sum`` only).
- ``--second-vector``: extra rows where each cut figure is also indexed with a second vector, its plain one
  mixed with this weight (``inf``: its sheet's own vector), and scores by the better of the two (``sum`` only;
  the index holds one vector per figure today, so this measures a multi-vector index that does not exist).
- ``--compare``: each row against today's default (the tight crop, ``sum``, beta 1) over the same queries: the
  difference of mean AP@50, a paired randomisation test's p, and the mean per-patent difference with its 95 %
  bootstrap interval over the patents (the 212 held-out queries come from 24 patents).
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
#: tensors of a backbone model file tapped for the mixes before the head (``train.backbone.Encoder``'s graph)
POOLED, HEAD = "/pooled/Concat_output_0", "/head/proj/MatMul_output_0"


def average_precision(ranked: list[str], relevant: set[str], k: int = 50) -> float:
    """trec_eval's AP@k: divided by all relevant items."""
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked[:k], 1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant) if relevant else 0.0


def visual_ranking(query: np.ndarray, vectors: np.ndarray, own: int, candidates: int = 200,
                   second: np.ndarray | None = None, has_second: np.ndarray | None = None) -> np.ndarray:
    """Row order of ``vectors`` for ``query`` as the visual mode ranks them (``own`` left out). ``second``: a
    second vector of the rows where ``has_second`` (``--second-vector``); a row scores by the better of its two,
    and that one stands for it in the re-ranking."""
    scores = vectors @ query
    best = vectors
    if second is not None:
        other = np.where(has_second, second @ query, -np.inf)
        best = np.where((other > scores)[:, None], second, vectors)
        scores = np.maximum(scores, other)
    scores[own] = -np.inf
    n = min(candidates, len(vectors) - 1)
    top = np.argpartition(-scores, n - 1)[:n]
    ranked = scores.copy()
    ranked[top] = 10.0 + rerank.rerank(query, best[top])
    return np.argsort(-ranked, kind="stable")


# -- the cut figure's input (--geometry) ---------------------------------------------------------------


def _resized(square, size: int) -> np.ndarray:
    """``prepare_drawing``'s last step: a square grey image to ``size`` x ``size``."""
    from PIL import Image

    resample = Image.Resampling.LANCZOS if square.width < size else Image.Resampling.BOX
    return np.asarray(square.resize((size, size), resample), dtype=np.uint8)


def _centred(image, width: int, height: int):
    from PIL import Image

    canvas = Image.new("L", (max(width, image.width), max(height, image.height)), 255)
    canvas.paste(image, ((canvas.width - image.width) // 2, (canvas.height - image.height) // 2))
    return canvas


def prepared_cut(crop, sheet, box, geometry: str, size: int) -> np.ndarray:
    """(size, size) uint8: a cut figure (``crop``, cut from ``sheet`` at ``box``) as ``geometry`` prepares it."""
    from figsearch.embed.encoders.backbone import prepare_grey
    from figsearch.embed.preprocess import ink_box, pad_to_square, strip_running_header, trim_margins

    if geometry == "tight":
        return prepare_grey(crop, size)
    figure = trim_margins(strip_running_header(crop.convert("L")))
    if geometry.startswith("margin="):
        side = round(max(figure.size) * (1 + 2 * float(geometry.split("=", 1)[1])))
        return _resized(_centred(figure, side, side), size)
    page = strip_running_header(sheet.convert("L"))
    frame = ink_box(page) or (0, 0, page.width, page.height)
    frame_w, frame_h = frame[2] - frame[0], frame[3] - frame[1]
    if geometry == "aspect":
        aspect = frame_w / frame_h
        w, h = figure.size
        w, h = (w, round(w / aspect)) if w / h > aspect else (round(h * aspect), h)
        return _resized(pad_to_square(_centred(figure, w, h)), size)
    if geometry == "scale":
        side = max(frame_w, frame_h)
        return _resized(_centred(figure, side, side), size)
    if geometry == "place":
        from PIL import Image

        blank = Image.new("L", page.size, 255)
        blank.paste(page.crop(box), box[:2])
        return _resized(pad_to_square(blank.crop(frame)), size)
    raise SystemExit(f"--geometry {geometry}: choose from tight, margin=F, aspect, place, scale")


class Taps:
    """The plain model run with its pooled features and its head's output before normalisation as outputs
    too, and the rest of the model from the pooled features (``mix pooled``)."""

    def __init__(self, encoder) -> None:
        import onnx
        import onnxruntime as ort
        from onnx.utils import Extractor

        model = onnx.shape_inference.infer_shapes(onnx.load(str(encoder.path)))  # the Extractor needs the shapes
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.log_severity_level = 2, 3
        tail = Extractor(model).extract_model([POOLED], ["vector"])
        for name in (POOLED, HEAD):
            model.graph.output.append(onnx.ValueInfoProto(name=name))
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.tail = ort.InferenceSession(tail.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def features(self, prepared: np.ndarray, batch: int = 8) -> dict[str, np.ndarray]:
        """(n, S, S) uint8 prepared drawings -> {"vector", "pooled", "head"} (n, .) float32."""
        out: dict[str, list] = {"vector": [], "pooled": [], "head": []}
        for start in range(0, len(prepared), batch):
            grey = np.ascontiguousarray(prepared[start : start + batch], dtype=np.float32)[:, None]
            vector, pooled, head = self.session.run(["vector", POOLED, HEAD], {self.input: grey})
            out["vector"].append(vector)
            out["pooled"].append(pooled)
            out["head"].append(head)
        return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}

    def from_pooled(self, pooled: np.ndarray) -> np.ndarray:
        return self.tail.run(["vector"], {POOLED: np.ascontiguousarray(pooled, dtype=np.float32)})[0]


def _normalised(rows: np.ndarray) -> np.ndarray:
    return (rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def mixed(own: dict, sheet: dict, beta: float, how: str, taps: Taps | None, scale: np.ndarray | None) -> np.ndarray:
    """Cut figures' stored vectors: ``own`` and ``sheet`` hold their features (row by row), ``how`` the mix."""
    if how == "sum" or how.startswith("ink="):
        weights = np.float32(beta) * (scale if how.startswith("ink=") else 1.0)
        return _normalised(own["vector"] + np.asarray(weights, np.float32).reshape(-1, 1) * sheet["vector"])
    if how == "head":
        return _normalised(own["head"] + np.float32(beta) * sheet["head"])
    if how == "pooled":
        return _normalised(taps.from_pooled((own["pooled"] + np.float32(beta) * sheet["pooled"]) / (1 + beta)))
    raise SystemExit(f"--mix {how}: choose from sum, ink=P, head, pooled")


def sheet_ink(sheet_image) -> np.ndarray:
    """The sheet's ink (grey < 128), its running header whitened: what ``ink=P`` measures a figure's share of."""
    from figsearch.embed.preprocess import strip_running_header

    return np.asarray(strip_running_header(sheet_image.convert("L"))) < 128


def ink_share(ink: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    return float(ink[y0:y1, x0:x1].sum()) / max(float(ink.sum()), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", required=True)
    parser.add_argument("--heldout", default="", help="patents whose drawings are the queries (default: all)")
    parser.add_argument("--betas", default="0,1")
    parser.add_argument("--visual-model", default=PLAIN, help="the plain encoder the collection was indexed with")
    parser.add_argument("--nocut", action="store_true")
    parser.add_argument("--no-siblings", action="store_true")
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--geometry", default="tight", help="inputs of the cut figures' own vectors (see above)")
    parser.add_argument("--mix", default="sum", help="how a cut figure and its sheet are mixed (see above)")
    parser.add_argument("--query-betas", default="", help="weights a stored cut figure is mixed with as a query")
    parser.add_argument("--second-vector", default="", help="weights of a second vector per cut figure (inf: its sheet's)")
    parser.add_argument("--compare", action="store_true", help="paired tests of each row against today's default")
    parser.add_argument("--dump", default="", help="write each query's AP per row here (TSV)")
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
    rows = np.flatnonzero(cut)
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

    geometries = [g for g in args.geometry.split(",") if g]
    mixes = [m for m in args.mix.split(",") if m]
    betas = [float(b) for b in args.betas.split(",")]
    query_betas = [float(b) for b in args.query_betas.split(",") if b]
    second_betas = [float(b) for b in args.second_vector.split(",") if b]
    plain_only = geometries == ["tight"] and mixes == ["sum"] and not query_betas and not second_betas
    own: dict[str, dict] = {}
    sheet_features: dict = {}
    scales: dict[str, np.ndarray] = {}  # ink=P: each cut figure's factor on beta
    taps = None
    if not plain_only and len(rows):  # every variant's features of the cut figures and their sheets
        taps = Taps(encoder)
        by_id = {f.figure_id: f for f in drawings}
        image_of = dict(zip(wanted, images))
        crops = [decode_stored(collection.path(by_id[ids[r]].image_path)) for r in rows]
        t0 = time.perf_counter()
        sheet_of = {s: i for i, s in enumerate(wanted)}
        sheet_all = taps.features(np.stack([encoder.prepare(image) for image in images]))
        sheet_features = {k: v[[sheet_of[parents[r]] for r in rows]] for k, v in sheet_all.items()}
        for geometry in dict.fromkeys(part for g in geometries for part in g.split("+")):
            own[geometry] = taps.features(np.stack([
                prepared_cut(crop, image_of[parents[r]], by_id[ids[r]].box, geometry, encoder.image_size)
                for r, crop in zip(rows, crops)]))
        for geometry in geometries:  # "tight+place": the parts' vectors summed and normalised (so beta weighs the
            # sheet as against one figure vector), head outputs summed, pooled features averaged
            parts = [own[part] for part in geometry.split("+")]
            if len(parts) > 1:
                own[geometry] = {"vector": _normalised(sum(p["vector"] for p in parts)), "head": sum(p["head"] for p in parts),
                                 "pooled": sum(p["pooled"] for p in parts) / len(parts)}
        agree = float(np.min(np.sum(sheet_features["vector"] * np.stack([sheet_vectors[parents[r]] for r in rows]), 1)))
        print(f"variant features in {time.perf_counter() - t0:.1f} s wall (sheets' tapped vs encoded vectors: "
              f"min cosine {agree:.5f})", flush=True)
        if "tight" in own:
            agree = float(np.min(np.sum(own["tight"]["vector"] * plain[rows], 1)))
            print(f"tight crops re-encoded vs stored: min cosine {agree:.5f}", flush=True)
        for how in mixes:
            if how.startswith("ink="):
                power = float(how.split("=", 1)[1])
                inks = {s: sheet_ink(image_of[s]) for s in wanted}
                share = np.array([ink_share(inks[parents[r]], by_id[ids[r]].box) for r in rows])
                counts = defaultdict(int)
                for r in rows:
                    counts[parents[r]] += 1
                n = np.array([counts[parents[r]] for r in rows], np.float32)
                scales[how] = (np.maximum(n * share, 1e-3) ** -power).astype(np.float32)
                print(f"ink shares: median {np.median(share):.3f} (n * share median {np.median(n * share):.3f}, "
                      f"10-90 % {np.percentile(n * share, 10):.2f}-{np.percentile(n * share, 90):.2f})", flush=True)

    # (label, stored vectors of every row, stored-query vectors of the cut rows or None, second vectors or None)
    variants = []
    for geometry in geometries:
        for how in mixes:
            for beta in betas:
                if not beta and (how != "sum" or geometry == "tight") and (how, geometry) != (mixes[0], geometries[0]):
                    continue  # beta 0 is the same for every mix
                vectors = plain.copy()
                if len(rows) and (beta or geometry != "tight"):
                    if plain_only:
                        vectors[rows] = mix(plain[rows], np.stack([sheet_vectors[parents[r]] for r in rows]), beta)
                    else:
                        vectors[rows] = mixed(own[geometry], sheet_features, beta, how, taps, scales.get(how))
                # stop 27's rows kept their labels (the re-measure in docs/encoder.md quotes them)
                label = f"beta={beta:<5g}" if plain_only else f"{geometry:<10} {how:<7} beta={beta:<5g}"
                variants.append((label, vectors, None, None))
                if how == "sum":
                    for query_beta in query_betas:
                        queried = mixed({"vector": plain[rows]}, sheet_features, query_beta, "sum", None, None)
                        variants.append((f"{geometry:<10} {how:<7} beta={beta:<5g} query beta={query_beta:g}",
                                         vectors, queried, None))
                    for second_beta in second_betas:  # inf: the sheet's own vector
                        second = plain.copy()
                        second[rows] = (sheet_features["vector"] if np.isinf(second_beta) else
                                        mixed({"vector": plain[rows]}, sheet_features, second_beta, "sum", None, None))
                        variants.append((f"{geometry:<10} {how:<7} beta={beta:<5g} second beta={second_beta:g}",
                                         vectors, None, second))

    kinds = ("stored", "upload") if len(rows) else ("stored",)
    plain_label = f"beta={0:<5g}"
    dump = open(args.dump, "w") if args.dump else None
    row_of = {int(r): n for n, r in enumerate(rows)}

    def score(vectors: np.ndarray, queried: np.ndarray | None, kind: str,
              second: np.ndarray | None = None) -> tuple[dict, list[float]]:
        """AP@50 of every query by group, and in query order."""
        scores: dict[str, list[float]] = {"cut": [], "uncut": [], "cut, no siblings": [], "ids": []}
        every: list[float] = []
        for q in queries:
            if kind == "upload" or not cut[q]:
                query = plain[q] if kind == "upload" else vectors[q]
            else:
                query = queried[row_of[q]] if queried is not None else vectors[q]
            family = {parents[q]} if parents[q] else set()
            relevant = by_patent[patents[q]] - {ids[q]} - family
            if not relevant:
                continue
            ranked = [ids[j] for j in visual_ranking(query, vectors, q, second=second, has_second=cut)
                      if j != q and ids[j] not in family]
            group = "cut" if cut[q] or ids[q] in was_cut else "uncut"
            ap = average_precision(ranked, relevant)
            scores[group].append(ap)
            scores["ids"].append((ids[q], group))
            every.append(ap)
            if args.no_siblings and parents[q]:
                others = siblings[parents[q]] - {ids[q]}
                if relevant - others:
                    scores["cut, no siblings"].append(
                        average_precision([d for d in ranked if d not in others], relevant - others))
        return scores, every

    baseline: dict[str, list[float]] = {}
    patent_of = dict(zip(ids, patents))
    if args.compare and len(rows):  # today's default: the tight crop + 1 x its sheet
        today = plain.copy()
        today[rows] = mix(plain[rows], np.stack([sheet_vectors[parents[r]] for r in rows]), 1.0)
        baseline = {kind: score(today, None, kind)[1] for kind in kinds}
    for label, vectors, queried, second in variants:
        for kind in kinds:
            if kind == "upload" and (queried is not None or label == plain_label):
                continue  # the same as the row without the query weight; beta 0's as its stored one
            scores, every = score(vectors, queried, kind, second)
            if dump:
                for (fid, group), ap in zip(scores["ids"], every):
                    dump.write(f"{'_'.join(label.split())}\t{kind}\t{fid}\t{group}\t{ap:.6f}\n")
            line = f"{label} {kind:<6} all {np.mean(every):.4f} (n={len(every)})"
            for group in ("cut", "uncut", "cut, no siblings"):
                if scores[group]:
                    line += f"  {group} {np.mean(scores[group]):.4f} (n={len(scores[group])})"
            if baseline.get(kind) and len(baseline[kind]) == len(every):
                from figsearch.evaluate.metrics import randomization_test

                line += (f"  vs today: {np.mean(every) - np.mean(baseline[kind]):+.4f} "
                         f"p={randomization_test(every, baseline[kind]):.3f}")
                line += by_patent_interval([patent_of[fid] for fid, _ in scores["ids"]],
                                           np.array(every) - np.array(baseline[kind]))
            print(line, flush=True)
    if dump:
        dump.close()


def by_patent_interval(patents: list[str], differences: np.ndarray, samples: int = 10000) -> str:
    """The mean per-patent difference and its 95 % bootstrap interval over patents (queries of one patent are
    not independent), and how many patents gained and lost."""
    per: dict[str, list[float]] = defaultdict(list)
    for patent, difference in zip(patents, differences):
        per[patent].append(float(difference))
    means = np.array([np.mean(v) for v in per.values()])
    draws = np.random.default_rng(0).choice(means, (samples, len(means))).mean(axis=1)
    return (f"; by patent {means.mean():+.4f} [{np.percentile(draws, 2.5):+.4f}, {np.percentile(draws, 97.5):+.4f}]"
            f" ({int((means > 1e-9).sum())} up, {int((means < -1e-9).sum())} down of {len(means)})")

if __name__ == "__main__":
    main()
