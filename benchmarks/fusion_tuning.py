"""Choosing fusion and re-ranking settings on TRAINING-side collections, fast, without the service.

Replays what ``figsearch evaluate`` does for every query figure (the service's candidate lists:
the best ``max(4 * ask, 100)`` figures of each modality, the union filled with exact cosines from
the stored vectors, then :func:`figsearch.search.fusion.fuse`) from the stored vectors with one
matrix product per modality, so that a grid of settings costs seconds. AP@k follows trec_eval
(divided by all relevant items). The numbers are for choosing settings only; reported numbers
come from ``figsearch evaluate``. Mode ``auto`` gets the collection's visual encoder calibration
(``fusion.near_thresholds``) as the service passes it; when that encoder has one, the rule without
it is printed beside it as ``auto-uncalibrated``.

Protocol: run it only on training-side data — the even-numbered 2007 designs
(``benchmarks/class_level_eval.py --parity even``) and, for same-patent, the shared-data collection
restricted to queries that are not design grants (``--skip-source us-design-grants``). Never on
``us-design-grants`` queries or odd-numbered 2007 designs.

Usage::

    python benchmarks/fusion_tuning.py COLLECTION --rule same-class:USPC:1 \\
        [--skip-source DIR ...] [-k 50] [--modes text,visual,avg,auto] [--calibration 0.55,0.4 ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from figsearch.evaluate.rules import build_qrels, load_pool, parse_rule
from figsearch.index.settings import encoder_settings
from figsearch.search import fusion, rerank
from figsearch.store import Collection


def load(collection: Collection, modality: str, allowed: set[str]):
    settings = encoder_settings(collection, modality)
    if settings is None:
        return [], np.zeros((0, 1), np.float32)
    ids, parts = [], []
    for chunk_ids, vectors, _ in collection.vectors.iterate(modality, settings["key"]):
        keep = [i for i, f in enumerate(chunk_ids) if f in allowed]
        ids += [chunk_ids[i] for i in keep]
        parts.append(vectors[keep])
    return ids, np.vstack(parts) if parts else np.zeros((0, 1), np.float32)


def ap_at(ranked: list[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant)


class Replay:
    """Per query, the service's candidate lists and the exact scores of the union."""

    def __init__(self, path: Path, rule: str, k: int, skip_sources: list[Path]) -> None:
        with Collection.open(path) as c:
            pool = load_pool(c)
            qrels = build_qrels(c, [parse_rule(rule)], pool=pool)
            skipped = set()
            for publication, source in c.patents.source_paths().items():
                if source and any(Path(source).resolve().is_relative_to(s.resolve()) for s in skip_sources):
                    skipped.add(publication)
            allowed = set(pool.figures)
            self.vids, self.V = load(c, "visual", allowed)
            visual = encoder_settings(c, "visual") or {}
            self.visual_name = (visual.get("identity") or {}).get("name") or visual.get("spec")
            self.visual_model = (visual.get("identity") or {}).get("model_sha256")
            self.tids, self.T = load(c, "text", allowed)
        self.k = k
        self.pool = pool
        self.qrels = {q: {d for d, g in r.items() if g >= 1} for q, r in qrels.items()
                      if pool.figures[q].patent not in skipped}
        self.queries = sorted(q for q in self.qrels if self.qrels[q])
        self.vrow = {f: i for i, f in enumerate(self.vids)}
        self.trow = {f: i for i, f in enumerate(self.tids)}
        print(f"{path}: {len(self.queries)} queries, {len(self.vids)} visual and {len(self.tids)} text vectors",
              file=sys.stderr)

    def lists(self, q: str):
        skip = self.pool.others(q)
        length = max(4 * (self.k + len(skip)), 100)
        out, qvec = {}, {}
        for modality, ids, matrix, row in (("visual", self.vids, self.V, self.vrow), ("text", self.tids, self.T, self.trow)):
            if q not in row:
                continue
            vector = matrix[row[q]]
            scores = matrix @ vector
            order = np.argsort(-scores, kind="stable")
            top = [(ids[i], float(scores[i])) for i in order[: length + len(skip)] if ids[i] not in skip][:length]
            out[modality] = top
            qvec[modality] = (vector, scores)
        exact = {}
        if len(out) == 2:
            union = {f for c in out.values() for f, _ in c}
            for modality, row in (("visual", self.vrow), ("text", self.trow)):
                listed = {f for f, _ in out[modality]}
                scores = qvec[modality][1]
                exact[modality] = {f: float(scores[row[f]]) for f in union - listed if f in row}
        return out, exact

    def visual_vectors(self, ids):
        return np.stack([self.V[self.vrow[f]] for f in ids])


def evaluate(replay: Replay, settings: list[tuple[str, dict]], rr: dict | None = None) -> dict[str, float]:
    totals = {name: 0.0 for name, _ in settings}
    for q in replay.queries:
        lists, exact = replay.lists(q)
        if rr is not None and "visual" in lists:
            fetch = lambda ids: {f: replay.V[replay.vrow[f]] for f in ids if f in replay.vrow}  # noqa: E731
            lists, exact = rerank.rerank_visual(lists, exact, replay.V[replay.vrow[q]][None, :], fetch, **rr)
        for name, kwargs in settings:
            fused = fusion.fuse(lists, exact, **kwargs)
            totals[name] += ap_at([f.figure_id for f in fused], replay.qrels[q], replay.k)
    return {name: total / len(replay.queries) for name, total in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", type=Path)
    parser.add_argument("--rule", default="same-patent")
    parser.add_argument("--skip-source", type=Path, action="append", default=[])
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--modes", default=",".join(fusion.MODES))
    parser.add_argument("--rerank", action="append", default=[], help="n_query,n_db,alpha (repeatable)")
    parser.add_argument("--calibration", action="append", default=[],
                        help="NEAR,FAR: also replay auto with these nearness thresholds ('-' for none; repeatable)")
    args = parser.parse_args()
    replay = Replay(args.collection, args.rule, args.k, args.skip_source)
    calibration = fusion.near_thresholds(replay.visual_name, replay.visual_model)  # what the service passes for its encoder
    settings = [(m, {"mode": m, **(calibration if m == "auto" else {})}) for m in args.modes.split(",")]
    if "auto" in args.modes.split(",") and any(v is not None for v in calibration.values()):
        settings.append(("auto-uncalibrated", {"mode": "auto"}))  # the rule before the nearness thresholds
    print(f"visual encoder {replay.visual_name}: auto calibration {calibration}", file=sys.stderr)
    for spec in args.calibration:
        near, far = (None if v.strip() == "-" else float(v) for v in spec.split(","))
        settings.append((f"auto[{spec}]", {"mode": "auto", "near": near, "far": far}))
    result = evaluate(replay, settings)
    print("no rerank  " + "  ".join(f"{n} {v:.4f}" for n, v in result.items()))
    for spec in args.rerank:
        nq, nd, alpha = spec.split(",")
        rr = {"query_neighbours": int(nq), "db_neighbours": int(nd), "alpha": float(alpha)}
        result = evaluate(replay, settings, rr)
        print(f"rerank {spec}  " + "  ".join(f"{n} {v:.4f}" for n, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
