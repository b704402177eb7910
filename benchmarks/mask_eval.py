"""Does masking what is not the drawing help? Training-side validation of the masking variants (issue 13 item 2).

On a training collection (``figsearch ingest --skip-ocr`` of ``us-design-pdfs``, ``us-design-2007``,
``us-utility-sheets``, ``upair-queries``; the odd-numbered 2007 designs left out), the drawings that
``figsearch train-encoder --arch backbone --val-split lines --class-val ...`` holds out from training
``drawing-backbone2.onnx`` are encoded once per variant:

- **same-patent, held out**: the multi-drawing patents held out by ``train.parts.split_groups`` (seed
  0, share 0.2); each of their drawings queries those drawings plus the class set as distractors;
- **class level, held out**: the 272 even-numbered 2007 designs drawn by
  ``numpy.random.default_rng([0, 2007])`` (the model's ``--class-val`` set), relevant = same USPC class
  at depth 1;
- **same-patent, design PDFs** (secondary): every drawing sheet of ``us-design-pdfs`` (they carry
  "FIG. n" labels and the PDF running header), each querying the others. Most were trained on, with
  their labels in: a conservative test for masking (the head never saw masked sheets).

The design grants and the odd-numbered 2007 designs are never read. Variants (``--variants``):
``none`` (today's input), ``labels``, ``labels,signs``, ``labels,signs,leaders``. Each image is decoded
once and its clutter found once (``embed.preprocess.find_clutter``); every variant is masked from it,
prepared and encoded with the same encoder (``BackboneEncoder.prepare`` / ``encode_prepared``), which
is what ``MaskedEncoder`` does image by image (checked on a few drawings per run). mAP@50, trec_eval's
definition (divided by all relevant).

Usage (from the repository root)::

    HF_HUB_OFFLINE=1 PYTHONPATH=src nice -n 10 python benchmarks/mask_eval.py \\
        --collection /tmp/enc/coll-train [--data ../shared/data] [--model backbone:drawing-backbone2.onnx]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("us-design-pdfs", "us-design-2007", "us-utility-sheets", "upair-queries")
VARIANTS = ("none", "labels", "labels,signs", "labels,signs,leaders")


def odd_2007(data: Path) -> list[str]:
    rows = (line.split("\t")[0] for line in (data / "us-design-2007" / "metadata_2007.txt").read_text().splitlines() if line.strip())
    return [n for n in rows if n[-1].isdigit() and int(n[-1]) % 2 == 1]


def even_2007(data: Path) -> list[str]:
    rows = (line.split("\t")[0] for line in (data / "us-design-2007" / "metadata_2007.txt").read_text().splitlines() if line.strip())
    return sorted(n for n in rows if n[-1].isdigit() and int(n[-1]) % 2 == 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", default="backbone:drawing-backbone2.onnx")
    parser.add_argument("--variants", default=";".join(VARIANTS), help="';'-separated mask variants")
    parser.add_argument("--no-pdfs", action="store_true", help="skip the design-PDF same-patent set")
    parser.add_argument("--speed-only", type=int, default=0, metavar="N",
                        help="only time, on N design-PDF sheets: decoding, the finder, and encoding one drawing "
                             "with and without a mask (the ratio is what masking adds to a query)")
    args = parser.parse_args()

    from figsearch.embed.catalog import create_visual
    from figsearch.embed.preprocess import find_clutter, mask_drawing, parse_mask, strip_running_header
    from figsearch.pipeline.embed import decode_stored
    from figsearch.train.backbone import _excluded, collection_items, map_at_50
    from figsearch.train.parts import split_groups

    if not (args.data / "us-design-2007" / "metadata_2007.txt").is_file():
        print(f"shared data missing under {args.data}", file=sys.stderr)
        return 2
    variants = [parse_mask(v) for v in args.variants.split(";")]
    items = collection_items([args.collection], exclude=odd_2007(args.data))
    patents = np.array([i.patent for i in items])
    val_patents = split_groups(list(patents), 0.2, 0)
    evens = even_2007(args.data)
    class_set = set(np.random.default_rng([0, 2007]).choice(evens, size=272, replace=False).tolist())
    val = np.array([p in val_patents for p in patents])
    class_val = np.array([_excluded(p, class_set) for p in patents]) & ~val
    pdfs = np.array(["us-design-pdfs" in (i.source or "") for i in items]) if not args.no_pdfs else np.zeros(len(items), bool)
    chosen = np.flatnonzero(val | class_val | pdfs)
    print(f"{len(items)} drawings; held out: {int(val.sum())} same-patent ({len(val_patents)} patents), "
          f"{int(class_val.sum())} class level; {int(pdfs.sum())} design-PDF sheets; encoding {len(chosen)} drawings",
          file=sys.stderr)

    encoder = create_visual(args.model)
    if args.speed_only:
        return speed(items, pdfs, args, encoder)
    prepared = {v: [] for v in map(tuple, variants)}
    found = {"labels": 0, "signs": 0, "leaders": 0}
    find_s = prep_s = 0.0
    check = []
    for n, index in enumerate(chosen):
        image = decode_stored(items[index].path)
        started = time.perf_counter()
        # as mask_drawing finds it: on the sheet with its running header whitened
        clutter = find_clutter(strip_running_header(image.convert("L"))) if any(variants) else None
        find_s += time.perf_counter() - started
        if clutter is not None:
            found["labels"] += len(clutter.labels)
            found["signs"] += len(clutter.signs)
            found["leaders"] += len(clutter.leaders) > 0
        started = time.perf_counter()
        for variant in prepared:
            prepared[variant].append(encoder.prepare(mask_drawing(image, variant, clutter)))
        prep_s += time.perf_counter() - started
        if n < 3:
            check.append(image)
        if n % 100 == 0:
            print(f"  {n}/{len(chosen)}", file=sys.stderr)
    print(f"finder: {find_s / len(chosen) * 1000:.0f} ms per drawing; found {found['labels']} labels, "
          f"{found['signs']} signs, leader lines beside signs on {found['leaders']} drawings", file=sys.stderr)

    same_idx = np.flatnonzero((val | class_val)[chosen])
    class_idx = np.flatnonzero(class_val[chosen])
    pdf_idx = np.flatnonzero(pdfs[chosen])
    same_labels = [patents[chosen[i]] if val[chosen[i]] else f"\0c{i}" for i in same_idx]
    class_labels = [items[chosen[i]].levels[0] if items[chosen[i]].levels else f"\0{i}" for i in class_idx]
    pdf_labels = [patents[chosen[i]] for i in pdf_idx]
    rows = []
    vectors_by_variant = {}
    for variant, grey in prepared.items():
        started = time.perf_counter()
        vectors = np.concatenate([encoder.encode_prepared(np.stack(grey[s : s + 32])) for s in range(0, len(grey), 32)])
        encode_s = time.perf_counter() - started
        if variant and check:  # the encoder made by the spec does the same, image by image
            from figsearch.embed.masked import mask_spec

            wrapped = create_visual(mask_spec(args.model, variant))
            diff = float(np.abs(wrapped.encode(check) - vectors[: len(check)]).max())
            if diff > 1e-5:
                print(f"warning: {variant}: MaskedEncoder differs by {diff}", file=sys.stderr)
        vectors_by_variant[variant] = vectors
        rows.append((",".join(variant) or "none", map_at_50(vectors[same_idx], same_labels),
                     map_at_50(vectors[class_idx], class_labels),
                     map_at_50(vectors[pdf_idx], pdf_labels) if pdf_idx.size else None, encode_s))
    sources = [(items[chosen[i]].source or "").split("/") for i in same_idx]
    sources = [next((part for part in parts if part in FOLDERS), "other") for parts in sources]
    by_source = {}
    for variant, grey_vectors in vectors_by_variant.items():
        aps = per_query_ap(grey_vectors[same_idx], same_labels)
        by_source[variant] = {src: float(np.mean([a for a, s2 in zip(aps, sources) if s2 == src and a is not None]))
                              for src in sorted(set(sources))
                              if any(a is not None and s2 == src for a, s2 in zip(aps, sources))}
    print(f"# masking variants, encoder {args.model}, training-side held-out data of {args.collection}\n")
    print(f"finder {find_s / len(chosen) * 1000:.0f} ms/drawing, masking+preparing all variants "
          f"{prep_s / len(chosen) * 1000:.0f} ms/drawing (machine load: see uptime)\n")
    print(f"| mask | same-patent, held out ({int(val.sum())}) | class level, held out ({int(class_val.sum())}) "
          f"| same-patent, design-PDF sheets ({int(pdfs.sum())}, mostly trained on) |")
    print("|---|---:|---:|---:|")
    for name, same, cls, pdf in (r[:4] for r in rows):
        print(f"| {name} | {same:.4f} | {cls:.4f} | {'' if pdf is None else f'{pdf:.4f}'} |")
    print("\nSame-patent, held out, by source folder of the query (mAP@50 of those queries):\n")
    names = sorted({src for per in by_source.values() for src in per})
    print("| mask | " + " | ".join(f"{n} ({sum(1 for x in sources if x == n)})" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for variant, per in by_source.items():
        print(f"| {','.join(variant) or 'none'} | " + " | ".join(f"{per.get(n, float('nan')):.4f}" for n in names) + " |")
    return 0


def per_query_ap(vectors: np.ndarray, labels) -> list:
    """AP@50 of each item against the others (None where nothing is relevant), as map_at_50 averages them."""
    from figsearch.train.backbone import per_query_ap as train_per_query_ap  # torch: only when measuring

    return train_per_query_ap(vectors, labels)


def speed(items, pdfs, args, encoder) -> int:
    """Per drawing, median of N sheets: decode, find_clutter, plain encode, encode with mask=labels."""
    import os

    from figsearch.embed.catalog import create_visual
    from figsearch.embed.masked import mask_spec
    from figsearch.embed.preprocess import find_clutter
    from figsearch.pipeline.embed import decode_stored

    masked = create_visual(mask_spec(args.model, ["labels"]))
    sheets = [items[i].path for i in np.flatnonzero(pdfs)[: args.speed_only]]
    find_clutter(decode_stored(sheets[0]))  # imports and first-call costs out of the timing
    times: dict[str, list[float]] = {"decode": [], "finder": [], "encode": [], "encode masked": []}
    for path in sheets:
        started = time.perf_counter()
        image = decode_stored(path)
        times["decode"].append(time.perf_counter() - started)
        for name, run in (("finder", lambda: find_clutter(image)), ("encode", lambda: encoder.encode([image])),
                          ("encode masked", lambda: masked.encode([image]))):
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    median = {k: float(np.median(v)) * 1000 for k, v in times.items()}
    print(f"# one drawing at a time, median of {len(sheets)} design-PDF sheets, load average {os.getloadavg()[0]:.1f}")
    print(", ".join(f"{k} {v:.1f} ms" for k, v in median.items()))
    print(f"masked / plain encoding: {median['encode masked'] / median['encode']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
