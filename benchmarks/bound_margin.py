"""How much of the sheets that ``imaging.bound`` resizes is margin: the most a resize of only the inked part
(the rest filled with white, the same pixels) could save.

    python benchmarks/bound_margin.py ../shared/data/us-design-grants

For every TIFF sheet under the folder whose grey image (``imaging.to_grey``) is above ``imaging.MAX_SIDE``
on its longest side: the share of its area inside the box of its non-white pixels, the shares of its rows and
of its columns that are white throughout, the CPU ms of ``bound`` and of finding those rows and columns
(NumPy, the least a resize of the inked part needs first). Printed: the means (and the box's range), and the
CPU seconds a build could save at most, by the box and by every white row and column band.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    args = parser.parse_args()
    import numpy as np

    from figsearch import imaging

    boxes, white_rows, white_columns, resize_ms, scan_ms = [], [], [], [], []
    for path in sorted(args.data.rglob("*.TIF")) + sorted(args.data.rglob("*.tif")):
        for _, _, page in imaging.open_pages(path, source=str(path)):
            grey = imaging.to_grey(page)
            if max(grey.size) <= imaging.MAX_SIDE:
                continue
            pixels = np.asarray(grey)
            started = time.process_time()
            inked_rows, inked_columns = pixels.min(axis=1) < 255, pixels.min(axis=0) < 255
            scan_ms.append(1000 * (time.process_time() - started))
            started = time.process_time()
            imaging.bound(grey)
            resize_ms.append(1000 * (time.process_time() - started))
            rows, columns = np.flatnonzero(inked_rows), np.flatnonzero(inked_columns)
            box = ((rows[-1] - rows[0] + 1) * (columns[-1] - columns[0] + 1) / pixels.size) if len(rows) else 0.0
            boxes.append(box)
            white_rows.append(1 - inked_rows.mean())
            white_columns.append(1 - inked_columns.mean())
    n = len(boxes)
    resize_s = sum(resize_ms) / 1000
    bands = statistics.mean(1 - (1 - r) * (1 - c) for r, c in zip(white_rows, white_columns))
    print(f"{n} sheets above {imaging.MAX_SIDE} px")
    print(f"inked box: {statistics.mean(boxes):.3f} of the area (median {statistics.median(boxes):.3f}, "
          f"{min(boxes):.3f}-{max(boxes):.3f}); white rows {statistics.mean(white_rows):.3f}, "
          f"white columns {statistics.mean(white_columns):.3f}")
    print(f"bound {statistics.mean(resize_ms):.2f} CPU ms a sheet ({resize_s:.2f} CPU s in all); finding the "
          f"inked rows and columns {statistics.mean(scan_ms):.2f} ms a sheet ({sum(scan_ms) / 1000:.2f} s)")
    print(f"at most saved by resizing the inked box only: {(1 - statistics.mean(boxes)) * resize_s:.2f} CPU s; "
          f"by leaving out every white row and column band too: {bands * resize_s:.2f} CPU s "
          f"(before the scan's {sum(scan_ms) / 1000:.2f})")


if __name__ == "__main__":
    main()
