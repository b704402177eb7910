"""Words in drawings: how much they bring to the text channel, for stored figures and uploads.

Three parts, on a collection built from training-side data only (never ``us-design-grants``):

- ``--sweep``: the share of a figure's text vector that its drawing's words take
  (``figsearch.link.text.WORDS_SHARE``). For each share, every drawing's text vector is rebuilt in
  memory from its sentences and words (``pipeline.embed.text_vector``, the collection's text
  encoder) and same-patent queries by figure are scored by exact cosine over all indexed drawings:
  mAP@k for ``text`` and for ``avg`` (mean of the text and the stored visual cosine; a figure
  without text scores 0 for text), over all queries and over the queries whose drawing has words.
- ``--upload``: uploaded utility sheets (the stored sheet images of the US applications, the EP
  publication and the US utility patents, decoded as an upload is) searched through the search
  service in ``text`` mode (the text is the words read in the sheet, nothing typed), ``visual``
  and ``avg``; the query sheet and the figures cut from it are removed from the results; the
  other drawings of its patent are relevant. Also the milliseconds reading the words adds per
  upload (``avg`` with and without reading, alternating, process and wall time).
- ``--truth``: the words precision and recall on ``benchmarks/ocr_truth_sheets.json``, as
  ``ocr_benchmark.py --only truth`` computes them.

AP@k is trec_eval's (ir_measures): divided by all relevant items; a query without hits scores 0.

Usage (from the repository root)::

    figsearch build ../shared/data/us-applications ../shared/data/ep-documents \\
        ../shared/data/us-utility-sheets ../shared/data/upair-queries ../shared/data/us-design-pdfs -c /tmp/w14/train
    nice -n 10 python benchmarks/drawing_words_eval.py -c /tmp/w14/train --sweep --upload --truth
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
#: the patents whose sheets are uploaded: utility patents with several drawing sheets
UPLOAD_SOURCES = ("us-applications", "ep-documents", "us-utility-sheets")
SHARES = (0.0, 0.1, 0.25, 0.4, 0.5, 0.75)


def ap_at(qrels: dict[str, set[str]], run: dict[str, list[str]], k: int) -> dict[str, float]:
    """trec_eval's AP@k per query (ir_measures); a query missing from the run scores 0."""
    import ir_measures
    from ir_measures import AP, Qrel, ScoredDoc

    measure = AP @ k
    rels = [Qrel(q, d, 1) for q, docs in qrels.items() for d in docs]
    scored = [ScoredDoc(q, d, float(len(docs) - i)) for q, docs in run.items() for i, d in enumerate(docs)]
    out = {q: 0.0 for q in qrels}
    for metric in ir_measures.iter_calc([measure], rels, scored):
        out[metric.query_id] = metric.value
    return out


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def indexed_drawings(coll):
    from figsearch.records import FigureRole

    return coll.figures(roles=(FigureRole.DRAWING,))


# -- the share sweep ------------------------------------------------------------------------------


