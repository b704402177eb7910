"""Embedding throughput per encoder: raw batches vs the whole ``figsearch index`` pipeline.

    python benchmarks/embed_benchmark.py --images 64 --encoders hog lines clip:random

Raw: ``encoder.encode`` on drawings already decoded in memory. Pipeline: ``embed_visual`` on a
collection holding the same drawings as PNG files (decode in a background thread, encode,
commit each batch to the ``embeddings`` table). The target is pipeline time within 1.5× of raw
time (the pipeline around the encoder must not be the bottleneck). Drawings are the design-grant
sheets scaled to a longer side of 1600 px (``--max-side``), repeated to reach ``--images``.
``clip:random`` has the ViT-B/32 architecture, so its speed is that of the real model.
Each encoder's raw speed is also printed relative to ``hog`` measured in the same run (hog is
always run first, as the baseline). Runs against the installed package (``pip install -e .[all]``).
Text: MiniLM on the sentences of the figures (raw sentences/s, and the pipeline's figures/s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from figsearch.embed.catalog import create_text, create_visual
from figsearch.pipeline.embed import embed_text, embed_visual, plan_text, plan_visual
from figsearch.records import Figure, Patent
from figsearch.store import Collection

SHARED = Path(os.environ.get("FIGSEARCH_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def sheets(count: int, max_side: int) -> list[Image.Image]:
    paths = [p for p in sorted((SHARED / "us-design-grants").glob("*/*.TIF")) if "-D00000" not in p.name]
    if not paths:
        sys.exit(f"no design grants under {SHARED}")
    images = []
    for path in paths[:count]:
        with Image.open(path) as image:
            grey = image.convert("L")
        grey.thumbnail((max_side, max_side), Image.Resampling.BOX)
        images.append(grey)
    while len(images) < count:
        images.append(images[len(images) % len(paths)].copy())
    return images


def collection(root: Path, images: list[Image.Image]) -> Collection:
    c = Collection.open(root, create=True)
    for i, image in enumerate(images):
        pub = f"US{i:07d}"
        path, sha = c.save_png("images", pub, "D00001", image)
        sentences = f"FIG. 1 is a perspective view of a device {i}. The device has a handle and a blade."
        c.upsert_patent(Patent(pub, "US", str(i), title=f"Device {i % 7}"),
                        [Figure(f"{pub}-D00001", pub, image_path=path, image_sha256=sha, description=sentences)])
    return c


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--max-side", type=int, default=1600)
    parser.add_argument("--encoders", nargs="+", default=["hog", "lines", "clip:random"])
    parser.add_argument("--text", default="minilm", help="text encoder ('none' to skip)")
    args = parser.parse_args(argv)
    images = sheets(args.images, args.max_side)
    print(f"{len(images)} drawings, longer side {args.max_side} px")
    base = None
    for spec in ["hog"] + [spec for spec in args.encoders if spec != "hog"]:
        encoder = create_visual(spec)
        encoder.encode(images[:2])  # warm-up (lazy initialisation, caches)
        start = time.perf_counter()
        encoder.encode(images)
        raw = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            c = collection(Path(tmp) / "c", images)
            todo, _ = plan_visual(c, encoder)
            start = time.perf_counter()
            report = embed_visual(c, encoder, todo)
            pipeline = time.perf_counter() - start
            c.close()
        assert report.embedded == len(images)
        base = base or raw
        print(f"{spec:>12}: raw {len(images) / raw:6.2f} img/s ({base / raw:5.2f}x hog), pipeline {len(images) / pipeline:6.2f} img/s, "
              f"pipeline/raw time {pipeline / raw:4.2f}x (target <= 1.5x)", flush=True)
    if args.text != "none":
        encoder = create_text(args.text)
        with tempfile.TemporaryDirectory() as tmp:
            c = collection(Path(tmp) / "c", images)
            plan = plan_text(c, encoder)
            sentences = list(dict.fromkeys(s for _, text, _ in plan[0] for s in text.sentences))
            encoder.encode(sentences[:4])
            start = time.perf_counter()
            encoder.encode(sentences)
            raw = time.perf_counter() - start
            start = time.perf_counter()
            embed_text(c, encoder, plan)
            pipeline = time.perf_counter() - start
            c.close()
        print(f"{args.text:>12}: raw {len(sentences) / raw:6.1f} sentences/s, pipeline {len(plan[0]) / pipeline:6.1f} figures/s "
              f"({len(sentences)} distinct sentences), pipeline/raw time {pipeline / raw:4.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
