"""Which visual cosine says "this upload IS a drawing of the collection"? (stop 26: exclude_query_patent
with an upload, ``figsearch.search.service.NEAR_COPY``)

    PYTHONPATH=src python benchmarks/near_copy_threshold.py -c COLLECTION --data ../shared/data [--uploads 120]
        [--seed 0]

Training side of the data's protocol only: the drawings of the even-numbered us-design-2007 patents and of
us-design-pdfs that the collection holds (never us-design-grants, never an odd-numbered 2007 design).

- **copies**: for ``--uploads`` of those drawings (seeded draw), the file they were ingested from (the 2007
  PNG; the PDF's page) is decoded and encoded upright as an upload is (``load_query_image``, the service's
  encoder); its best match in the collection's visual index (plain cosine, no re-ranking) is recorded: the
  cosine and whether that match is the drawing itself or another sheet of its patent. The same for a
  photo-like copy of the stored drawing (``photo_copies.variants``'s ``photo``: grey paper, turned 5
  degrees, smaller, soft, JPEG).
- **cost**: the milliseconds of ``service.near_copy`` per upload (the upload already encoded: what exclude_query_patent
  adds to a search).
- **other patents**: for every one of those drawings (stored vectors), its best cosine to a drawing of
  another patent among the same training-side drawings: what a drawing new to the collection, that
  resembles one of it, would score (a false match when it passes).

Prints, per threshold, how many copies pass (and match their own patent) and how many drawings' best
other-patent match passes (false matches), with the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

THRESHOLDS = (0.80, 0.85, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)


def training_side(figure) -> bool:
    source = (figure.source_file or "").replace("\\", "/")
    if figure.role.value != "drawing":
        return False
    if "/us-design-pdfs/" in source:
        return True
    return "/us-design-2007/" in source and int(figure.patent[3:10]) % 2 == 0


def local_source(source: str, data: Path) -> Path:
    """The collection's source path (where its builder read the data) under ``data``."""
    return data / source.replace("\\", "/").split("/shared/data/", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--collection", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="the shared data folder (../shared/data)")
    parser.add_argument("--uploads", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from PIL import Image

    from figsearch.search.inputs import load_query_image
    from figsearch.search.service import SearchService
    from photo_copies import variants

    with SearchService.open(args.collection) as service:
        collection = service.collection
        figures = [f for f in collection.figures() if training_side(f)]
        key = service._settings("visual")["key"]
        index = service.snapshot().indexes["visual"]
        stored = collection.vectors.fetch("visual", key, [f.figure_id for f in figures])
        figures = [f for f in figures if f.figure_id in stored]
        patent_of = {f.figure_id: f.patent for f in figures}
        # other patents: each drawing's best cosine to a drawing of another patent (training side only)
        matrix = np.stack([stored[f.figure_id] for f in figures]).astype(np.float32)
        cosines = matrix @ matrix.T
        patents = np.array([f.patent for f in figures])
        cosines[patents[:, None] == patents[None, :]] = -1.0
        other_best = cosines.max(axis=1)

        drawn = list(figures)
        random.Random(args.seed).shuffle(drawn)
        copies: list[tuple[float, bool]] = []
        photos: list[tuple[float, bool]] = []
        #: what service.near_copy answers for each upload: its own patent (and how), another patent, nothing
        recognised: dict[str, int] = {}
        whole: list[float] = []  # the best cosine of each upload of a drawing stored whole
        costs: dict[str, list[float]] = {}  # ms of service.near_copy (the upload already encoded), by kind
        for figure in drawn[: args.uploads]:
            path = local_source(figure.source_file, args.data)
            image = load_query_image(path.read_bytes(), str(path), page=figure.page or 1)
            row = service._encode_turns(image, (0,))
            best, score = index.search(row[0], 1)[0]
            copies.append((score, collection.figure(best).patent == figure.patent))
            if not figure.parent_id:
                whole.append(score)
            started = time.perf_counter()
            copy = service.near_copy(image, row)
            costs.setdefault("split sheet" if figure.parent_id else "whole drawing", []).append(
                (time.perf_counter() - started) * 1000)
            kind = "split sheet" if figure.parent_id else "whole drawing"
            outcome = ("none" if copy is None else "another patent" if copy[0].patent != figure.patent
                       else "own patent, by " + ("cosine" if copy[1].startswith("visual") else "pixels"))
            recognised[f"{kind}: {outcome}"] = recognised.get(f"{kind}: {outcome}", 0) + 1
            with Image.open(collection.path(figure.image_path)) as stored_image:
                photo = variants(stored_image)["photo"]
            row = service._encode_turns(load_query_image(photo, "photo"), (0,))[0]
            best, score = index.search(row, 1)[0]
            photos.append((score, collection.figure(best).patent == figure.patent))

    print(f"training side: {len(figures)} drawings of {len(set(patent_of.values()))} patents (even 2007 designs, "
          f"design PDFs); {len(copies)} uploaded (seed {args.seed}); load average {os.getloadavg()[0]:.1f}")
    own = sum(same for _, same in copies)
    print(f"source file uploaded: best match of its own patent {own}/{len(copies)}, "
          f"cosine min {min(s for s, _ in copies):.4f} median {float(np.median([s for s, _ in copies])):.4f}")
    print(f"of them {len(whole)} drawings stored whole (not cut from a sheet): best cosine min {min(whole):.4f}")
    print(f"photo-like copy: best match of its own patent {sum(same for _, same in photos)}/{len(photos)}, "
          f"cosine min {min(s for s, _ in photos):.4f} median {float(np.median([s for s, _ in photos])):.4f}")
    print(f"best other-patent cosine: median {float(np.median(other_best)):.4f}, max {float(other_best.max()):.4f}")
    print("service.near_copy on the uploads (a figure cut from a sheet is uploaded as its whole sheet):")
    for outcome, count in sorted(recognised.items()):
        print(f"  {outcome}: {count}")
    for kind, values in costs.items():
        print(f"  near_copy ms ({kind}, encoding not counted): median {float(np.median(values)):.1f}, "
              f"max {max(values):.1f}")
    print(f"{'threshold':>9} {'copies pass (own)':>18} {'photos pass (own)':>18} {'other patents pass':>19}")
    for threshold in THRESHOLDS:
        passed = [same for s, same in copies if s >= threshold]
        photo_passed = [same for s, same in photos if s >= threshold]
        false = int((other_best >= threshold).sum())
        print(f"{threshold:>9.2f} {len(passed):>6}/{len(copies)} ({sum(passed):>3})   "
              f"{len(photo_passed):>6}/{len(photos)} ({sum(photo_passed):>3})   {false:>8}/{len(figures)}")


if __name__ == "__main__":
    main()
