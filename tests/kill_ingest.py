"""Kill ``figsearch ingest`` at random moments and prove that nothing is lost.

    PYTHONPATH=src python tests/kill_ingest.py                      # all of ../shared/data, 10 kills
    PYTHONPATH=src python tests/kill_ingest.py ../shared/data/us-design-grants ../shared/data/ep-documents \\
        --kills 5 --seed 3                                          # a subset, faster

1. A reference collection is built by one uninterrupted run (or reused with ``--reference``),
   then rerun unchanged to measure the fixed start-up cost (planning, hashing the inputs).
2. A second collection is built by runs that are killed with SIGKILL (the whole process
   group: the CLI and its decoding workers, as a power cut or ``kill -9`` would) at
   ``--kills`` random moments (seeded): start-up × U(0.5, 1) plus the next share of the
   reference's work, taken from sorted uniform fractions, so the kills spread over the ingest.
3. After every kill the collection must be consistent (SQLite integrity check, every figure's
   image present with its recorded sha256, every source marked done has its patents) and
   ``figsearch info`` must answer.
4. A final run completes; its collection must equal the reference: every row of every table
   (timestamps aside) and every stored image byte for byte; no temporary file may be left;
   a further rerun must skip everything.
5. When the search stage is installed (figsearch.search.service), both collections are indexed
   (``figsearch index``); the killed collection's index run is itself killed ``--index-kills``
   times. Then stored vectors, index sizes (the manifest's counts) and the top-10 results of
   ``--queries`` figure queries (seeded sample) must be equal. ``--no-index`` skips this.

Prints one line per kill and a summary with the kills survived and the records lost (must be 0);
exits 1 when anything was lost or inconsistent. Collections go to ``--work`` (a temporary folder
by default, removed unless ``--keep``). Runtime: about 2.5 × one full ingest (see the report).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collection_check import check_consistent, compare, leftovers, snapshot  # noqa: E402

print = functools.partial(print, flush=True)  # progress shows when the output goes to a log file

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("FIGSEARCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def _env() -> dict:
    src = str(REPO / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "HF_HUB_OFFLINE": "1", "OMP_THREAD_LIMIT": "1"}


def ingest_command(paths: list[Path], collection: Path, jobs: int) -> list[str]:
    return [sys.executable, "-m", "figsearch", "ingest", *map(str, paths), "-c", str(collection),
            "-j", str(jobs), "--quiet", "--json", "--skip-ocr"]  # the ingest stage alone


def run_to_end(paths: list[Path], collection: Path, jobs: int) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(ingest_command(paths, collection, jobs), env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ingest failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


def start(paths: list[Path], collection: Path, jobs: int) -> subprocess.Popen:
    # a session of its own, so that one killpg takes the CLI and every worker it spawned
    return subprocess.Popen(ingest_command(paths, collection, jobs), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def kill_after(process: subprocess.Popen, delay: float, sig: int = signal.SIGKILL) -> bool:
    """Kill the run's process group after ``delay`` s; False when it finished before that."""
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, sig)
        process.communicate()
        _reap_group(process.pid)
        return True
    process.communicate()
    return False