def sweep(coll, k: int, data: Path) -> None:
    from figsearch.embed.catalog import create_text, encoder_key
    from figsearch.index.settings import encoder_settings
    from figsearch.link.text import figure_text, words_text
    from figsearch.pipeline.embed import text_vector

    from figsearch.embed.catalog import create_visual

    settings = encoder_settings(coll, "text") or {"spec": "minilm"}  # (recorded when an index run ends)
    encoder = create_text(settings["spec"])
    visual = encoder_settings(coll, "visual") or {"key": encoder_key(create_visual("drawing"))}
    figures = [f for f in indexed_drawings(coll)]
    texts = {f.figure_id: figure_text(coll, f) for f in figures}
    # uploads: a sheet's stored words are what reading it as an upload gives (the same reader;
    # tests/test_search_drawing_words.py checks it on a real sheet); its text query is their words_text
    uploads = {sheet.figure_id: (sheet, children, words_text(coll.words.of(sheet.figure_id)))
               for sheet, children in upload_queries(coll, data)}
    strings = list(dict.fromkeys(s for t in texts.values() for s in [*t.sentences, *([t.words] if t.words else [])]))
    strings += [w for _, _, w in uploads.values() if w and w not in strings]
    start = time.process_time()
    embedded = dict(zip(strings, encoder.encode(strings)))
    print(f"encoded {len(strings)} distinct texts of {len(figures)} drawings in {time.process_time() - start:.0f} s CPU "
          f"({settings['spec']})")
    vis = coll.vectors.fetch("visual", visual["key"], [f.figure_id for f in figures]) if visual else {}
    ids = [f.figure_id for f in figures]
    patent = {f.figure_id: f.patent for f in figures}
    by_patent = defaultdict(set)
    for f in figures:
        by_patent[f.patent].add(f.figure_id)
    qrels = {i: by_patent[patent[i]] - {i} for i in ids if len(by_patent[patent[i]]) > 1}
    with_words = {i for i in qrels if texts[i].words}
    V = np.array([vis[i] if i in vis else np.zeros(len(next(iter(vis.values())))) for i in ids], np.float32)
    print(f"{len(qrels)} same-patent queries ({len(with_words)} of them drawings with words); "
          f"{sum(1 for t in texts.values() if t.words)} of {len(ids)} drawings have words")
    up_qrels = {q: by_patent[sheet.patent] - children - {q} for q, (sheet, children, _) in uploads.items()}
    up_qrels = {q: r for q, r in up_qrels.items() if r}
    up_words = [q for q in up_qrels if uploads[q][2]]
    print(f"{len(up_qrels)} uploaded utility sheets ({len(up_words)} with words): text query = their words")
    print(f"| words share | text mAP@{k} all | text, queries with words | avg mAP@{k} all | avg, queries with words "
          f"| uploads by their words: text mAP@{k} all | uploads with words |")
    print("|---|---|---|---|---|---|---|")
    for share in SHARES:
        T = np.zeros((len(ids), len(next(iter(embedded.values())))), np.float32)
        has = np.zeros(len(ids), bool)
        for row, i in enumerate(ids):
            t = texts[i]
            if not t:
                continue
            sentences = np.array([embedded[s] for s in t.sentences]) if t.sentences else None
            words = embedded[t.words] if t.words and share > 0 else None
            if sentences is None and words is None:
                continue
            T[row] = text_vector(sentences, words, share)
            has[row] = True
        runs = {"text": {}, "avg": {}}
        for row, i in enumerate(ids):
            if i not in qrels:
                continue
            t_scores = T @ T[row] if has[row] else np.zeros(len(ids))
            v_scores = V @ V[row]
            for mode, scores in (("text", t_scores), ("avg", (t_scores + v_scores) / 2)):
                scores = scores.copy()
                scores[row] = -np.inf
                if mode == "text":
                    scores[~has] = -np.inf  # no text vector: not in the text index
                order = [ids[j] for j in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[j])]
                runs[mode][i] = order if (mode != "text" or has[row]) else []
        cells = []
        for mode in ("text", "avg"):
            ap = ap_at(qrels, runs[mode], k)
            cells += [mean(ap.values()), mean(ap[q] for q in with_words)]
        up_runs = {}
        for q in up_words:
            sheet, children, words = uploads[q]
            vector = embedded[words] / np.linalg.norm(embedded[words])
            scores = T @ vector
            scores[~has] = -np.inf
            drop = children | {q}
            order = [ids[j] for j in np.argsort(-scores, kind="stable") if np.isfinite(scores[j]) and ids[j] not in drop]
            up_runs[q] = order[:k]
        ap = ap_at(up_qrels, up_runs, k)
        cells += [mean(ap.values()), mean(ap[q] for q in up_words)]
        print(f"| {share:g} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


# -- uploads through the service ------------------------------------------------------------------


def upload_queries(coll, data: Path):
    """(sheet figure, its own cut figures) of the utility patents read from UPLOAD_SOURCES."""
    from figsearch.records import FigureRole

    sources = [str((data / s).resolve()) for s in UPLOAD_SOURCES]
    paths = coll.patents.source_paths()
    patents = [p for p, path in paths.items() if path and any(str(Path(path).resolve()).startswith(s) for s in sources)]
    out = []
    for number in sorted(patents):
        figures = coll.figures(patent=number)
        for f in figures:
            if f.parent_id is None and f.role in (FigureRole.DRAWING, FigureRole.SPLIT_SHEET) and f.image_path:
                out.append((f, {c.figure_id for c in figures if c.parent_id == f.figure_id}))
    return out


def upload(coll_path: Path, data: Path, k: int, timing_rounds: int, timing_every: int = 1) -> None:
    from figsearch.errors import InputError
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService
    from figsearch.store import Collection

    with SearchService(Collection.open(coll_path), owns=True) as service:
        coll = service.collection
        indexed = {f.figure_id: f.patent for f in indexed_drawings(coll)}
        queries = upload_queries(coll, data)
        qrels, runs, words = {}, {"text": {}, "visual": {}, "avg": {}}, {}
        for sheet, children in queries:
            relevant = {i for i, p in indexed.items() if p == sheet.patent} - children - {sheet.figure_id}
            if not relevant:
                continue
            qrels[sheet.figure_id] = relevant
            image = coll.path(sheet.image_path).read_bytes()
            drop = children | {sheet.figure_id}
            for mode in runs:
                try:
                    result = service.search(Query(image=image, mode=mode, k=k + len(drop)))
                except InputError:  # text mode and no words read: nothing to search with
                    runs[mode][sheet.figure_id] = []
                    continue
                runs[mode][sheet.figure_id] = [h.figure_id for h in result.hits if h.figure_id not in drop][:k]
                if mode == "text":
                    words[sheet.figure_id] = result.query_words
        with_words = [q for q in qrels if words.get(q)]
        print(f"{len(qrels)} uploaded utility sheets of {len({s.patent for s, _ in queries if s.figure_id in qrels})} "
              f"patents (from {', '.join(UPLOAD_SOURCES)}); words read in {len(with_words)}; collection of "
              f"{len(indexed)} indexed drawings")
        print(f"| queries | text (its words) mAP@{k} | visual | avg |")
        print("|---|---|---|---|")
        for name, subset in (("all uploaded sheets", list(qrels)), ("sheets with words read", with_words)):
            cells = [mean(ap_at({q: qrels[q] for q in subset}, runs[m], k).values()) for m in ("text", "visual", "avg")]
            print(f"| {name} ({len(subset)}) | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
        sample = [coll.path(s.image_path).read_bytes() for s, _ in queries if s.figure_id in qrels][::timing_every]
        # the milliseconds reading adds: avg with and without it, alternating, same images
        service.search(Query(image=sample[0], mode="avg", k=10))  # warm models
        spent = {True: [0.0, 0.0], False: [0.0, 0.0]}
        for _ in range(timing_rounds):
            for image in sample:
                for read in (False, True):
                    wall, cpu = time.perf_counter(), time.process_time()
                    service.search(Query(image=image, mode="avg", k=10, read_words=read))
                    spent[read][0] += time.perf_counter() - wall
                    spent[read][1] += time.process_time() - cpu
        n = len(sample) * timing_rounds
        added_cpu = (spent[True][1] - spent[False][1]) / n * 1000
        added_wall = (spent[True][0] - spent[False][0]) / n * 1000
        print(f"per upload (avg mode, {n} searches each way): CPU {spent[False][1] / n * 1000:.0f} ms without reading "
              f"the words, {spent[True][1] / n * 1000:.0f} ms with (+{added_cpu:.0f} ms, "
              f"x{spent[True][1] / spent[False][1]:.2f}); wall +{added_wall:.0f} ms; load average {os.getloadavg()[0]:.1f}")
        examples = [(q, words[q]) for q in with_words[:3]]
        for q, w in examples:
            print(f"  e.g. {q}: {' '.join(w)[:120]}")


def truth(data: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import ocr_benchmark

    from figsearch.ocr import create_engine

    def load_sheet(data: Path, sheet: str):
        """ocr_benchmark's loader, with PDF pages rendered by ``figsearch.imaging`` (where ingest's
        renderer lives now: ``ingest.pdf._render``, which ocr_benchmark imports, is gone)."""
        if "#page=" not in sheet:
            return original(data, sheet)
        import pypdfium2 as pdfium

        from figsearch.imaging import render_pdf_page

        name, page = sheet.split("#page=")
        pdf = pdfium.PdfDocument(str(data / name))
        try:
            return render_pdf_page(pdf, int(page) - 1, name).convert("L")
        finally:
            pdf.close()

    original = ocr_benchmark.load_sheet
    ocr_benchmark.load_sheet = load_sheet
    result = ocr_benchmark.run_truth_set(create_engine("tesseract"), data, verbose=False)
    print(f"truth set (ocr_truth_sheets.json, {result['sheets']} sheets), words precision / recall:")
    for key, value in result.items():
        if isinstance(value, dict) and "word_precision" in value:
            print(f"  {key}: {value['word_precision']:.3f} / {value['word_recall']:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--collection", type=Path, required=True)
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("FIGSEARCH_SHARED_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--upload", action="store_true")
    parser.add_argument("--truth", action="store_true")
    parser.add_argument("--timing-rounds", type=int, default=1)
    parser.add_argument("--timing-every", type=int, default=1, help="Time every n-th uploaded sheet only.")
    args = parser.parse_args()
    if not (args.sweep or args.upload or args.truth):
        parser.error("choose at least one of --sweep, --upload, --truth")
    if args.sweep:
        from figsearch.store import Collection

        with Collection.open(args.collection) as coll:
            sweep(coll, args.k, args.data)
    if args.upload:
        upload(args.collection, args.data, args.k, args.timing_rounds, args.timing_every)
    if args.truth:
        truth(args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
