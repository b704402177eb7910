"""Fit the centring statistics and PCA projection of the ``lines`` visual encoder.

    PYTHONPATH=src python scripts/fit_lines_projection.py ../shared/data/us-design-2007 \
        --out src/figsearch/models/lines_v1.npz

The shipped file was fitted on the 1,087 drawings of ``us-design-2007`` (one per patent), which
share no patent with the design grants the encoder is evaluated on.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from figsearch.embed.encoders.lines import PROJECTION_DIMS, WHITENING, fit_projection

SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg"}


def drawings(folders: list[Path]):
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            # USPTO front pages repeat a drawing sheet: not material for the statistics
            if path.suffix.lower() in SUFFIXES and "-D00000" not in path.name:
                with Image.open(path) as image:
                    yield image.convert("L")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dims", type=int, default=PROJECTION_DIMS)
    parser.add_argument("--whitening", type=float, default=WHITENING)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    arrays = fit_projection(drawings(args.folders), dims=args.dims, whitening=args.whitening)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, projection {arrays['projection'].shape})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
