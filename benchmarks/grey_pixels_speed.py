"""What reading a sheet's pixels as an array costs the overlapped build outside the OCR: ``imaging.grey_pixels``
(stop 29: Pillow's Arrow export, no copy) against ``np.asarray`` (a copy through ``Image.tobytes``, as before),
in the same process, alternating.

    python benchmarks/grey_pixels_speed.py COLLECTION [--rounds 4]

COLLECTION: a built collection (e.g. ``figsearch build ../shared/data/us-design-grants -c /tmp/grants``). Its
stored drawings that were not cut are decoded once (``imaging.load_stored``, as an OCR reader decodes them).
Then, per round and each way (the thread's CPU time): the backbone encoder's input of each
(``signs.backbone_input``, what a reader prepares after reading the sheet) and the PNG of each
(``imaging.encode_png``, what the ingest worker stores). Printed: CPU ms per drawing of each step either way,
with the load average; and whether both ways gave the same input pixels and the same PNG bytes for every
drawing (they must: the script exits 1 otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collection", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    import numpy as np

    from backbone_input_speed import stored_drawings  # the sibling benchmark's reading of a collection
    from figsearch import imaging
    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER, create_visual
    from figsearch.pipeline.signs import backbone_input

    images = stored_drawings(args.collection)
    if not images:
        print(f"{args.collection}: no stored drawings", file=sys.stderr)
        return 2
    size = create_visual(DEFAULT_VISUAL_ENCODER, threads=1).image_size  # the default encoder's input side
    shared = imaging.grey_pixels

    def copied(image):  # the way before: np.asarray's copy
        pixels = np.asarray(image)
        pixels.flags.writeable = False
        return pixels

    ways = {"grey_pixels (shared)": shared, "np.asarray (copy, before)": copied}
    steps = ("backbone input", "PNG")
    seconds = {(way, step): 0.0 for way in ways for step in steps}
    out: dict = {}
    print(f"{len(images)} stored drawings not cut, of {args.collection}; load average before: {os.getloadavg()[0]:.1f}")
    for round_ in range(args.rounds):
        for way in (list(ways) if round_ % 2 == 0 else list(ways)[::-1]):
            imaging.grey_pixels = ways[way]  # what encode_png and prepare_turns call
            inputs, pngs = [], []
            for image in images:
                started = time.thread_time()
                inputs.append(backbone_input(size, image))
                middle = time.thread_time()
                pngs.append(imaging.encode_png(image))
                seconds[way, "backbone input"] += middle - started
                seconds[way, "PNG"] += time.thread_time() - middle
            out[way] = (inputs, pngs)
    imaging.grey_pixels = shared
    per = args.rounds * len(images)
    for step in steps:
        print(f"{step}: " + ", ".join(f"{way} {1000 * seconds[way, step] / per:.2f}" for way in ways) + " CPU ms per drawing")
    (a_inputs, a_pngs), (b_inputs, b_pngs) = out.values()
    same = all(np.array_equal(a, b) for a, b in zip(a_inputs, b_inputs)) and a_pngs == b_pngs
    print(f"the same input pixels and PNG bytes for every drawing: {same}; load average after: {os.getloadavg()[0]:.1f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
