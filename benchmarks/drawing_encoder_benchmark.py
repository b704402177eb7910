"""Drawing encoder vs its baselines: same-patent mAP@50 on the design grants, and images/s.

    python benchmarks/drawing_encoder_benchmark.py [--model MODEL.pt] [--data ../shared/data]
    python benchmarks/drawing_encoder_benchmark.py --collection GRANTS   # built by figsearch ingest

Runs against the installed package (``pip install -e .[visual,eval]``).

Protocol (DeepPatent's, as in ../shared/data/README.md): the drawing sheets (D00001 onwards; the
front page D00000 is excluded) of the 50 grants in ``us-design-grants`` are both the queries and the
candidates; for a query, the other sheets of its patent are relevant; the query itself is left out of
its ranking; AP@50 as trec_eval computes it (divided by all relevant sheets, via ir_measures); queries
whose patent has a single sheet have no relevant item and no qrels. The encoder was never trained on
this folder. Throughput is measured in the same run for every encoder on the same decoded images:
"end to end" includes each encoder's own preprocessing of a full sheet, "network" the drawing
encoder's forward pass alone on prepared inputs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from figsearch.embed import VISUAL_ENCODERS
from figsearch.embed.base import VisualEncoder, l2_normalise
from figsearch.embed.preprocess import prepare_drawing
from figsearch.train.metric import same_group_map

REPO = Path(__file__).resolve().parent.parent


class RawPixels(VisualEncoder):
    """The 32×32 raw-pixel baseline: the prepared drawing, box-downsampled, centred."""

    name, dim = "raw32", 32 * 32

    def _encode_batch(self, images):
        pixels = np.stack([np.asarray(prepare_drawing(im, 32), dtype=np.float32).ravel() for im in images])
        return 255.0 - pixels - (255.0 - pixels).mean(axis=1, keepdims=True)


def load_grants(data: Path) -> tuple[list[Image.Image], list[str], list[str]]:
    """The sheets as ingest stores them (grey, bounded size), read from the TIFFs."""
    from figsearch.imaging import normalise

    images, patents, ids = [], [], []
    for path in sorted((data / "us-design-grants").glob("*/*.TIF")):
        if path.stem.endswith("-D00000"):
            continue
        with Image.open(path) as image:
            images.append(normalise(image).image)
        patents.append(path.stem.split("-")[0])
        ids.append(path.stem)
    if not images:
        raise SystemExit(f"no design-grant sheets under {data / 'us-design-grants'}")
    return images, patents, ids


def load_collection(root: Path) -> tuple[list[Image.Image], list[str], list[str]]:
    """The drawings of a collection (front pages excluded by their role), grouped by patent."""
    from figsearch.records import FigureRole
    from figsearch.store import Collection

    images, patents, ids = [], [], []
    with Collection.open(root) as collection:
        for figure in collection.figures(roles=(FigureRole.DRAWING,)):
            if figure.parent_id is None and figure.image_path:
                with Image.open(collection.path(figure.image_path)) as image:
                    images.append(image.convert("L"))
                patents.append(figure.patent)
                ids.append(figure.figure_id)
    return images, patents, ids


def map_at_50(vectors: np.ndarray, patents: list[str]) -> float:
    return same_group_map(vectors, patents, k=50)


def timed(encoder: VisualEncoder, images) -> tuple[np.ndarray, float]:
    encoder.encode(images[:4])  # warm-up (lazy init, allocator)
    start = time.perf_counter()
    vectors = encoder.encode(images)
    return vectors, len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--collection", type=Path, default=None, help="a collection of the grants (figsearch ingest)")
    parser.add_argument("--model", default=None, help="drawing-encoder model file [the shipped one]")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-flip", action="store_true", help="drawing encoder without flip averaging")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    images, patents, ids = load_collection(args.collection) if args.collection else load_grants(args.data)
    options = {"device": "cpu"} | ({"model": args.model} if args.model else {})
    if args.no_flip:
        options["flip_average"] = False
    drawing = VISUAL_ENCODERS.create("drawing", **options)
    hog = VISUAL_ENCODERS.create("hog")
    encoders = {"drawing": drawing, "hog": hog, "raw32": RawPixels()}

    print(f"{len(images)} sheets of {len(set(patents))} design grants; torch threads {torch.get_num_threads()}")
    results = {}
    for name, encoder in encoders.items():
        vectors, rate = timed(encoder, images)
        results[name] = (map_at_50(l2_normalise(vectors), patents), rate)
    # ratios against hog measured in this run, on these images, on this machine
    base_map, base_rate = results["hog"]
    print(f"{'encoder':<12} {'mAP@50':>7} {'vs hog':>7} {'img/s end to end':>17} {'vs hog':>7}")
    for name, (value, rate) in results.items():
        print(f"{name:<12} {value:7.4f} {value / base_map:6.2f}x {rate:17.1f} {rate / base_rate:6.2f}x")

    # the network alone, on inputs prepared once, at the encoder's batch size
    maps = [drawing.model.prepare(im) for im in images]
    drawing.model.encode(maps[:8])
    start = time.perf_counter()
    for i in range(0, len(maps), drawing.batch_size):
        drawing.model.encode(maps[i : i + drawing.batch_size], flip_average=drawing.flip_average)
    network = len(maps) / (time.perf_counter() - start)
    print(f"drawing network alone: {network:.1f} img/s (batch {drawing.batch_size}), {network / base_rate:.2f}x hog end to end")


if __name__ == "__main__":
    main()
