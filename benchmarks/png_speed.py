"""Stored PNGs: Pillow's encoder (how ingest stored drawings before stop 22) against figsearch's own.

    python benchmarks/png_speed.py ../shared/data/us-design-grants --limit 11 [--rounds 3]

Every image file under the folders given (the first ``--limit`` entries of each, sorted) is decoded
and normalised as ingest does (``figsearch.imaging``: grey, longest side at most 2400 px, and the
256 px thumbnail). Then, one process, CPU seconds (``time.process_time``, the best of ``--rounds``):

- encoding each drawing with Pillow at zlib level 1 (its adaptive row filters) and with
  ``imaging.encode_png`` (no row filter, level 1), and each thumbnail with Pillow at level 6 and
  ``encode_png`` at level 6;
- decoding each drawing's file from either encoder (what the OCR readers and the writer do);
- the bytes of either file, and whether every file decodes to exactly the pixels it was made from.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path


def _pillow(image, level: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def _cpu(work, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="only the first N entries of each folder (sorted)")
    parser.add_argument("--rounds", type=int, default=3, help="time each step this many times, keep the best")
    args = parser.parse_args()

    from PIL import Image

    from figsearch import imaging

    files = []
    for path in args.paths:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith(".")) if path.is_dir() else [path]
        for entry in entries[: args.limit or None]:
            found = sorted(entry.rglob("*")) if entry.is_dir() else [entry]
            files += [f for f in found if f.suffix.lower() in (".tif", ".tiff", ".png", ".jpg", ".jpeg")]
    if not files:
        sys.exit("no image files found under " + ", ".join(map(str, args.paths)))
    drawings, thumbs = [], []
    for file in files:
        for _, _, page in imaging.open_pages(file, source=str(file)):
            normalised = imaging.normalise(page)
            drawings.append(normalised.image)
            thumbs.append(normalised.thumbnail)
    pixels = sum(d.width * d.height for d in drawings)
    print(f"{len(drawings)} drawings from {len(files)} files, {pixels / len(drawings) / 1e6:.2f} Mpx each on average")

    encoders = {"Pillow, level 1 (before)": lambda image: _pillow(image, 1),
                "encode_png, level 1 (now)": lambda image: imaging.encode_png(image, 1)}
    thumb_encoders = {"Pillow, level 6 (before)": lambda image: _pillow(image, 6),
                      "encode_png, level 6 (now)": lambda image: imaging.encode_png(image, 6)}
    print("| what | encoder | CPU ms each | decoding CPU ms each | kB each | same pixels |")
    print("|---|---|---|---|---|---|")
    for what, images, table in (("drawing", drawings, encoders), ("thumbnail", thumbs, thumb_encoders)):
        for name, encode in table.items():
            encoded = [encode(image) for image in images]
            seconds = _cpu(lambda: [encode(image) for image in images], args.rounds)

            def decode_all():
                for data in encoded:
                    with Image.open(io.BytesIO(data)) as image:
                        image.load()

            decoding = _cpu(decode_all, args.rounds)
            same = all(Image.open(io.BytesIO(data)).tobytes() == image.tobytes() for data, image in zip(encoded, images))
            print(f"| {what} | {name} | {1000 * seconds / len(images):.2f} | {1000 * decoding / len(images):.2f} | "
                  f"{sum(map(len, encoded)) / len(images) / 1e3:.1f} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
