"""The visual mode with and without ``neighbour_text`` (search/neighbour_text.py) through the search service.

    PYTHONPATH=src python benchmarks/neighbour_text_eval.py -c COLLECTION --rule same-patent [--queries FILE] \
        [--timing 40]

Every query figure is searched in mode ``visual`` twice, as a drawing without words (a figure-id query in mode
``visual`` uses the figure's stored drawing vector only): plainly, and with ``neighbour_text`` (the text channel
searched with the texts of the drawing's nearest figures; a drawing whose nearest figure has no text is searched
alone either way, stop 24). Both re-rank the visual list as the visual mode does by
default. Prints AP@k of each, their difference with a paired sign-flip test (10,000 flips, seed 0) on the
per-query AP@k, and with ``--timing N`` the median milliseconds per search of N seeded queries, off and on
alternating, with the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from figsearch.evaluate import experiment  # noqa: E402
from figsearch.search.query import Query  # noqa: E402


class NeighbourText:
    """A backend whose every search sets ``neighbour_text``."""

    def __init__(self, backend, on: bool) -> None:
        self.backend, self.on = backend, on

    def search(self, query):
        query.neighbour_text = self.on
        return self.backend.search(query)

    def __getattr__(self, name):
        return getattr(self.backend, name)


def sign_flip(a: list[float], b: list[float], flips: int = 10000, seed: int = 0) -> float:
    """Two-sided p of the mean paired difference b - a."""
    d = np.asarray(b) - np.asarray(a)
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(flips, len(d)))
    return float(((np.abs((signs * d).mean(axis=1)) >= observed - 1e-12).sum() + 1) / (flips + 1))


def timing(collection: str, n: int, k: int, seed: int = 0) -> None:
    from figsearch.search.service import SearchService
    from figsearch.store import Collection

    with Collection.open(collection) as c:
        ids = sorted(f.figure_id for f in c.figures() if f.role.value != "front_page")
    chosen = random.Random(seed).sample(ids, min(n, len(ids)))
    took = {False: [], True: []}
    with SearchService.open(collection) as service:
        service.search(Query(figure_id=chosen[0], mode="visual", neighbour_text=True, k=k))  # warm
        for i, figure in enumerate(chosen):
            for on in ((False, True) if i % 2 == 0 else (True, False)):
                start = time.perf_counter()
                service.search(Query(figure_id=figure, mode="visual", neighbour_text=on, k=k))
                took[on].append((time.perf_counter() - start) * 1000)
    off, on = statistics.median(took[False]), statistics.median(took[True])
    print(f"timing ({len(chosen)} queries, k = {k}, load average {os.getloadavg()[0]:.1f}): visual {off:.1f} ms, "
          f"visual + neighbour_text {on:.1f} ms per search (median; +{on - off:.1f} ms)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--collection", required=True)
    parser.add_argument("--rule", action="append", required=True, help="same-patent or same-class:SCHEME:DEPTH")
    parser.add_argument("--queries", default="all", help="all, sample:N:SEED, or a file of figure ids")
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--timing", type=int, default=0, metavar="N", help="also time N queries, off and on")
    args = parser.parse_args()
    judgments = experiment.Judgments(rules=tuple(args.rule))
    runs = {}
    for on in (False, True):
        started = time.perf_counter()
        ev = experiment.evaluate(args.collection, judgments, queries=args.queries, k=args.k, modes=["visual"],
                                 backend_factory=lambda path, on=on: NeighbourText(experiment.open_backend(path), on))
        primary = ev.scores.measures[0]
        runs[on] = ev.scores.modes["visual"].per_query[primary]
        print(f"visual{' + neighbour_text' if on else ''}: {primary} {ev.scores.modes['visual'].means[primary]:.4f} "
              f"({len(runs[on])} queries, {time.perf_counter() - started:.0f} s, load average "
              f"{os.getloadavg()[0]:.1f})", flush=True)
    queries = sorted(runs[False].keys() & runs[True].keys())
    a, b = [runs[False][q] for q in queries], [runs[True][q] for q in queries]
    print(f"difference {np.mean(b) - np.mean(a):+.4f} (paired sign-flip p = {sign_flip(a, b):.4f}, "
          f"{len(queries)} queries)", flush=True)
    if args.timing:
        timing(args.collection, args.timing, args.k)


if __name__ == "__main__":
    main()
