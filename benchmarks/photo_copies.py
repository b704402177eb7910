"""Does a photo-like copy of a collection drawing find its original? (stop 25: a user's session, then
the tone normalisation of query images, ``figsearch.tone``)

    PYTHONPATH=src python benchmarks/photo_copies.py -c COLLECTION [--figures 40] [--seed 0] [--check-stored]
        [--drawings design-2007|utility]

An examiner photographs a drawing: the paper is grey, not white, the ink dark grey, the sheet a little
turned, smaller, soft and JPEG-compressed. For N drawings of the collection, drawn seeded from the
even-numbered us-design-2007 patents (the training side of the data's protocol: nothing here is evaluation
data; ``--drawings utility``: the drawings of every patent that is not a US design, i.e. us-utility-sheets,
upair-queries, us-applications and EP documents where the collection holds them, none of them evaluation
data either), this searches in mode ``visual`` (k=10) with

- ``clean``: the stored drawing itself, as a file (PNG bytes);
- ``grey paper``: the same pixels mapped to paper 225 and ink 60 (v -> 60 + 0.65 v), nothing else;
- ``photo``: grey paper, turned 5 degrees, 0.7 of the size, Gaussian blur 1 px, JPEG quality 60;
- ``photo, uneven light``: the photo with its paper lit from 235 at the left to 185 at the right (ink 60);
- ``photo on a table``: the photo in the middle of a dark surround (level 90, 15 % wider and higher), JPEG
  again: a photo that shows the table around the sheet;
- ``photo, autocontrast``: the photo after PIL's ``ImageOps.autocontrast(cutoff=(1, 5))`` (the user
  session's stand-in for a tone normalisation), searched as it is;

each twice in the same run: ``off``, with the query path's tone normalisation replaced by "as it is" in this
process (how queries were searched before stop 25), and ``on``, the query path as it is
(``search.inputs.load_query_image`` -> ``tone.normalise_tone``). It prints, per variant, how often the
original figure is the first hit and among the first 10, the mean cosine of the original when it is among
them, and the median milliseconds ``normalise_tone`` took on the variant's image (the decoded query, as the
query path hands it over). Figures already at hit 1 from ``clean`` (normalisation on) are the ones counted
(a drawing that does not find itself says nothing about photos).

``--check-stored`` also passes every stored drawing of the collection (images/) through ``normalise_tone``
and counts those it would change (none should: a clean drawing passes through bit for bit).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import figsearch  # noqa: E402
from figsearch import tone  # noqa: E402


def _jpeg(image, quality: int = 60):
    from PIL import Image

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def _lit(grey, left: int, right: int, ink: int = 60):
    """``grey`` (black on white) as ink ``ink`` on paper lit from ``left`` to ``right``, across."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(grey, np.float32) / 255
    light = np.linspace(left, right, pixels.shape[1], dtype=np.float32)[None, :]
    return Image.fromarray((ink + pixels * (light - ink)).round().astype(np.uint8))


def variants(image):
    from PIL import Image, ImageFilter, ImageOps

    grey = image.convert("L")
    paper = grey.point(lambda v: int(60 + 0.65 * v))
    turned = grey.rotate(5, expand=True, fillcolor=255).resize((int(grey.width * 0.7), int(grey.height * 0.7)))
    photo = _jpeg(turned.point(lambda v: int(60 + 0.65 * v)).filter(ImageFilter.GaussianBlur(1)))
    uneven = _jpeg(_lit(turned, 235, 185).filter(ImageFilter.GaussianBlur(1)))
    table = Image.new("L", (int(photo.width * 1.15), int(photo.height * 1.15)), 90)
    table.paste(photo, ((table.width - photo.width) // 2, (table.height - photo.height) // 2))
    return {"clean": grey, "grey paper": paper, "photo": photo, "photo, uneven light": uneven,
            "photo on a table": _jpeg(table), "photo, autocontrast": ImageOps.autocontrast(photo, cutoff=(1, 5))}


def check_stored(coll) -> None:
    from PIL import Image

    paths = sorted((coll.path / "images").rglob("*.png"))
    changed = []
    for path in paths:
        with Image.open(path) as image:
            image.load()
            grey = image if image.mode == "L" else image.convert("L")
            if tone.normalise_tone(grey) is not grey:
                changed.append(path.relative_to(coll.path))
    print(f"stored drawings changed by normalise_tone: {len(changed)} of {len(paths)}"
          + "".join(f"\n  {p}" for p in changed[:20]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--collection", required=True, type=Path)
    parser.add_argument("--figures", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-stored", action="store_true")
    parser.add_argument("--drawings", choices=("design-2007", "utility"), default="design-2007")
    args = parser.parse_args()
    from PIL import Image

    normalise = tone.normalise_tone
    with figsearch.open(args.collection) as coll:
        if args.check_stored:
            check_stored(coll)
        if args.drawings == "utility":
            figures = [f for f in coll.service.collection.figures()
                       if not f.patent.startswith("USD") and f.role.value == "drawing"]
        else:
            figures = [f for f in coll.service.collection.figures() if f.patent.startswith("USD05")
                       and f.role.value == "drawing" and int(f.patent[3:10]) % 2 == 0]
        random.Random(args.seed).shuffle(figures)

        def search(picture, figure, normalised: bool):
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            tone.normalise_tone = normalise if normalised else (lambda image: image)
            try:
                hits = coll.search(image=buffer.getvalue(), mode="visual", k=10).hits
            finally:
                tone.normalise_tone = normalise
            hit = next((h for h in hits if h.figure_id == figure.figure_id), None)
            return (hit.rank, hit.score) if hit else (None, None)

        tallies: dict[tuple[str, str], list] = {}
        costs: dict[str, list[float]] = {}
        counted = 0
        for figure in figures:
            if counted == args.figures:
                break
            pictures = variants(Image.open(coll.path / figure.image_path))
            if search(pictures["clean"], figure, True)[0] != 1:
                continue
            counted += 1
            for name, picture in pictures.items():
                for state in ("off", "on"):
                    tallies.setdefault((name, state), []).append(search(picture, figure, state == "on"))
                started = time.perf_counter()
                normalise(picture)
                costs.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    what = "utility patents" if args.drawings == "utility" else "even-numbered us-design-2007 patents"
    print(f"{counted} drawings of {what} that find themselves (seed {args.seed}); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<20} {'tone':<4} {'hit 1':>6} {'top 10':>7} {'cosine (in the top 10)':>23} {'normalise ms':>13}")
    for (name, state), values in tallies.items():
        first = sum(rank == 1 for rank, _ in values)
        top = [score for rank, score in values if rank is not None]
        mean = sum(top) / len(top) if top else float("nan")
        cost = f"{statistics.median(costs[name]):>13.2f}" if state == "on" else ""
        print(f"{name:<20} {state:<4} {first:>3}/{len(values):<2} {len(top):>4}/{len(values):<2} {mean:>23.3f} {cost}")


if __name__ == "__main__":
    main()
