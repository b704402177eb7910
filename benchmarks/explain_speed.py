"""Milliseconds per figure of what a hit and a details page say (figsearch.search.explain).

    PYTHONPATH=src python benchmarks/explain_speed.py -c COLLECTION [--figures 400] [--baseline OLD_SRC]

Times ``hit_sentences`` (run for every hit of every search) and ``linked_sentences`` (the details page) over
the first N drawings of the collection, three rounds, the best round counted. With ``--baseline``, the same in
a subprocess on another source tree (e.g. main's: ``git archive main src | tar -x -C /tmp/pre``), the two
alternating (before, after, before, after), with the load average beside each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def measure(collection: Path, count: int) -> str:
    from figsearch.records import FigureRole
    from figsearch.search import explain
    from figsearch.store import Collection

    with Collection.open(collection) as coll:
        figures = [f for f in coll.figures() if f.role == FigureRole.DRAWING][:count]
        best = {}
        for _ in range(3):
            for name, fn in (("hit_sentences", explain.hit_sentences), ("linked_sentences", explain.linked_sentences)):
                start = time.perf_counter()
                for figure in figures:
                    fn(coll, figure)
                took = (time.perf_counter() - start) * 1000 / len(figures)
                best[name] = min(best.get(name, took), took)
    return (f"{Path(explain.__file__).parent.parent}: hit_sentences {best['hit_sentences']:.3f} ms/figure, "
            f"linked_sentences {best['linked_sentences']:.3f} ms/figure ({len(figures)} figures, "
            f"load average {os.getloadavg()[0]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--collection", required=True, type=Path)
    parser.add_argument("--figures", type=int, default=400)
    parser.add_argument("--baseline", type=Path, default=None, help="another tree's src/ to time in the same run")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a run of this tree alone
    args = parser.parse_args()
    if args.one or args.baseline is None:
        print(measure(args.collection, args.figures))
        return
    here = Path(__file__).resolve().parent.parent / "src"
    for _ in range(2):
        for source in (args.baseline, here):
            env = dict(os.environ, PYTHONPATH=str(source))
            subprocess.run([sys.executable, __file__, "-c", str(args.collection), "--figures", str(args.figures), "--one"],
                           env=env, check=True)


if __name__ == "__main__":
    main()
