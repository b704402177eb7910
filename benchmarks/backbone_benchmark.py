"""The ``backbone`` encoder, and any other visual encoder, against HOG on the evaluation sets, in one run.

    PYTHONPATH=src python benchmarks/backbone_benchmark.py --model src/figsearch/models/drawing-backbone.onnx \
        [--encoder hog --encoder drawing] [--speed]
    PYTHONPATH=src python benchmarks/backbone_benchmark.py --encoder hog --encoder lines \
        --encoder drawing --encoder drawing:MODEL.pt --speed      # no backbone model: encoders only

- same-patent: the 50 US design grants (``us-design-grants``, never trained on), as
  ``benchmarks/visual_map.py`` reads them (front pages excluded, longer side <= 1600 px);
- class level: the odd-numbered 2007 designs (``us-design-2007``, never trained on), one drawing
  each, relevant = same USPC class at depth 1 (``D2``), every drawing a query against the others;
- words -> drawings: each odd 2007 patent's title, through the model's text adapter, searches the
  odd 2007 drawings (which carry no text in this index): rank of the patent's own drawing, and the
  class-level mAP@50 of those text queries;
- ``--speed``: drawings/s of every encoder of the run on the grants (end to end: decoding
  excluded, preprocessing included), with its ratio to ``lines`` and to ``hog`` measured in the same
  run, and the median time of one query image; the 1-minute load average is printed beside them
  because the machine is shared. ``--as-written SPEC`` adds a ``backbone:`` encoder run the way every
  backbone model ran before stop 19 (the file's graph as written, batches of 32 on one multi-threaded
  run: ``BackboneEncoder(chunk=None, rewrite_pooling=False)``), the control for the faster path;
  ``--rounds N`` repeats the timing in alternating order and prints the median of each encoder's
  rounds and its ratio to the first ``--encoder``/``--as-written`` encoder of the command line;
- ``--rerank SPEC`` (repeatable; ``Q,D,ALPHA``, ``diffusion,K,GAMMA,ALPHA`` or ``kreciprocal,K1,K2,LAMBDA``, as
  ``search.rerank.settings_from_spec`` reads them): every encoder's two quality numbers once more with its visual
  ranking re-ranked as a visual search with ``--rerank`` does it (each query's best ``--rerank-candidates``
  drawings, 200 = the service's list for k = 50, re-scored by ``search.rerank.rerank``), and the milliseconds the
  re-ranking took per query.

Stop 19's speed command (docs/encoder.md):

    FIGSEARCH_SHARED_DATA=../shared/data PYTHONPATH=src python benchmarks/backbone_benchmark.py --no-quality \
        --speed --speed-sheets 96 --rounds 4 --baselines hog --as-written backbone:drawing-backbone3.onnx \
        --encoder backbone:drawing-backbone3.onnx --as-written backbone:drawing-backbone5-lite0-288.onnx \
        --encoder backbone:drawing-backbone5-lite0-288.onnx

AP@50 as trec_eval defines it (divided by all relevant items).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from visual_map import SHARED, load_sheets, mean_ap  # noqa: E402

from figsearch.embed.catalog import create_visual  # noqa: E402
from figsearch.evaluate.classes import levels  # noqa: E402


def odd_2007(folder: Path) -> tuple[list[Image.Image], list[str], list[str]]:
    images, classes, titles = [], [], []
    for line in (folder / "metadata_2007.txt").read_text().splitlines():
        number, code, title = line.split("\t")[:3]
        if int(number[-1]) % 2 == 0 or not (folder / f"{number}.png").is_file():
            continue
        with Image.open(folder / f"{number}.png") as image:
            images.append(image.convert("L"))
        cut = levels("USPC", code)
        classes.append(cut[0] if cut else f"?{number}")
        titles.append(title)
    return images, classes, titles


def words_to_drawings(encoder, titles: list[str], vectors: np.ndarray, classes: list[str]) -> dict:
    queries = encoder.encode_text_query(titles)
    scores = queries @ vectors.T
    own = np.diag(scores)
    ranks = (scores > own[:, None]).sum(1) + 1
    labels = np.array(classes)
    aps = []
    for q in range(len(titles)):
        relevant = labels == labels[q]
        top = np.argsort(-scores[q], kind="stable")[:50]
        hits = relevant[top]
        aps.append(float((np.cumsum(hits) / np.arange(1, 51) * hits).sum() / relevant.sum()))
    return {"median_rank": float(np.median(ranks)), "recall@10": float((ranks <= 10).mean()),
            "class_map50": float(np.mean(aps)), "queries": len(titles), "drawings": len(vectors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="backbone model file (.onnx); without it only the --encoder specs run")
    parser.add_argument("--encoder", action="append", default=[], help="other encoders in the same run (hog, drawing, ...)")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed-only", action="store_true", help="only the timings (no retrieval quality)")
    parser.add_argument("--speed-sheets", type=int, default=0, help="time on the first N grant sheets only (0: all)")
    parser.add_argument("--no-quality", action="store_true", help="with --speed and --encoder: the timings of those encoders only")
    parser.add_argument("--as-written", action="append", default=[], metavar="SPEC",
                        help="a backbone:MODEL encoder run as before stop 19 (graph as written, one run per batch of 32)")
    parser.add_argument("--rounds", type=int, default=1, help="timing rounds, in alternating order (median reported)")
    parser.add_argument("--rerank", action="append", default=[], metavar="SPEC",
                        help="also score each encoder with its visual ranking re-ranked "
                             "(Q,D,ALPHA, diffusion,K,GAMMA,ALPHA or kreciprocal,K1,K2,LAMBDA)")
    parser.add_argument("--rerank-candidates", type=int, default=200,
                        help="candidates re-ranked per query (the service's visual list for k = 50: 200)")
    parser.add_argument("--baselines", default="hog,lines", help="baseline encoders of the speed ratios (comma-separated)")
    args = parser.parse_args()
    if args.speed_only:
        if not args.model:
            parser.error("--speed-only measures the backbone model: give --model")
        speed(args)
        return

    sheets, patents = load_sheets(SHARED / "us-design-grants", 1600)
    if args.no_quality:
        speed_of(speed_encoders(args), sheets[: args.speed_sheets or None], args.rounds, args.baselines.split(","))
        return
    images, classes, titles = odd_2007(SHARED / "us-design-2007")
    print(f"design grants: {len(sheets)} sheets; odd 2007: {len(images)} drawings; load average {os.getloadavg()[0]:.1f}")
    encoders = {}
    backbone = create_visual(f"backbone:{args.model}", threads=args.threads) if args.model else None
    if backbone is not None:
        encoders["backbone"] = backbone
    for spec in args.encoder:
        encoders[spec] = create_visual(spec)
    hog_row = encoders.get("hog")
    print(f"{'encoder':10s} {'grants same-patent':>20s} {'odd-2007 same-class':>20s}")
    odd_vectors, scores = {}, {}
    for name, encoder in encoders.items():
        sheet_vectors = encoder.encode(sheets)
        grants = mean_ap(sheet_vectors, patents)[0]
        odd_vectors[name] = encoder.encode(images)
        klass = mean_ap(odd_vectors[name], classes)[0]
        scores[name] = (grants, klass)
        ratio = f"  ({grants / scores['hog'][0]:.2f}x / {klass / scores['hog'][1]:.2f}x hog)" if "hog" in scores else ""
        print(f"{name:10s} {grants:20.4f} {klass:20.4f}{ratio}", flush=True)
        if args.rerank and name != "hog":
            reranked_rows(name, sheet_vectors, patents, odd_vectors[name], classes, args, scores.get("hog"))
    if backbone is not None:
        words = words_to_drawings(backbone, titles, odd_vectors["backbone"], classes)
        print(f"words -> drawings (odd 2007 titles): own drawing median rank {words['median_rank']:.0f} of "
              f"{words['drawings']}, recall@10 {words['recall@10']:.3f}, same-class mAP@50 {words['class_map50']:.4f}")
    if args.speed:
        speed_of(encoders if hog_row is not None else {"hog": create_visual("hog"), **encoders}, sheets[: args.speed_sheets or None],
                 args.rounds, args.baselines.split(","))


def reranked_rows(name: str, sheet_vectors, patents, odd_vectors, classes, args, hog=None) -> None:
    """The encoder's grants and class-level mAP@50 with its visual ranking re-ranked by each ``--rerank`` spec."""
    from figsearch.search.rerank import reranked_similarities, settings_from_spec
    from figsearch.train.metric import same_group_aps

    for spec in args.rerank:
        settings = settings_from_spec(spec)
        values, started = [], time.perf_counter()
        for vectors, labels in ((sheet_vectors, patents), (odd_vectors, classes)):
            similarities = reranked_similarities(vectors, args.rerank_candidates, **settings)
            values.append(float(np.mean(list(same_group_aps(vectors, labels, 50, similarities).values()))))
        ms = 1000 * (time.perf_counter() - started) / (len(sheet_vectors) + len(odd_vectors))
        ratio = f"  ({values[0] / hog[0]:.2f}x / {values[1] / hog[1]:.2f}x hog)" if hog else ""
        print(f"{name} +rerank {spec}: {values[0]:.4f} {values[1]:.4f}{ratio}; re-ranking {ms:.1f} ms per query "
              f"({args.rerank_candidates} candidates; load average {os.getloadavg()[0]:.1f})", flush=True)


