"""Load test of the figsearch HTTP API: N concurrent clients searching for T seconds.

Starts ``figsearch serve`` on a collection (or uses a server already running on this machine),
then every client loops over a mix of searches by figure id, by uploaded image and by words,
and the script reports requests, errors (the target is 0) and latency percentiles.

    python benchmarks/load_test.py --collection /tmp/me/collection
    python benchmarks/load_test.py --collection DIR --url http://127.0.0.1:8000/

Loopback only: the script refuses to load any other host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from figsearch.cli.serve_cmd import is_loopback
from figsearch.records import FigureRole
from figsearch.store import Collection


def load_queries(collection: Path, limit: int, seed: int) -> tuple[list[str], list[bytes], list[str]]:
    """Figure ids, image files and title words of the collection to search with."""
    with Collection.open(collection) as store:
        figures = store.figures(roles=(FigureRole.DRAWING,))
        titles = [store.patent(p).title or "" for p in store.patent_numbers()]
        rng = random.Random(seed)
        rng.shuffle(figures)
        figures = figures[:limit]
        images = [store.path(f.image_path).read_bytes() for f in figures[:20] if f.image_path]
    words = sorted({w for t in titles for w in re.findall(r"[a-z]{4,}", t.lower())}) or ["drawing"]
    return [f.figure_id for f in figures], images, words


def start_server(collection: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "figsearch", "serve", "--collection", str(collection), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    for line in process.stdout:
        print(f"  server: {line.rstrip()}")
        match = re.search(r"at (http://\S+/)", line)
        if match:
            return process, match.group(1)
    raise SystemExit(f"figsearch serve exited ({process.wait()}) before it listened")


async def client(http, base: str, deadline: float, rng: random.Random, queries, mix, results: list) -> None:
    figure_ids, images, words = queries
    kinds = [k for k, weight in mix.items() for _ in range(weight)]
    while time.perf_counter() < deadline:
        kind = rng.choice(kinds)
        start = time.perf_counter()
        try:
            if kind == "image" and images:
                files = {"image": ("query.png", rng.choice(images), "image/png")}
                response = await http.post(f"{base}api/search", files=files, data={"k": "12", "mode": "visual"})
            elif kind == "text":
                text = " ".join(rng.sample(words, min(2, len(words))))
                response = await http.get(f"{base}api/search", params={"text": text, "k": "12", "mode": "text"})
            else:
                response = await http.get(f"{base}api/search", params={"figure_id": rng.choice(figure_ids), "k": "12"})
            ok = response.status_code == 200 and "hits" in response.json()
            status = response.status_code
        except Exception as exc:  # a refused or dropped connection is an error, not a crash of the test
            ok, status = False, type(exc).__name__
        results.append((kind, time.perf_counter() - start, ok, status))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def run(base: str, queries, clients: int, duration: float, mix: dict, seed: int) -> list:
    import httpx

    results: list = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        # one search of each kind first, so loading the encoders is not counted as latency
        figure_ids, images, words = queries
        warm = [await http.get(f"{base}api/search", params={"figure_id": figure_ids[0], "k": "12"})]
        if images and mix.get("image"):
            warm.append(await http.post(f"{base}api/search", files={"image": ("q.png", images[0], "image/png")},
                                        data={"k": "12", "mode": "visual"}))
        if mix.get("text"):
            warm.append(await http.get(f"{base}api/search", params={"text": words[0], "k": "12", "mode": "text"}))
        print(f"  warm-up searches: {[r.status_code for r in warm]}")
        # baseline in the same run: one client alone, so the report can say what concurrency costs
        alone: list = []
        await client(http, base, time.perf_counter() + min(10.0, duration / 3), random.Random(seed - 1), queries,
                     mix, alone)
        deadline = time.perf_counter() + duration
        await asyncio.gather(*[
            client(http, base, deadline, random.Random(seed + i), queries, mix, results) for i in range(clients)
        ])
    return results, alone


def report(results: list, clients: int, duration: float) -> dict:
    latencies = [r[1] * 1000 for r in results]
    errors = [r for r in results if not r[2]]
    summary = {
        "clients": clients,
        "duration_s": duration,
        "requests": len(results),
        "errors": len(errors),
        "error_statuses": sorted({str(r[3]) for r in errors}),
        "throughput_rps": round(len(results) / duration, 2),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "by_kind": {},
    }
    for kind in sorted({r[0] for r in results}):
        own = [r[1] * 1000 for r in results if r[0] == kind]
        summary["by_kind"][kind] = {
            "requests": len(own),
            "errors": sum(1 for r in results if r[0] == kind and not r[2]),
            "p50_ms": round(percentile(own, 50), 1),
            "p95_ms": round(percentile(own, 95), 1),
            "mean_ms": round(statistics.fmean(own), 1),
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", required=True, type=Path, help="collection to serve and take queries from")
    parser.add_argument("--url", help="a figsearch server already running on this machine (else one is started)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--mix", default="figure=3,image=1,text=1", help="relative weights of the query kinds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()

    mix = {k: int(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    queries = load_queries(args.collection, 500, args.seed)
    if not queries[0]:
        raise SystemExit(f"no drawings in {args.collection} to search with")
    process = None
    if args.url:
        base = args.url if args.url.endswith("/") else args.url + "/"
    else:
        process, base = start_server(args.collection, [])
    host = urlparse(base).hostname or ""
    if not is_loopback(host):
        raise SystemExit(f"refusing to load {host}: this script only targets a server on this machine (loopback)")
    print(f"load test: {args.clients} clients for {args.duration:.0f} s against {base} (mix {args.mix}, "
          f"{len(queries[0])} figure ids, {len(queries[1])} images, {len(queries[2])} words)")
    try:
        results, alone = asyncio.run(run(base, queries, args.clients, args.duration, mix, args.seed))
    finally:
        if process is not None:
            process.terminate()
            process.wait(15)
    summary = report(results, args.clients, args.duration)
    baseline = report(alone, 1, min(10.0, args.duration / 3))
    summary["baseline_one_client"] = {k: baseline[k] for k in ("requests", "errors", "throughput_rps", "p50_ms", "p95_ms")}
    print(f"baseline, one client alone: {baseline['requests']} requests  throughput {baseline['throughput_rps']}/s  "
          f"p50 {baseline['p50_ms']} ms  p95 {baseline['p95_ms']} ms")
    print(f"requests {summary['requests']}  errors {summary['errors']}  throughput {summary['throughput_rps']}/s  "
          f"p50 {summary['p50_ms']} ms  p95 {summary['p95_ms']} ms  p99 {summary['p99_ms']} ms  max {summary['max_ms']} ms")
    for kind, row in summary["by_kind"].items():
        print(f"  {kind:7s} {row['requests']:6d} requests  {row['errors']} errors  "
              f"p50 {row['p50_ms']} ms  p95 {row['p95_ms']} ms  mean {row['mean_ms']} ms")
    print(f"ratios against one client: throughput {summary['throughput_rps'] / max(baseline['throughput_rps'], 1e-9):.2f}x, "
          f"p50 latency {summary['p50_ms'] / max(baseline['p50_ms'], 1e-9):.1f}x, "
          f"p95 latency {summary['p95_ms'] / max(baseline['p95_ms'], 1e-9):.1f}x")
    if summary["errors"] or baseline["errors"]:
        print(f"ERRORS: {summary['error_statuses'] + baseline['error_statuses']}")
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 1 if summary["errors"] or baseline["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
