"""What the overlapped build's readers spend preparing the backbone encoder's input (``signs.backbone_input``),
with the resize's first pass only where the drawing is (``backbone._drawn_outputs``, stop 28) and without it
(the whole padded square, as before), in the same process, alternating.

    python benchmarks/backbone_input_speed.py COLLECTION [--rounds 4]

COLLECTION: a built collection (e.g. ``figsearch build ../shared/data/us-design-grants -c /tmp/grants``). Its
stored drawings that were not cut are decoded once (``imaging.load_stored``, as a reader decodes them), then
each way prepares every one of them per round (the thread's CPU time). Printed: the CPU ms per drawing of
each way, for the drawings taller than wide alone too, with the load average; and whether both gave the same
pixels for every drawing (they must: the script exits 1 otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def stored_drawings(root: Path) -> list:
    """The collection's stored drawings (not the figures cut from sheets), decoded as the build hands them on."""
    from figsearch.imaging import load_stored
    from figsearch.records import FigureRole
    from figsearch.store import Collection

    with Collection.open(root) as collection:
        paths = [collection.path(f.image_path) for f in collection.figures(roles=(FigureRole.DRAWING,))
                 if f.image_path and not f.parent_id]
    return [load_stored(path) for path in paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collection", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    import numpy as np

    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER, create_visual
    from figsearch.embed.encoders import backbone
    from figsearch.pipeline.signs import backbone_input

    images = stored_drawings(args.collection)
    if not images:
        print(f"{args.collection}: no stored drawings", file=sys.stderr)
        return 2
    tall = [i for i, image in enumerate(images) if image.height > image.width]
    size = create_visual(DEFAULT_VISUAL_ENCODER, threads=1).image_size  # the default encoder's input side
    drawn_outputs = backbone._drawn_outputs
    seconds = {"first pass where drawn": np.zeros(len(images)), "whole square (before)": np.zeros(len(images))}
    prepared = {}
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for round_ in range(args.rounds):
        ways = list(seconds) if round_ % 2 == 0 else list(seconds)[::-1]
        for way in ways:
            backbone._drawn_outputs = drawn_outputs if way.startswith("first") else (lambda *a: None)
            out = []
            for n, image in enumerate(images):
                started = time.thread_time()
                out.append(backbone_input(size, image))
                seconds[way][n] += time.thread_time() - started
            prepared[way] = out
    backbone._drawn_outputs = drawn_outputs
    same = all(np.array_equal(a, b) for a, b in zip(*prepared.values()))
    print(f"{len(images)} stored drawings not cut ({len(tall)} taller than wide), {size} px, {args.rounds} rounds")
    for way, spent in seconds.items():
        print(f"  {way}: {spent.sum() / args.rounds / len(images) * 1e3:.2f} CPU ms per drawing, "
              f"{spent[tall].sum() / args.rounds / max(len(tall), 1) * 1e3:.2f} per tall one")
    print(f"same pixels for every drawing: {same}; load average after: {os.getloadavg()[0]:.1f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