def speed_encoders(args) -> dict:
    """The encoders of a --no-quality speed run, in command-line order (--encoder and --as-written interleaved)."""
    from figsearch.embed.encoders.backbone import BackboneEncoder

    order, written, plain = [], list(args.as_written), list(args.encoder)
    for token in sys.argv[1:]:  # keep the command line's order: the first is the ratios' reference
        if token in ("--as-written", "--encoder"):
            order.append(token)
    encoders = {}
    for token in order:
        if token == "--as-written":
            spec = written.pop(0)
            if not spec.startswith("backbone:"):
                raise SystemExit(f"--as-written takes a backbone:MODEL spec, not {spec}")
            encoders[f"{spec} (as written)"] = BackboneEncoder(spec.split(":", 1)[1], chunk=None, rewrite_pooling=False)
        else:
            spec = plain.pop(0)
            encoders[spec] = create_visual(spec)
    return encoders


def speed_of(encoders: dict, sheets, rounds: int = 1, baselines=("hog", "lines")) -> None:
    """drawings/s of each encoder on the grant sheets, as a ratio to the baselines (hog, lines) and to the first
    encoder of the same run; one query image. ``rounds`` > 1: alternating order, medians."""
    reference = next(iter(encoders), None)
    encoders = {**encoders, **{b: create_visual(b) for b in baselines if b and b not in encoders}}
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    singles: dict[str, list[float]] = {name: [] for name in encoders}
    cpu_ms: dict[str, list[float]] = {name: [] for name in encoders}
    for encoder in encoders.values():
        encoder.encode(sheets[:8])
    names = list(encoders)
    for round_ in range(max(1, rounds)):
        for name in names if round_ % 2 == 0 else names[::-1]:
            encoder = encoders[name]
            cpu, start = _cpu_seconds(), time.perf_counter()
            encoder.encode(sheets)
            rates[name].append(len(sheets) / (time.perf_counter() - start))
            cpu_ms[name].append(1000 * (_cpu_seconds() - cpu) / len(sheets))
            for image in sheets[:10]:
                begin = time.perf_counter()
                encoder.encode([image])
                singles[name].append(time.perf_counter() - begin)
            print(f"speed {name}: {rates[name][-1]:.1f} drawings/s, {cpu_ms[name][-1]:.1f} CPU ms per drawing "
                  f"(round {round_ + 1}; load average {os.getloadavg()[0]:.1f})", flush=True)
    rate = {name: float(np.median(r)) for name, r in rates.items()}
    for name in names:
        parts = [f"{rate[name] / rate[b]:.2f}x {b}" for b in baselines if b in rate]
        if reference and reference != name:
            per_round = [a / b for a, b in zip(rates[name], rates[reference])]
            parts.append(f"{rate[name] / rate[reference]:.2f}x {reference} (rounds {min(per_round):.2f}-{max(per_round):.2f})")
        print(f"speed {name}: median {rate[name]:.1f} drawings/s over {len(rates[name])} round(s), "
              f"{np.median(cpu_ms[name]):.1f} CPU ms per drawing (all threads of the process; onnxruntime's waiting threads "
              f"spin, so a multi-threaded run counts its waits too), one query image median "
              f"{1000 * np.median(singles[name]):.0f} ms; " + ", ".join(parts), flush=True)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def speed(args, sheets=None, backbone=None, hog=None) -> None:
    if sheets is None:
        sheets, _ = load_sheets(SHARED / "us-design-grants", 1600)
        backbone = create_visual(f"backbone:{args.model}", threads=args.threads)
    hog = hog or create_visual("hog")
    for name, encoder in (("backbone", backbone), ("hog", hog)):
        encoder.encode(sheets[:8])
        start = time.perf_counter()
        encoder.encode(sheets)
        rate = len(sheets) / (time.perf_counter() - start)
        print(f"speed {name}: {rate:.1f} drawings/s (load average {os.getloadavg()[0]:.1f})", flush=True)
    times = []
    for image in sheets[:20]:
        start = time.perf_counter()
        backbone.encode([image])
        times.append(time.perf_counter() - start)
    print(f"one query image (backbone): median {1000 * np.median(times):.0f} ms (load average {os.getloadavg()[0]:.1f})")
    # the network alone, on drawings already prepared (224 px grey), batches of 32
    prepared = np.stack([backbone.prepare(image) for image in sheets[:128]])
    backbone.encode_prepared(prepared[:32])
    start = time.perf_counter()
    for i in range(0, len(prepared), 32):
        backbone.encode_prepared(prepared[i : i + 32])
    rate = len(prepared) / (time.perf_counter() - start)
    print(f"speed backbone network only (prepared 224 px, batches of 32): {rate:.1f} drawings/s "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
