"""What reading only the figure labels of a design drawing would save and lose (a reading rule NOT taken).

A patent whose description cites no numeral (a design patent) keeps from its drawings' readings only the figure
labels: every numeral read becomes an unlinked number (``PatentText.classify``), and its drawings carry almost no
words. Yet the readers read every such drawing in full (the general reading's mosaics, in up to three turns),
then the label pass. This benchmark compares, on the same sheets, the default reading with a *labels-only*
reading: no general reading, only the label pass in every turn (``TesseractEngine.read_labels(image, [],
every_rotation=True)``), its candidate lines grouped with a line gap of ``--line-gap`` heights (the label pass's
own is 1.1, which splits "FIG." from a number printed far from it). Each sheet is read as a design patent's
(``read_drawing(..., cited=set())``); printed: CPU s per sheet, labels found, kept, lost, new, and the numbers and
drawing words the default reading stored and the labels-only one does not.

    OMP_THREAD_LIMIT=1 python benchmarks/labels_only_reading.py [--pages 60] [--line-gap 2.5] [--stored COLLECTION --limit 112]

Sheets: ``figure-labels`` (15 design sheets; their label truth is taken by ``ocr_benchmark.label_truth`` from the
data's JSON, an OCR system's text lines that the data's source calls ground truth, not read by eye by this project:
docs/ocr.md; label recall), a seeded sample of the
drawing pages of ``us-design-pdfs`` (``--pages``; no truth: what changes), and with ``--stored`` every fourth
image a build stored in COLLECTION (sheets and figures cut from them; ``--limit`` of them; a build of ``us-design-grants`` there is the
evaluation set: measure it once, after choosing).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ocr_benchmark import label_truth, load_sheet  # noqa: E402


def engines(line_gap: float):
    """(default engine, labels-only engine)."""
    from figsearch.ocr import create_engine, preprocess
    from figsearch.ocr.sheet import scaled_grey

    default = create_engine("tesseract")
    state = {"labels only": False}
    group = preprocess._group

    def grouped(boxes, gap):  # the label pass's line grouping (gap 1.1) widened while reading labels only
        return group(boxes, line_gap if gap == 1.1 and state["labels only"] else gap)

    preprocess._group = grouped

    class LabelsOnly(type(default)):
        def read_words(self, image):
            self._label_turn_numerals = None
            self._working = (image, scaled_grey(image, self.working_side))
            state["labels only"] = True
            try:
                return self.read_labels(image, [], every_rotation=True)
            finally:
                state["labels only"] = False
                self._working = self._layer = None

    return default, LabelsOnly()


def reading(engine, image) -> tuple[set[str], int, list[str]]:
    """(labels, unlinked numbers, drawing words) of ``image`` read as a design patent's drawing."""
    from figsearch.ocr.drawing import read_drawing

    result = read_drawing(engine, image, cited=set(), content=False)
    return ({s.text for s in result.signs if s.kind == "figure_label"}, len(result.unlinked),
            [w.text for w in result.words])


def compare(name: str, images, default, labels_only) -> None:
    cpu = {"default": 0.0, "labels only": 0.0}
    out: dict[str, list] = {"default": [], "labels only": []}
    keys = []
    for key, image in images:
        keys.append(key)
        for which, engine in (("default", default), ("labels only", labels_only)):
            started = time.process_time()
            out[which].append(reading(engine, image))
            cpu[which] += time.process_time() - started
    d, l = out["default"], out["labels only"]
    n = max(1, len(keys))
    print(f"{name}: {len(keys)} sheets; CPU s per sheet: default {cpu['default'] / n:.3f}, labels only "
          f"{cpu['labels only'] / n:.3f} ({cpu['labels only'] / max(cpu['default'], 1e-9):.2f}x)")
    print(f"  same labels on {sum(a[0] == b[0] for a, b in zip(d, l))} sheets; labels: default {sum(len(a[0]) for a in d)}, "
          f"labels only {sum(len(b[0]) for b in l)}; lost {sum(len(a[0] - b[0]) for a, b in zip(d, l))}, "
          f"new {sum(len(b[0] - a[0]) for a, b in zip(d, l))}")
    print(f"  unlinked numbers: default {sum(a[1] for a in d)}, labels only {sum(b[1] for b in l)}; drawing words: "
          f"default {[w for a in d for w in a[2]]}, labels only {[w for b in l for w in b[2]]}")
    for key, a, b in zip(keys, d, l):
        if a[0] != b[0]:
            print(f"    {key}: {sorted(a[0])} -> {sorted(b[0])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="../shared/data or $FIGSEARCH_SHARED_DATA",
                        default=Path(os.environ.get("FIGSEARCH_SHARED_DATA", HERE.parent.parent / "shared" / "data")))
    parser.add_argument("--pages", type=int, default=60, help="drawing pages of us-design-pdfs (seeded sample)")
    parser.add_argument("--line-gap", type=float, default=2.5, help="the labels-only reading's line gap (heights)")
    parser.add_argument("--stored", type=Path, default=None, help="a built collection: its stored drawings too")
    parser.add_argument("--limit", type=int, default=112, help="with --stored: at most this many drawings")
    args = parser.parse_args()
    from PIL import Image

    default, labels_only = engines(args.line_gap)
    truth = label_truth(args.data)
    for which, engine in (("default", default), ("labels only", labels_only)):
        tp = wrong = found_all = relevant = 0
        started = time.process_time()
        for png, expected in truth.items():
            with Image.open(png) as image:
                image.load()
                found = reading(engine, image)[0]
            tp, wrong = tp + len(found & expected), wrong + len(found - expected)
            found_all, relevant = found_all + len(found), relevant + len(expected)
        print(f"figure-labels, {which}: label recall {tp / max(1, relevant):.3f} ({tp}/{relevant}), wrong {wrong} of "
              f"{found_all}, {(time.process_time() - started) / max(1, len(truth)):.3f} CPU s per sheet")
    import pypdfium2 as pdfium

    pages = []
    for pdf in sorted((args.data / "us-design-pdfs").glob("*.pdf")):
        document = pdfium.PdfDocument(str(pdf))
        pages += [f"us-design-pdfs/{pdf.name}#page={p}" for p in range(2, len(document) + 1)]  # page 1: front page
        document.close()
    sample = sorted(random.Random(0).sample(pages, min(args.pages, len(pages))))
    compare(f"us-design-pdfs drawing pages (of {len(pages)})", ((p, load_sheet(args.data, p)) for p in sample),
            default, labels_only)
    if args.stored:
        files = sorted((args.stored / "images").glob("*/*.png"))[1::4][: args.limit]

        def stored():
            for path in files:
                with Image.open(path) as image:
                    image.load()
                    # a 1-bit stored file (a bilevel drawing since stop 26) as the readers see it (imaging.load_stored)
                    yield f"{path.parent.name}/{path.name}", image.convert("L") if image.mode == "1" else image

        compare(f"stored drawings of {args.stored}", stored(), default, labels_only)


if __name__ == "__main__":
    main()
