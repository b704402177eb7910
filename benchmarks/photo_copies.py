"""Does a photo-like copy of a collection drawing find its original? (stop 25, a user's session)

    PYTHONPATH=src python benchmarks/photo_copies.py -c COLLECTION [--figures 40] [--seed 0]

An examiner photographs a drawing: the paper is grey, not white, the ink dark grey, the sheet a little
turned, smaller, soft and JPEG-compressed. For N drawings of the collection, drawn seeded from the
even-numbered us-design-2007 patents (the training side of the data's protocol: nothing here is evaluation
data), this searches in mode ``visual`` (k=10) with

- ``clean``: the stored drawing itself, as a file (PNG bytes);
- ``grey paper``: the same pixels mapped to paper 225 and ink 60 (v -> 60 + 0.65 v), nothing else;
- ``photo``: grey paper, turned 5 degrees, 0.7 of the size, Gaussian blur 1 px, JPEG quality 60;
- ``photo, stretched``: the photo after PIL's ``ImageOps.autocontrast(cutoff=(1, 5))`` (paper back to
  white, ink to black) before it is searched: what a tone normalisation of query images would give.

and prints, per variant, how often the original figure is the first hit and among the first 10, and the
mean cosine of the original when it is among them. Figures already at hit 1 from ``clean`` are the
ones counted (a drawing that does not find itself says nothing about photos).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import figsearch  # noqa: E402


def variants(image):
    from PIL import ImageFilter, ImageOps

    grey = image.convert("L")
    paper = grey.point(lambda v: int(60 + 0.65 * v))
    photo = grey.rotate(5, expand=True, fillcolor=255).resize((int(grey.width * 0.7), int(grey.height * 0.7)))
    photo = photo.point(lambda v: int(60 + 0.65 * v)).filter(ImageFilter.GaussianBlur(1))
    buffer = io.BytesIO()
    photo.convert("RGB").save(buffer, format="JPEG", quality=60)
    from PIL import Image

    photo = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    return {"clean": grey, "grey paper": paper, "photo": photo,
            "photo, stretched": ImageOps.autocontrast(photo, cutoff=(1, 5))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--collection", required=True, type=Path)
    parser.add_argument("--figures", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from PIL import Image

    with figsearch.open(args.collection) as coll:
        figures = [f for f in coll.service.collection.figures()
                   if f.patent.startswith("USD05") and f.role.value == "drawing" and int(f.patent[3:10]) % 2 == 0]
        random.Random(args.seed).shuffle(figures)
        tallies: dict[str, list] = {}
        counted = 0
        for figure in figures:
            if counted == args.figures:
                break
            image = Image.open(coll.path / figure.image_path)
            found = {}
            for name, picture in variants(image).items():
                buffer = io.BytesIO()
                picture.save(buffer, format="PNG")
                hits = coll.search(image=buffer.getvalue(), mode="visual", k=10).hits
                ranks = [h.rank for h in hits if h.figure_id == figure.figure_id]
                found[name] = (ranks[0] if ranks else None,
                               next((h.score for h in hits if h.figure_id == figure.figure_id), None))
            if found["clean"][0] != 1:
                continue
            counted += 1
            for name, value in found.items():
                tallies.setdefault(name, []).append(value)
    print(f"{counted} drawings of even-numbered us-design-2007 patents that find themselves (seed {args.seed}); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<18} {'hit 1':>6} {'top 10':>7} {'cosine of the original (when in the top 10)':>44}")
    for name, values in tallies.items():
        first = sum(rank == 1 for rank, _ in values)
        top = [score for rank, score in values if rank is not None]
        mean = sum(top) / len(top) if top else float("nan")
        print(f"{name:<18} {first:>3}/{len(values):<2} {len(top):>4}/{len(values):<2} {mean:>44.3f}")


if __name__ == "__main__":
    main()
