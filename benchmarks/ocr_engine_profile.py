"""Where the default OCR engine's CPU time goes on full-size sheets, step by step, with counts.

Each step of ``TesseractEngine``'s reading is wrapped with a CPU-time clock (``time.process_time``:
robust on a shared machine); a step's time excludes the steps it calls (a stack of clocks). Counted:
mosaics recognised (general reading, label pass), words and pixels per mosaic, rotations tried.
Sheets: the hand-read sets of ocr_benchmark.py (truth, dev1, dev2, dev3, holdout4) and a seeded sample
of design drawings, each read with ``read_drawing`` as the build's workers and the benchmark do.

    OMP_THREAD_LIMIT=1 python benchmarks/ocr_engine_profile.py [--sets truth,dev1,dev2,dev3,holdout4] [--design 40]

``--stored COLLECTION``: instead, every drawing a build stored in that collection (not the figures cut
from sheets), read as an overlapped build's reader reads it (``pipeline.signs._read_ahead_in_worker``: the
stored PNG decoded, ``read_drawing_ahead`` with its patent's ``numerals_wanted``, then the visual encoder's
input when the sheet is not cut), with the decoding and that preparation timed as steps too.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ocr_benchmark import design_sample, load_sheet, truth_sheets  # noqa: E402

CPU: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)
COUNT: dict[str, float] = defaultdict(float)
_STACK: list[list[float]] = []  # [start, time of children]


def _timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _STACK.append([time.process_time(), 0.0])
        try:
            return fn(*args, **kwargs)
        finally:
            start, children = _STACK.pop()
            spent = time.process_time() - start
            CPU[name] += spent - children
            CALLS[name] += 1
            if _STACK:
                _STACK[-1][1] += spent
    return wrapper


#: (module, attribute, step name): patched where they are looked up
STEPS = [
    ("figsearch.ocr.drawing", "content_box", "content_box (read_drawing)"),
    ("figsearch.ocr.sheet", "find_header", "find_header"),
    ("figsearch.ocr.sheet", "page_numbers", "page_numbers"),
    ("figsearch.ocr.sheet", "header_band", "header_band"),
    ("figsearch.ocr.tesseract", "glyph_layer", "glyph_layer (binarise, label, filter)"),
    ("figsearch.ocr.tesseract", "detect_words", "detect_words (phantoms, grouping)"),
    ("figsearch.ocr.tesseract", "solidify_dithered", "solidify_dithered"),
    ("figsearch.ocr.tesseract", "_mosaic", "_mosaic (crop, scale, paste)"),
    ("figsearch.ocr.tesseract", "label_lines", "label_lines (label pass candidates)"),
    ("figsearch.ocr.preprocess", "_group", "_group (boxes into words and lines)"),
    ("figsearch.ocr.tesseract", "may_hold_more_figures", "may_hold_more_figures"),
    ("figsearch.ocr.tesseract", "parse_signs", "parse_signs (engine)"),
    ("figsearch.ocr.base", "mark_table_words", "mark_table_words"),
    ("figsearch.ocr.sheet", "_compute_scaled", "scaled_grey (grey, scaled to 1800 px once per sheet)"),
    ("figsearch.ocr.sheet", "_compute_ink", "_ink (ink views at 1000 / 400 px)"),
]


def install() -> None:
    from PIL import Image

    from figsearch.ocr.tesseract import TesseractEngine

    for module, attr, name in STEPS:
        mod = importlib.import_module(module)
        setattr(mod, attr, _timed(name, getattr(mod, attr)))
    # the engine's own methods: the pass and the tesseract call
    TesseractEngine.read_labels = _timed("read_labels (rest: rotating ink, band, filters)", TesseractEngine.read_labels)
    TesseractEngine._read = _timed("_read (rest)", TesseractEngine._read)
    TesseractEngine.read_words = _timed("read_words (rest)", TesseractEngine.read_words)
    original = TesseractEngine._recognise

    def recognise(self, image, words):
        in_labels = any(frame for frame in _PASS)
        key = "label pass" if in_labels else "general reading"
        if words:
            COUNT[f"mosaics, {key}"] += 1
            COUNT[f"words recognised, {key}"] += len(words)
        return original(self, image, words)

    TesseractEngine._recognise = _timed("_recognise (rest: tesseract SetImage, Recognize, iterate)", recognise)
    labels = TesseractEngine.read_labels

    def read_labels(self, *args, **kwargs):
        _PASS.append(True)
        COUNT["label passes"] += 1
        try:
            return labels(self, *args, **kwargs)
        finally:
            _PASS.pop()

    TesseractEngine.read_labels = read_labels
    oriented = TesseractEngine._read_oriented

    def read_oriented(self, prepared, rotations):
        COUNT["rotations offered"] += len(rotations)
        return oriented(self, prepared, rotations)

    TesseractEngine._read_oriented = read_oriented
    rotate = Image.Image.rotate
    Image.Image.rotate = _timed("PIL rotate (orientation views)", rotate)
    read = TesseractEngine._read

    def counted_read(self, image, *args, **kwargs):
        COUNT["rotations read (general)"] += 1
        return read(self, image, *args, **kwargs)

    TesseractEngine._read = counted_read
    mosaic = importlib.import_module("figsearch.ocr.tesseract")._mosaic

    def mosaic_sized(image, words):
        canvas, slots = mosaic(image, words)
        COUNT["mosaic pixels"] += canvas.width * canvas.height
        return canvas, slots

    importlib.import_module("figsearch.ocr.tesseract")._mosaic = mosaic_sized


_PASS: list[bool] = []


def report(n: int, total: float, what: str, outside: str = "(outside the steps)") -> None:
    """The step table: ``n`` sheets described by ``what``, ``total`` CPU s in all."""
    print(f"{n} {what}, {total / n:.4f} CPU s per sheet in all, OMP_THREAD_LIMIT={os.environ.get('OMP_THREAD_LIMIT')}")
    print(f"{'step':62s} {'CPU s/sheet':>11s} {'share':>6s} {'calls/sheet':>11s}")
    for name, cpu in sorted(CPU.items(), key=lambda kv: -kv[1]):
        print(f"{name:62s} {cpu / n:11.4f} {cpu / total:6.1%} {CALLS[name] / n:11.2f}")
    other = total - sum(CPU.values())
    print(f"{outside:62s} {other / n:11.4f} {other / total:6.1%}")
    print(json.dumps({k: round(v / n, 2) for k, v in sorted(COUNT.items())}, indent=1))


def stored(root: Path, limit: int) -> None:
    """The build's readers' work on ``root``'s stored drawings (``--stored``)."""
    from PIL import Image

    from figsearch.ocr import create_engine
    from figsearch.pipeline import signs
    from figsearch.records import FigureRole
    from figsearch.store.collection import Collection
    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER, create_visual
    from figsearch.link.patent_text import PatentText

    with Collection.open(root) as collection:
        drawings = [f for f in collection.figures(roles=(FigureRole.DRAWING,)) if f.parent_id is None and f.image_path]
        wanted = {n: signs.numerals_wanted(PatentText.of(collection.patent(n))) for n in {f.patent for f in drawings}}
        todo = [(str(collection.path(f.image_path)), wanted[f.patent]) for f in drawings]
    todo = todo[:limit] if limit else todo
    engine = create_engine("tesseract")
    engine.read(Image.new("L", (200, 100), 255))
    signs._worker_engine = engine
    # the default visual encoder's input size, as the overlapped build's writer hands it to its readers
    prepare = functools.partial(signs.backbone_input, create_visual(DEFAULT_VISUAL_ENCODER, threads=1).image_size)
    install()
    signs.read_drawing_ahead = _timed("read_drawing_ahead (rest)", signs.read_drawing_ahead)
    signs.figure_ahead = _timed("figure_ahead (the drawing's words and parts)", signs.figure_ahead)
    prepare = _timed("backbone_input (the visual encoder's input)", prepare)
    load = Image.Image.load
    Image.Image.load = _timed("PIL load (decoding the stored PNG)", load)
    total = time.process_time()
    for path, numerals in todo:
        signs._read_ahead_in_worker(path, numerals, prepare)
    total = time.process_time() - total
    Image.Image.load = load
    print(f"{root}: {sum(not w for _, w in todo)} of {len(todo)} drawings of patents that cite no numeral")
    report(len(todo), total, "stored drawings read as the build's readers read them")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = Path(os.environ.get("FIGSEARCH_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--sets", default="truth,dev1,dev2,dev3,holdout4")
    parser.add_argument("--design", type=int, default=40, help="design drawings sampled (seeded)")
    parser.add_argument("--stored", type=Path, default=None,
                        help="a built collection: profile its stored drawings as the build's readers read them")
    parser.add_argument("--limit", type=int, default=0, help="with --stored: at most this many drawings")
    args = parser.parse_args()
    if args.stored is not None:
        return stored(args.stored, args.limit)
    from figsearch.ocr import create_engine
    from figsearch.ocr.drawing import read_drawing

    images = []
    for which in [s for s in args.sets.split(",") if s]:
        images += [load_sheet(args.data, sheet) for sheet in truth_sheets(which)]
    from PIL import Image

    for path in design_sample(args.data, args.design):
        with Image.open(path) as image:
            image.load()
            # a 1-bit stored file (a bilevel drawing since stop 26) as the readers see it: "L" (imaging.load_stored)
            images.append(image.convert("L") if image.mode == "1" else image.copy())
    engine = create_engine("tesseract")
    engine.read(Image.new("L", (200, 100), 255))
    install()
    total = time.process_time()
    for image in images:
        read_drawing(engine, image)
    total = time.process_time() - total
    n = len(images)
    report(n, total, f"sheets, mean size {sum(i.width for i in images) / n:.0f} x {sum(i.height for i in images) / n:.0f} px",
           "(outside the steps: read_drawing, parse_signs, ...)")


if __name__ == "__main__":
    main()
