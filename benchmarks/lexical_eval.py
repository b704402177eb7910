"""Dense-only vs lexical-only (BM25) vs fused text channel for word queries, on training-side sets.

    PYTHONPATH=src python benchmarks/lexical_eval.py -c COLLECTION --set upair|designs-even|glossary \
        [--weights 0.2,0.35,0.5,0.65,0.8] [--depth 200] [--service-modes text,auto] [--no-pairs]

COLLECTION must have text vectors and the lexical table (``figsearch index`` fills it; a copy of an older
collection gets it from ``--build-lexical``, which writes). Word queries, and their truth:

- ``upair``: each distinct component label of the ``upair-queries`` figures (lower-cased, at least 3
  characters and one letter) that at least two of those figures carry is a query; relevant = the upair
  figures that carry it. Only upair figures are ranked (the others are left out of the ranking). The label
  lists are not indexed, but 45 of the 187 labels also occur in the title or figure description of a figure
  that carries them (both indexed), so the truth is not independent of either channel.
- ``designs-even``: each even-numbered 2007 design's title is a query; relevant = the other even-numbered
  2007 designs of the same USPC class (metadata_2007.txt); the query's own patent is left out; only
  even-numbered 2007 designs are ranked. Class-level text retrieval.
- ``glossary``: each glossary entry (sign, name) of a patent whose drawings have numerals read in them: the
  name is the query; relevant = that patent's figures in which the numeral was read. Derived from the
  linking itself (a figure's linked sentences are the ones that say its numerals), so BM25 is favoured by
  construction. Design grants and odd-numbered 2007 designs are left out of the ranking.

Evaluation side (never used to choose anything; measured once, after the weight was chosen):

- ``designs-odd``: as ``designs-even`` on the odd-numbered 2007 designs.
- ``grants``: each design grant's title is a query; relevant = that patent's drawings (same patent); every
  drawing of the collection is ranked.

The dense list is the cosine of the query's text vector (the collection's text encoder) with every ranked
figure's stored text vector, its first ``--depth``; the lexical list is FTS5's BM25 of
``lexical.match_expression``, its first ``--depth``; fused = ``lexical.fuse_text`` at each weight, and RRF
(k=60) of the two lists. ``--service-modes text,auto`` also runs every query through ``SearchService.search``
in those modes with ``lexical`` off and on (the shipped path: candidate lists of 4 x k = 4,000, k = 1,000; the
ranked figures kept; the BM25 share per query, ``lexical.query_weight``), each "lexical" row tested against its
mode's "dense" row. "fused per-query" is ``fuse_text`` at ``lexical.query_weight`` of the dense list's best cosine
(over the ranked figures; the service takes it over the whole collection). Prints AP@50 / P@10 / MRR
(trec_eval's definitions, figsearch.evaluate.metrics) and paired sign-flip p-values (10,000 flips, seed 0)
of each variant against dense-only on AP@50.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from figsearch.evaluate.metrics import per_query  # noqa: E402
from figsearch.search import lexical  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
MEASURES = ["AP@50", "P@10", "RR"]


def sign_flip(a, b, flips: int = 10000, seed: int = 0) -> float:
    d = np.asarray(b) - np.asarray(a)
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(flips, len(d)))
    return float(((np.abs((signs * d).mean(axis=1)) >= observed - 1e-12).sum() + 1) / (flips + 1))


def design_2007(data: Path) -> dict[str, tuple[str, str]]:
    """publication number (``USD0534331S1``) -> (USPC class, title)."""
    rows = {}
    for line in (data / "us-design-2007" / "metadata_2007.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0].startswith("USD"):
            rows[parts[0] + "S1"] = (parts[1].strip(), parts[2].strip())
    return rows


def evaluation_patents(data: Path) -> set[str]:
    """The patents no setting may be chosen by: the design grants and the odd-numbered 2007 designs."""
    grants = {re.sub(r"-.*", "", p.name) + "S1" for p in (data / "us-design-grants").iterdir() if p.is_dir()}
    odd = {p for p in design_2007(data) if int(re.sub(r"\D", "", p[:-2])) % 2 == 1}
    return grants | odd


def _design_titles(data, figures, parity: int, queries: dict, qrels: dict, leave_out: dict) -> set[str]:
    """The 2007 designs whose number has ``parity`` (0: even, the training side; 1: odd, evaluation only): each
    title a query, the other designs of its USPC class relevant, its own patent left out; returns the ranked figures."""
    meta = {p: v for p, v in design_2007(data).items() if int(re.sub(r"\D", "", p[:-2])) % 2 == parity}
    by_patent: dict[str, list[str]] = {}
    for f in figures:
        if f.patent in meta and f.role.value == "drawing":
            by_patent.setdefault(f.patent, []).append(f.figure_id)
    by_class: dict[str, set[str]] = {}
    for patent in by_patent:
        by_class.setdefault(meta[patent][0], set()).add(patent)
    for patent in sorted(by_patent):
        cls, title = meta[patent]
        relevant = {fid for other in by_class[cls] - {patent} for fid in by_patent[other]}
        if relevant and title:
            queries[patent] = title
            qrels[patent] = dict.fromkeys(relevant, 1)
            leave_out[patent] = {patent}
    return {fid for ids in by_patent.values() for fid in ids}


def build_set(name: str, collection, data: Path):
    """(queries {qid: text}, qrels {qid: {figure: 1}}, ranked figure ids, {qid: patents left out})."""
    figures = collection.figures()
    queries, qrels, leave_out = {}, {}, {}
    if name == "upair":
        carriers: dict[str, set[str]] = {}
        by_source = {Path(f.source_file or "").stem: f.figure_id for f in figures if f.source_file}
        ranked = set()
        for path in sorted((data / "upair-queries" / "sections").glob("*/*/*.json")):
            figure_id = by_source.get(path.stem)
            if figure_id is None:
                continue
            ranked.add(figure_id)
            for label in json.loads(path.read_text(encoding="utf-8")).get("component_labels", []):
                label = " ".join(label.lower().split())
                if len(label) >= 3 and re.search(r"[a-z]", label):
                    carriers.setdefault(label, set()).add(figure_id)
        for i, (label, carrying) in enumerate(sorted(carriers.items())):
            if len(carrying) >= 2:
                queries[f"u{i}"] = label
                qrels[f"u{i}"] = dict.fromkeys(carrying, 1)
    elif name == "designs-even":
        ranked = _design_titles(data, figures, 0, queries, qrels, leave_out)
    elif name == "glossary":
        excluded = evaluation_patents(data)
        ranked = {f.figure_id for f in figures if f.patent not in excluded and f.role.value == "drawing"}
        db = collection.db
        rows = db.execute(
            """SELECT g.publication_number, g.sign, g.term, rs.figure_id FROM glossary g
               JOIN figures f ON f.publication_number = g.publication_number
               JOIN reference_signs rs ON rs.figure_id = f.figure_id AND rs.kind = 'numeral' AND rs.text = g.sign
               ORDER BY 1, 2""").fetchall()
        for patent, sign, term, figure_id in rows:
            if patent in excluded or figure_id not in ranked:
                continue
            qid = f"{patent}:{sign}"
            queries[qid] = term
            qrels.setdefault(qid, {})[figure_id] = 1
    elif name == "designs-odd":  # EVALUATION side: measured once, after choosing
        ranked = _design_titles(data, figures, 1, queries, qrels, leave_out)
    elif name == "grants":  # EVALUATION side: measured once, after choosing
        grants = evaluation_patents(data) - set(design_2007(data))
        ranked = {f.figure_id for f in figures if f.role.value == "drawing"}
        for patent in sorted(grants):
            own = [f.figure_id for f in figures if f.patent == patent and f.role.value == "drawing"]
            title = collection.patents.title(patent) if own else None
            if own and title:
                queries[patent] = title
                qrels[patent] = dict.fromkeys(own, 1)
    else:
        raise SystemExit(f"unknown set {name!r}")
    return queries, qrels, ranked, leave_out


def rrf(lists, k: int = 60):
    scores: dict[str, float] = {}
    for candidates in lists:
        for rank, (f, _) in enumerate(candidates, start=1):
            scores[f] = scores.get(f, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-round(item[1], 12), item[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--collection", required=True)
    parser.add_argument("--set", required=True, choices=["upair", "designs-even", "glossary", "designs-odd", "grants"])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--weights", default="0.2,0.35,0.5,0.65,0.8")
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--service-modes", default="", metavar="MODES",
                        help="also run every query through SearchService.search in these modes (e.g. text,auto), "
                             "lexical off and on (at lexical.query_weight's share)")
    parser.add_argument("--no-pairs", action="store_true", help="BM25 of the single words only (no adjacent pairs)")
    parser.add_argument("--timing", type=int, default=0, metavar="N",
                        help="also time N of the set's queries through the service (mode text, k=10), lexical off "
                             "and on alternating: median ms of each and their ratio, with the load average")
    parser.add_argument("--build-lexical", action="store_true", help="fill the lexical table first (writes)")
    args = parser.parse_args()

    from figsearch.embed.base import l2_normalise
    from figsearch.search.service import SearchService
    from figsearch.store import Collection

    if args.no_pairs:
        plain = lexical.match_expression
        lexical.match_expression = lambda text, pairs=False: plain(text, pairs=False)
    if args.build_lexical:
        with Collection.open(args.collection, write=True) as writable:
            print(lexical.sync(writable).summary())
    service = SearchService.open(args.collection)
    collection = service.collection
    if not collection.lexical.present():
        raise SystemExit(f"{args.collection} has no lexical table: run figsearch index on it, or --build-lexical")
    data = Path(args.data)
    queries, qrels, ranked, leave_out = build_set(args.set, collection, data)
    key = service._settings("text")["key"]
    stored = collection.vectors.fetch("text", key, sorted(ranked))
    ids = sorted(stored)
    matrix = np.stack([stored[f] for f in ids])
    runs: dict[str, dict[str, list]] = {}
    weights = [float(w) for w in args.weights.split(",")]
    for qid, text in queries.items():
        skip_patents = leave_out.get(qid, set())
        allowed = lambda f: f in ranked and (not skip_patents or collection.figure(f).patent not in skip_patents)  # noqa: E731
        vector = l2_normalise(service._encode("text", [text]))[0]
        cosines = matrix @ vector
        order = np.argsort(-cosines, kind="stable")
        dense = [(ids[i], float(cosines[i])) for i in order if allowed(ids[i])][: args.depth]
        all_cos = dict(zip(ids, cosines.tolist()))
        match = lexical.match_expression(text)  # None: function words only, nothing for BM25
        found = collection.lexical.search(match, 5 * args.depth + 500) if match else []
        bm = [(f, s) for f, s in found if allowed(f)][: args.depth]
        runs.setdefault("dense", {})[qid] = dense[:50]
        runs.setdefault("lexical", {})[qid] = bm[:50]
        runs.setdefault("rrf", {})[qid] = rrf([dense, bm])[:50]
        for w in weights:
            fused, _ = lexical.fuse_text(dense, bm, all_cos, w)
            runs.setdefault(f"fused w={w:g}", {})[qid] = fused[:50]
        # the shipped per-query share; here from the ranked figures' best cosine (the service: the whole collection's)
        fused, _ = lexical.fuse_text(dense, bm, all_cos, lexical.query_weight(dense[0][1] if dense else None))
        runs.setdefault("fused per-query", {})[qid] = fused[:50]
    if args.service_modes:
        from figsearch.records import Hit
        from figsearch.search.query import Filters, Query

        # the benchmark reads ids and scores only: 1,000 hits' sentences and signs would cost most of the time
        service._hits = lambda page, offset: [Hit(item.figure_id, "", item.score, offset + rank, scores=item.scores)
                                              for rank, item in enumerate(page, start=1)]

        for mode in args.service_modes.split(","):
            for on in (False, True):
                name = f"service {mode} " + ("lexical" if on else "dense")
                for qid, text in queries.items():
                    result = service.search(Query(text=text, mode=mode, k=1000, lexical=on,
                                                  filters=Filters(exclude_patents=tuple(leave_out.get(qid, ())))))
                    hits = [(h.figure_id, h.score) for h in result.hits if h.figure_id in ranked]
                    runs.setdefault(name, {})[qid] = hits[:50]
    qids = sorted(queries)
    relevant = np.mean([len(qrels[q]) for q in qids])
    print(f"set {args.set}: {len(qids)} queries, {relevant:.1f} relevant on average, {len(ranked)} figures ranked "
          f"({len(ids)} with a text vector)")
    for name, run in runs.items():
        base = per_query(qrels, runs[name.replace("lexical", "dense") if name.startswith("service") else "dense"],
                         MEASURES, qids)
        values = per_query(qrels, {q: [(f, float(s)) for f, s in run[q]] for q in qids}, MEASURES, qids)
        means = {m: np.mean([values[m][q] for q in qids]) for m in values}
        p = sign_flip([base["AP@50"][q] for q in qids], [values["AP@50"][q] for q in qids]) if not name.endswith("dense") else 1.0
        print(f"{name:>16}: AP@50 {means['AP@50']:.4f}  P@10 {means['P@10']:.4f}  MRR {means['RR']:.4f}"
              + (f"  (AP@50 vs dense {means['AP@50'] - np.mean([base['AP@50'][q] for q in qids]):+.4f}, p={p:.4f})"
                 if not name.endswith("dense") else ""))
    if args.timing:
        timing(service, [queries[q] for q in qids][: args.timing])
    service.close()


def timing(service, texts: list[str]) -> None:
    import os
    import statistics
    import time

    from figsearch.search.query import Query

    service.search(Query(text=texts[0], mode="text", k=10, lexical=True))  # loads the encoder
    took = {False: [], True: []}
    for i, text in enumerate(texts):
        for on in ((False, True) if i % 2 == 0 else (True, False)):
            start = time.perf_counter()
            service.search(Query(text=text, mode="text", k=10, lexical=on))
            took[on].append((time.perf_counter() - start) * 1000)
    off, on = statistics.median(took[False]), statistics.median(took[True])
    print(f"timing: {len(texts)} queries, mode text, k=10: dense {off:.1f} ms, lexical {on:.1f} ms (median), "
          f"ratio {on / off:.2f}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
