"""Does an upload cost more CPU when several run at once? (issue 15: where 20 clients lose throughput.)

In the lead's idle load test of stop 18, every kind of call cost more CPU under 20 clients than with one
client alone (a drawing new to the collection 140.5 -> 168.2 ms on its thread, a crop 45.3 -> 51.6, a search by
figure 8.1 -> 9.2): the throughput against one client is the cores used (1.95x) times the answers per CPU
second (0.86x), 1.67x, where the target is 1.8x. This script measures that growth apart from the server: one
process, a search service as a server worker runs it (one intra-op thread per call), and ``--threads`` threads
(1, 2, 4 by default, each in turn, twice) uploading drawings new to the collection (design-grant sheets whose
patents it does not hold, each with a random crop of its margins, as ``load_test.py`` sends them) for
``--seconds`` each. It prints the CPU per upload and uploads per second by thread count and their ratios
to one thread. On an idle machine, CPU per upload that grows with the threads on a 2-core machine is the
hardware's (shared caches and memory bandwidth), not the server's queueing; on a loaded machine the
other work's share moves the numbers more than this does (compare rounds).

    python benchmarks/upload_concurrency.py --collection C [--all-turns]

Since stop 21 an upload is searched upright alone; ``--all-turns`` measures uploads in all four quarter
turns, as every new drawing was before.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_test import NEW_IMAGES, default_new_images, new_drawings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", required=True, type=Path)
    parser.add_argument("--new-images", type=Path, nargs="*", help="drawings new to the collection (files or folders)")
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10.0, help="per thread count and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--all-turns", action="store_true", help="each upload asks for all four quarter turns "
                        "(by default, since stop 21, an upload is searched upright alone)")
    args = parser.parse_args()

    from figsearch.search.query import Query
    from figsearch.search.service import SearchService
    from figsearch.server.state import COMPUTE_THREADS
    from figsearch.server.uploads import Limits, apply_crop, decode_upload
    from figsearch.store import Collection

    with Collection.open(args.collection) as store:
        patents = store.patent_numbers()
    files, source = new_drawings(args.new_images or default_new_images(), patents, NEW_IMAGES, 7, 20 << 20)
    if not files:
        raise SystemExit("no drawings new to the collection found: give --new-images")
    service = SearchService.open(args.collection)
    service.limit_threads(COMPUTE_THREADS)
    service.warm()

    def upload(data: bytes, rng: random.Random) -> None:
        crop = (rng.uniform(0, 0.02), rng.uniform(0, 0.02), rng.uniform(0.98, 1), rng.uniform(0.98, 1))
        service.search(Query(image=apply_crop(decode_upload(data, Limits()), crop), mode="visual", k=12,
                             **({"all_turns": True} if args.all_turns else {})))

    for data in files[:4]:  # first-call costs outside the clock
        upload(data, random.Random(0))

    def run(threads: int, seconds: float) -> tuple[float, float]:
        cpu, calls = [], []
        stop = time.perf_counter() + seconds
        turn = itertools.count()  # every run takes the files in the same order, whatever its threads
        lock = threading.Lock()

        def work(i: int) -> None:
            rng, n, started = random.Random(i), 0, time.thread_time()
            while time.perf_counter() < stop:
                with lock:
                    index = next(turn)
                upload(files[index % len(files)], rng)
                n += 1
            cpu.append(time.thread_time() - started)
            calls.append(n)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return 1000 * sum(cpu) / max(sum(calls), 1), sum(calls) / seconds

    print(f"{len(files)} new drawings ({source}); {args.seconds} s per thread count, {args.rounds} rounds")
    results: dict[int, list[tuple[float, float]]] = {t: [] for t in args.threads}
    for round_ in range(args.rounds):
        for threads in args.threads:
            ms, rate = run(threads, args.seconds)
            results[threads].append((ms, rate))
            print(f"  round {round_ + 1}, {threads} thread(s): {ms:.1f} ms CPU per upload, {rate:.2f} uploads/s",
                  flush=True)
    base = statistics.fmean(ms for ms, _ in results[args.threads[0]])
    base_rate = statistics.fmean(rate for _, rate in results[args.threads[0]])
    for threads, rows in results.items():
        ms, rate = statistics.fmean(m for m, _ in rows), statistics.fmean(r for _, r in rows)
        print(f"{threads} thread(s): {ms:.1f} ms CPU per upload ({ms / base:.2f}x {args.threads[0]} thread's), "
              f"{rate:.2f} uploads/s ({rate / base_rate:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