def _reap_group(pgid: int, timeout: float = 30.0) -> None:
    """Wait until no process of the killed group is left (workers die with their parent's pipe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def have_search() -> bool:
    import importlib.util

    sys.path.insert(0, str(REPO / "src"))
    try:
        return importlib.util.find_spec("figsearch.search.service") is not None
    except ModuleNotFoundError:
        return False


def index_command(collection: Path) -> list[str]:
    return [sys.executable, "-m", "figsearch", "index", "-c", str(collection), "--json"]


def run_index(collection: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(index_command(collection), env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"index failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - started


def index_sizes(collection: Path) -> dict:
    """Per modality: the encoder and the number of vectors the manifest says the index holds."""
    manifest = json.loads((collection / "index" / "manifest.json").read_text())
    return {modality: (entry.get("encoder"), entry.get("count"))
            for modality, entry in sorted(manifest.get("modalities", {}).items())}


def search_results(collection: Path, figure_ids: list[str], k: int = 10) -> dict[str, list[tuple[str, float]]]:
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService

    out = {}
    with SearchService.open(collection) as service:
        for figure_id in figure_ids:
            result = service.search(Query(figure_id=figure_id, k=k))
            out[figure_id] = [(hit.figure_id, round(hit.score, 4)) for hit in result.hits]
    return out


def same_results(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> bool:
    """Equal hits; figures with equal scores may come in either order."""
    return sorted(a, key=lambda h: (-h[1], h[0])) == sorted(b, key=lambda h: (-h[1], h[0]))


def index_stage(reference: Path, killed: Path, *, kills: int, queries: int, seed: int) -> dict:
    """Index both collections (killing the second's runs), then compare vectors, sizes and results."""
    ref_seconds = run_index(reference)
    print(f"index: reference indexed in {ref_seconds:.1f} s: {index_sizes(reference)}")
    rng = random.Random(seed + 1)
    delivered = 0
    for number in range(1, kills + 1):
        delay = rng.uniform(1.0, max(2.0, ref_seconds))
        process = subprocess.Popen(index_command(killed), env=_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
        was_killed = kill_after(process, delay)
        delivered += was_killed
        problems = check_consistent(killed)
        print(f"index kill {number}: after {delay:6.2f} s, {'killed' if was_killed else 'finished first'}; "
              f"{'consistent' if not problems else 'PROBLEMS: ' + '; '.join(problems[:3])}")
    run_index(killed)
    sizes = (index_sizes(reference), index_sizes(killed))
    vectors = compare(snapshot(reference), snapshot(killed))
    db = sqlite3.connect(f"file:{reference / 'figsearch.sqlite'}?mode=ro", uri=True)
    ids = sorted(r[0] for r in db.execute("SELECT figure_id FROM figures"))
    db.close()
    sample = random.Random(seed).sample(ids, min(queries, len(ids)))
    ref_hits, got_hits = search_results(reference, sample), search_results(killed, sample)
    differing = [q for q in sample if not same_results(ref_hits[q], got_hits[q])]
    print(f"index sizes: reference {sizes[0]}, after kills {sizes[1]}")
    print(f"stored vectors and rows after indexing: {vectors}")
    print(f"search results: {len(sample) - len(differing)} of {len(sample)} figure queries give the same top 10"
          + (f"; differ: {differing[:5]}" if differing else ""))
    return {"ok": sizes[0] == sizes[1] and vectors.equal and not differing, "kills": delivered,
            "lost": vectors.records_lost}


def info(collection: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "figsearch", "info", "-c", str(collection), "--json"],
                          env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"figsearch info failed after a kill: {done.stderr.strip()}")
    return json.loads(done.stdout)


@dataclass
class KillOutcome:
    number: int
    delay: float
    killed: bool
    patents: int
    figures: int
    problems: list[str]


def kill_schedule(rng: random.Random, kills: int, startup: float, work: float) -> list[float]:
    """Delays from each start to its kill: start-up × U(0.5, 1) + the next share of the work."""
    fractions = sorted(rng.random() for _ in range(kills))
    shares = [b - a for a, b in zip([0.0] + fractions, fractions)]
    return [startup * rng.uniform(0.5, 1.0) + share * work for share in shares]


def kill_run(paths: list[Path], collection: Path, *, kills: int, seed: int, jobs: int, startup: float,
             work: float, log=print) -> list[KillOutcome]:
    rng = random.Random(seed)
    outcomes = []
    for number, delay in enumerate(kill_schedule(rng, kills, startup, work), 1):
        process = start(paths, collection, jobs)
        killed = kill_after(process, delay)
        problems = check_consistent(collection) if (collection / "figsearch.sqlite").exists() else []
        counts = {"patents": 0, "figures": 0}
        if (collection / "figsearch.sqlite").exists():
            try:
                counts = info(collection)
            except RuntimeError as exc:
                problems.append(str(exc))
        outcome = KillOutcome(number, delay, killed, counts["patents"], counts["figures"], problems)
        outcomes.append(outcome)
        state = "killed" if killed else f"finished before the kill (exit {process.returncode})"
        log(f"kill {number:2d}: after {delay:6.2f} s, {state}; collection holds {outcome.patents} patents, "
            f"{outcome.figures} figures; {'consistent' if not problems else 'PROBLEMS: ' + '; '.join(problems[:3])}")
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help=f"inputs (default: {DEFAULT_DATA})")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", "-j", type=int, default=2)
    parser.add_argument("--work", type=Path, help="folder for the collections (default: a temporary one)")
    parser.add_argument("--reference", type=Path, help="reuse this reference collection (built from the same inputs "
                                                       "by this code) instead of building one")
    parser.add_argument("--keep", action="store_true", help="keep the collections")
    parser.add_argument("--work-seconds", type=float, default=60.0,
                        help="with --reference: how long the reference's ingest took (spreads the kills)")
    parser.add_argument("--no-index", action="store_true", help="compare the ingest only, not indexes and searches")
    parser.add_argument("--index-kills", type=int, default=3, help="kills of the index run (default 3)")
    parser.add_argument("--queries", type=int, default=50, help="figure queries to compare (default 50)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in (args.paths or [DEFAULT_DATA])]
    for path in paths:
        if not path.exists():
            parser.error(f"{path} does not exist")
    work = args.work or Path(tempfile.mkdtemp(prefix="figsearch-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    killed = work / "killed"
    shutil.rmtree(killed, ignore_errors=True)
    began = time.perf_counter()
    try:
        reference = args.reference or work / "reference"
        if args.reference is None:
            shutil.rmtree(reference, ignore_errors=True)
            seconds, summary = run_to_end(paths, reference, args.jobs)
            print(f"reference: uninterrupted ingest in {seconds:.1f} s: {summary['documents']} documents, "
                  f"{summary['figures']} figures, {summary['failures']} failures")
        startup, summary = run_to_end(paths, reference, args.jobs)
        print(f"reference: unchanged rerun in {startup:.1f} s ({summary['skipped_unchanged']} units skipped, "
              f"{summary['documents']} read again)")
        if args.reference is None:
            work_seconds = max(seconds - startup, 1.0)
        else:
            work_seconds = args.work_seconds
        ref = snapshot(reference)
        outcomes = kill_run(paths, killed, kills=args.kills, seed=args.seed, jobs=args.jobs, startup=startup,
                            work=work_seconds)
        final_seconds, final = run_to_end(paths, killed, args.jobs)
        print(f"final run: completed in {final_seconds:.1f} s ({final['documents']} documents read, "
              f"{final['skipped_unchanged']} unchanged skipped)")
        _, again = run_to_end(paths, killed, args.jobs)
        got = snapshot(killed)
        diff = compare(ref, got)
        left = leftovers(killed)
        inconsistent = [o for o in outcomes if o.problems] + ([None] if check_consistent(killed) else [])
        survived = sum(1 for o in outcomes if o.killed and not o.problems)
        delivered = sum(1 for o in outcomes if o.killed)
        print(f"reference: {_fmt(ref.counts())}")
        print(f"after kills: {_fmt(got.counts())}")
        print(f"comparison with the uninterrupted run: {diff}")
        print(f"rerun after completion: {again['skipped_unchanged']} of {again['units']} units skipped, "
              f"{again['documents']} read again")
        print(f"temporary files left: {len(left)}" + (f" ({', '.join(left[:5])})" if left else ""))
        print(f"kills survived: {survived}/{delivered} (of {args.kills} scheduled)")
        print(f"records lost: {diff.records_lost}")
        ok = diff.equal and not left and not inconsistent and survived == delivered and again["documents"] == 0
        lost = diff.records_lost
        if not args.no_index and have_search():
            stage = index_stage(reference, killed, kills=args.index_kills, queries=args.queries, seed=args.seed)
            ok = ok and stage["ok"]
            lost += stage["lost"]
            print(f"records lost after indexing: {stage['lost']}")
        elif not args.no_index:
            print("index and search: not compared (figsearch.search.service is not installed in this checkout)")
        print(f"total records lost: {lost}")
        print(f"total time: {time.perf_counter() - began:.0f} s")
        print("RESULT: " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _fmt(counts: dict) -> str:
    wanted = ("patents", "figures", "paragraphs", "failures", "sources", "classifications", "stored files")
    return ", ".join(f"{k} {counts[k]}" for k in wanted if k in counts)


if __name__ == "__main__":
    sys.exit(main())
