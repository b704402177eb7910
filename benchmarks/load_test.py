"""Load test of the figsearch HTTP API, in three phases of one run against one server:

1. one client alone (the baseline the ratios are measured against, in the same run);
2. ``--clients`` (20) concurrent clients for ``--duration`` (30 s): the target is 0 errors;
3. ``--burst-clients`` (100) for ``--burst-duration``: 0 errors other than 503 with Retry-After.

Every client loops over the same mix: searches by figure id, by words, by an uploaded drawing, and
bad uploads (over the byte limit, truncated, not an image) that must get their 4xx (413, 400,
415) without stalling the others. Uploaded drawings are of two kinds, each its own row:

* ``image``: a crop of one of the collection's own drawings (its margins cut by up to 2 %), searched
  in one orientation (the upright drawing alone: the server's default since stop 21; before, the
  upright-first rule recognised it as nearly a figure of the collection);
* ``new``: a drawing NEW to the collection, what an examiner uploads: by default a drawing sheet
  of a design grant of ``../shared/data/us-design-grants`` whose patent is not in the collection
  (``--new-images`` names other files or folders), each with the same kind of random crop, so the
  cache of recent uploads never answers. Without the shared data, the collection's drawings turned
  a quarter turn and mirrored stand in. Since stop 21 it is searched upright alone too (before, in all
  four turns unless the upright-first rule fired); the orientations each upload was searched in are
  counted per row from the server's ``Server-Timing`` ``turns`` (``--all-turns`` asks for all four).

The upload target (p50 <= 1 s) is judged on each kind. Through all three phases a separate process asks /api/health every
100 ms on its own connection (so its latency is the server's, not this client's event loop's).
At the end, the resident memory of each server worker (RSS, and PSS, which shares pages between
processes; the part mapped from the collection's index files).

    python benchmarks/load_test.py --collection /tmp/me/collection
    python benchmarks/load_test.py --collection DIR --workers 2 --token
    python benchmarks/load_test.py --collection DIR --url http://127.0.0.1:8000/

Loopback only: the script refuses to load any other host. Every loop is bounded in time and in
count. On a machine shared with other work the absolute numbers are pessimistic; the ratios
against the one-client baseline of the same run are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import random
import re
import resource
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from figsearch.cli.serve_cmd import is_loopback
from light_http import Connection
from figsearch.records import FigureRole
from figsearch.store import Collection

#: what each kind of request must answer; anything else is an error (a 503 is counted apart)
EXPECTED = {"figure": 200, "text": 200, "image": 200, "new": 200, "oversized": 413, "truncated": 400,
            "nonimage": 415}
SEARCHES = ("figure", "text")
#: crops of the collection's drawings, and drawings new to it (see the module's docstring)
UPLOADS = ("image", "new")
#: the default mix: 3 uploads in 18 requests, as before the new drawings came in, two of them new drawings
DEFAULT_MIX = "figure=9,text=3,image=1,new=2,oversized=1,truncated=1,nonimage=1"
#: how many new drawings (files) the clients choose from
NEW_IMAGES = 20
#: no client sends more than this many requests in a phase, whatever the duration
MAX_REQUESTS_PER_CLIENT = 100_000
#: a 503's Retry-After is honoured up to this many seconds
MAX_BACKOFF_S = 2.0
TARGETS = {"search_p50_ms": 100.0, "upload_p50_ms": 1000.0, "throughput_ratio": 1.8, "health_max_ms": 50.0}


def default_new_images() -> list[Path]:
    """The design grants of the shared data (``$FIGSEARCH_SHARED_DATA`` or ``../shared/data`` beside the
    checkout), or nothing when they are absent."""
    here = Path(__file__).resolve().parents[1]
    for data in (os.environ.get("FIGSEARCH_SHARED_DATA"), here.parent / "shared" / "data",
                 here.parent.parent / "shared" / "data"):
        if data and (Path(data) / "us-design-grants").is_dir():
            return [Path(data) / "us-design-grants"]
    return []


def new_drawings(paths: list[Path], patents: list[str], count: int, seed: int, max_upload: int) -> tuple[list[bytes], str]:
    """Up to ``count`` drawing files under ``paths`` (files, or folders searched for TIFF/PNG/JPEG) whose
    patent is not one of the collection's ``patents`` (a file name starting with a publication number
    the collection holds, e.g. USD0907292-20210105-D00001.TIF for USD0907292S1), front pages
    (``-D00000``) left out; a seeded sample. Returns the files' bytes and where they came from."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".tif", ".tiff", ".png", ".jpg", ".jpeg"))
        elif path.is_file():
            files.append(path)
    held = {re.sub(r"[^A-Z0-9]", "", p.upper()) for p in patents}

    def in_collection(file: Path) -> bool:
        stem = re.split(r"[-_.]", file.name.upper())[0]
        return any(number.startswith(stem) or stem.startswith(number) for number in held if stem)

    files = [f for f in files if "-D00000" not in f.name.upper() and not in_collection(f)]
    rng = random.Random(seed)
    rng.shuffle(files)
    out = []
    for file in files:
        data = file.read_bytes()
        if len(data) < max_upload:
            out.append(data)
        if len(out) >= count:
            break
    return out, f"{len(out)} files of {', '.join(str(p) for p in paths)} whose patents are not in the collection"


def transformed(images: list[bytes]) -> list[bytes]:
    """The collection's drawings turned a quarter turn and mirrored: drawings the collection does not hold
    as they stand (the stand-in for new drawings when no other files are at hand)."""
    from PIL import Image, ImageOps

    out = []
    for data in images:
        image = ImageOps.mirror(Image.open(io.BytesIO(data)).transpose(Image.Transpose.ROTATE_90))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def load_queries(collection: Path, limit: int, seed: int, max_upload: int, new_paths: list[Path] | None = None) -> dict:
    """Figure ids, image files and title words of the collection to search with, drawings new to it, and the
    bad uploads."""
    with Collection.open(collection) as store:
        figures = store.figures(roles=(FigureRole.DRAWING,))
        patents = store.patent_numbers()
        titles = [store.patent(p).title or "" for p in patents]
        rng = random.Random(seed)
        rng.shuffle(figures)
        figures = figures[:limit]
        images = [store.path(f.image_path).read_bytes() for f in figures[:20] if f.image_path]
    images = [i for i in images if len(i) < max_upload]
    new, source = new_drawings(default_new_images() if new_paths is None else new_paths, patents, NEW_IMAGES, seed,
                               max_upload)
    if not new:
        new = [i for i in transformed(images) if len(i) < max_upload]
        source = f"{len(new)} of the collection's drawings turned a quarter turn and mirrored (no other drawings found)"
    words = sorted({w for t in titles for w in re.findall(r"[a-z]{4,}", t.lower())}) or ["drawing"]
    sample = images[0] if images else _png(64)
    bad = {
        # a little over the byte limit: the body is read, the upload refused (413), the connection kept
        "oversized": b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(max_upload + 1000 - 8),
        "truncated": sample[: max(16, len(sample) // 2)],
        "nonimage": b"%!PS-Adobe-3.0\n% not a drawing at all\n" * 20,
    }
    return {"figure_ids": [f.figure_id for f in figures], "images": images, "new": new, "new_source": source,
            "words": words, "bad": bad}


def _png(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def start_server(collection: Path, extra: list[str], token: str | None, log: list[str],
                 source: Path | None = None) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if source is not None:  # serve another checkout's figsearch (--server-source)
        env["PYTHONPATH"] = str(source)
    env.pop("FIGSEARCH_TOKEN", None)
    if token:
        env["FIGSEARCH_TOKEN"] = token
    process = subprocess.Popen(
        [sys.executable, "-m", "figsearch", "serve", "--collection", str(collection), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines = log
    url = None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        lines.append(line.rstrip())
        print(f"  server: {line.rstrip()}")
        match = re.search(r" at (http://[^\s?]+/)", line)
        url = url or (match.group(1) if match else None)
        if url and "Ctrl+C" in line:
            # keep reading the server's output (so that it never blocks on a full pipe), for the report
            threading.Thread(target=lambda: [lines.append(line.rstrip()) for line in process.stdout],
                             daemon=True).start()
            return process, url
        if time.monotonic() > deadline:
            break
    process.kill()
    raise SystemExit(f"figsearch serve exited ({process.wait()}) before it listened")


async def one_request(http: Connection, kind: str, rng: random.Random, queries: dict):
    if kind == "figure":
        return await http.get("/api/search", {"figure_id": rng.choice(queries["figure_ids"]), "k": "12"})
    if kind == "text":
        words = queries["words"]
        text = " ".join(rng.sample(words, min(2, len(words))))
        return await http.get("/api/search", {"text": text, "k": "12", "mode": "text"})
    data = rng.choice(queries["images"] if kind == "image" else queries["new"]) if kind in UPLOADS \
        else queries["bad"][kind]
    form = {"k": "12", "mode": "visual"}
    if kind in UPLOADS and queries.get("all_turns"):
        form["all_turns"] = "true"  # every orientation (by default the server searches the upright one alone)
    if kind in UPLOADS and not queries.get("same_uploads"):
        # a drawing the server has not seen: its own margins cut off (up to 2 % a side, about 160,000
        # different crops of each file), so that its cache of recent uploads never answers for it
        form["crop"] = ",".join(f"{v:.4f}" for v in (rng.uniform(0, 0.02), rng.uniform(0, 0.02),
                                                        rng.uniform(0.98, 1), rng.uniform(0.98, 1)))
    return await http.post_form("/api/search", form, "image", f"{kind}.png", data, "image/png")


def parse_server_timing(value: str | None) -> dict[str, float] | None:
    """``queue;dur=1.2, run;dur=80.0, cpu;dur=75.1, turns;desc=4`` (the server's pool call: waiting for a
    thread, running, its thread's CPU, ms; an upload's orientations searched with) as a dict; None when
    the answer has none."""
    if not value:
        return None
    out = {}
    for part in value.split(","):
        name, _, rest = part.strip().partition(";")
        match = re.search(r"(?:dur|desc)=([0-9.]+)", rest)
        if match:
            out[name] = float(match.group(1))
    return out or None


async def client(http: Connection, deadline: float, rng: random.Random, queries: dict, kinds: list[str],
                 results: list) -> None:
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.perf_counter() >= deadline:
            return
        kind = rng.choice(kinds)
        start = time.perf_counter()
        retry_after = None
        response = None
        try:
            response = await one_request(http, kind, rng, queries)
            status = response.status_code
            if status == 503:
                retry_after = response.headers.get("retry-after")
            ok = status == EXPECTED[kind] and (status != 200 or "hits" in response.json())
        except Exception as exc:  # a refused or dropped connection is an error, not a crash of the test
            ok, status = False, type(exc).__name__
        timing = parse_server_timing(response.headers.get("server-timing")) if ok else None
        results.append((kind, time.perf_counter() - start, ok, status, retry_after, time.perf_counter(), timing))
        if retry_after is not None:
            await asyncio.sleep(min(MAX_BACKOFF_S, float(retry_after) if retry_after.isdigit() else MAX_BACKOFF_S))


def probe_health(base: str, interval: float, seconds: float, stop, out) -> None:
    """In a process of its own: GET /api/health every ``interval`` s on one kept-alive connection."""
    import http.client

    parsed = urlparse(base)
    samples = []
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    end = time.monotonic() + seconds
    for _ in range(int(seconds / interval) + 10):
        if stop.is_set() or time.monotonic() > end:
            break
        start = time.perf_counter()
        connect_ms = None  # a new connection (the first, or after the server closed the last): its connect
        closed = False
        lag = None  # the event loop's largest lag lately, as the server reports it (Server-Timing lag)
        try:
            if connection.sock is None:
                connection.connect()
                connect_ms = (time.perf_counter() - start) * 1000
            connection.request("GET", "/api/health")
            response = connection.getresponse()
            response.read()
            status = response.status
            closed = (response.getheader("connection") or "").lower() == "close"
            timing = parse_server_timing(response.getheader("server-timing")) or {}
            if "lag" in timing:
                lag = (timing["lag"], timing.get("lag-busy"), timing.get("lag-runq"))
        except Exception as exc:  # noqa: BLE001 - a failure is a sample too
            status = type(exc).__name__
            connection.close()
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        # (when, ms, status, ms of it connecting or None on a kept-alive connection, closed by the server after,
        #  the server's largest event-loop lag of the last 1-2 s and its split, ms: (lag, busy, runq), or None)
        samples.append((time.time(), (time.perf_counter() - start) * 1000, status, connect_ms, closed, lag))
        time.sleep(max(0.0, interval - (time.perf_counter() - start)))
    connection.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put((samples, usage.ru_utime + usage.ru_stime))


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def connections_per_worker(pids: list[int], port: int) -> list[int]:
    """Established connections to ``port`` that each worker holds (from /proc: its socket fds
    matched with the kernel's TCP table), in the order of ``pids``."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                established.add(fields[9])
    return [len(socket_inodes(pid) & established) for pid in pids]


async def sample_connections(pids: list[int], port: int, deadline: float, every: float, out: list) -> None:
    """Connections per worker every ``every`` seconds until ``deadline`` (the kernel may hand all of
    the clients that connect at once to one worker)."""
    while time.perf_counter() < deadline - every / 2:
        await asyncio.sleep(every)
        out.append(connections_per_worker(pids, port))


async def phase(base: str, headers: dict, queries: dict, kinds: list[str], clients: int, duration: float,
                seed: int, pids: list[int] | None = None) -> tuple[list, float, list, list]:
    results: list = []
    # one kept-alive connection per client, as a browser tab or an API client keeps one
    connections = [Connection(base, headers, timeout=120) for _ in range(clients)]
    started = time.perf_counter()
    deadline = started + duration
    samples: list = []
    try:
        await asyncio.gather(*[
            client(connections[i], deadline, random.Random(seed + i), queries, kinds, results) for i in range(clients)
        ], *([sample_connections(pids, urlparse(base).port, deadline, 2.0, samples)] if pids and len(pids) > 1 else []))
    finally:
        for connection in connections:
            connection.close()
    # throughput counts what completed inside the window; requests still running at its end are
    # waited for (an error among them still counts) but not counted as throughput
    window = [r for r in results if r[5] <= deadline]
    return results, duration, window, samples


WARM_ROUNDS = 4


async def warm_up(base: str, headers: dict, queries: dict, connections: int) -> list[tuple[int, float]]:
    """Searches of each kind on several new connections at once, so that every worker loads its
    encoders before the clock runs (which worker takes a connection is the kernel's choice):
    rounds until the slowest search of a round is no longer much faster than the round before's
    (loading is done; what is left is the queueing of the warm-up's own concurrency), WARM_ROUNDS
    at most."""
    rounds = []
    rng = random.Random(0)
    for _ in range(WARM_ROUNDS):
        timings: list[tuple[int, float]] = []
        # a client per request: each opens its own connection, which any worker may accept
        async def one(kind):
            http = Connection(base, headers, timeout=300)
            try:
                start = time.perf_counter()
                for _ in range(10):  # a worker still loading its models may answer 503 + Retry-After: again
                    response = await one_request(http, kind, rng, queries)
                    if response.status_code != 503 or "retry-after" not in response.headers:
                        break
                    await asyncio.sleep(min(MAX_BACKOFF_S, float(response.headers["retry-after"] or 1)))
                timings.append((response.status_code, round(time.perf_counter() - start, 2)))
            finally:
                http.close()

        for kind in ("figure", "text", "image"):
            await asyncio.gather(*[one(kind) for _ in range(connections)])
        rounds.append(max(t for _, t in timings))
        if any(status != 200 for status, _ in timings):
            raise SystemExit(f"warm-up searches failed: {timings}")
        if len(rounds) >= 2 and rounds[-1] > 0.7 * rounds[-2]:
            break
    return rounds


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summarise(results: list, clients: int, elapsed: float, window: list) -> dict:
    answered = [r for r in results if r[2]]
    refused = [r for r in results if r[3] == 503 and r[4] is not None]
    errors = [r for r in results if not r[2] and not (r[3] == 503 and r[4] is not None)]
    latencies = [r[1] * 1000 for r in answered]
    summary = {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(results),
        "answered": len(answered),
        "refused_503_with_retry_after": len(refused),
        "errors": len(errors),
        "error_statuses": sorted({str(r[3]) for r in errors}),
        "answered_in_window": sum(1 for r in window if r[2]),
        "throughput_rps": round(sum(1 for r in window if r[2]) / elapsed, 2) if elapsed else 0.0,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "by_kind": {},
    }
    if elapsed:
        summary["clients_in_kind"] = {kind: round(sum(r[1] for r in results if r[0] == kind) / elapsed, 2)
                                      for kind in EXPECTED if any(r[0] == kind for r in results)}
    for kind in EXPECTED:
        own = [r[1] * 1000 for r in answered if r[0] == kind]
        if not any(r[0] == kind for r in results):
            continue
        summary["by_kind"][kind] = {
            "answered": len(own),
            "refused": sum(1 for r in refused if r[0] == kind),
            "errors": sum(1 for r in errors if r[0] == kind),
            "p50_ms": round(percentile(own, 50), 1),
            "p95_ms": round(percentile(own, 95), 1),
            "mean_ms": round(statistics.fmean(own), 1) if own else float("nan"),
        }
        timed = [(r[1] * 1000, r[6]) for r in answered if r[0] == kind and len(r) > 6 and r[6]
                 and {"queue", "run"} <= set(r[6])]
        if timed:
            # where the time went, from the server's Server-Timing: waiting for a pool thread, on the
            # thread but off the cores (run - cpu: other threads, the GIL), computing (cpu), and the
            # rest (event loop, HTTP, this client), each the mean over the kind's answers
            parts = {
                "queue": [t["queue"] for _, t in timed],
                "off_core": [max(0.0, t["run"] - t.get("cpu", t["run"])) for _, t in timed],
                "cpu": [t.get("cpu", float("nan")) for _, t in timed],
                "outside": [max(0.0, total - t["queue"] - t["run"]) for total, t in timed],
            }
            if all("runq" in t for _, t in timed):
                # off the cores, split: ready and waiting for a core (the kernel's run queue), and the rest
                # (waiting for the GIL, or blocked in a system call)
                parts["runq"] = [t["runq"] for _, t in timed]
                parts["gil_or_blocked"] = [max(0.0, t["run"] - t.get("cpu", t["run"]) - t["runq"]) for _, t in timed]
            summary["by_kind"][kind]["where_ms"] = {k: round(statistics.fmean(v), 1) for k, v in parts.items()}
            summary["by_kind"][kind]["queue_p50_ms"] = round(percentile(parts["queue"], 50), 1)
            phases = {name: [t[name] for _, t in timed if name in t]
                      for name in ("decode", "encode", "index", "explain", "answer")}
            if any(phases.values()):  # an upload's phases on its thread (wall ms, the server's Server-Timing)
                summary["by_kind"][kind]["phases_ms"] = {k: round(statistics.fmean(v), 1) for k, v in phases.items() if v}
            turns = [t["turns"] for _, t in timed if "turns" in t]
            if turns:  # how often one orientation was searched on this kind (the default since stop 21)
                summary["by_kind"][kind]["turns"] = {"one": sum(1 for t in turns if t == 1), "all": len(turns)}
    return summary


def _kinds_p50(summary: dict, kinds) -> float:
    values = [summary["by_kind"][k]["p50_ms"] for k in kinds if k in summary["by_kind"]]
    return max(values) if values else float("nan")


def server_processes(pid: int) -> list[int]:
    """The processes that serve: the workers under ``pid`` (uvicorn's spawned children), else ``pid``."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(c) for c in task.read_text().split()]
    workers = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "resource_tracker" not in cmdline:
            workers.append(child)
    return workers or [pid]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds (user + system) the threads of ``pids`` have used so far, by group: the event
    loop (each process's main thread), the server's named threads (``fs-upload``, ``fs-search``,
    ... as the server names them natively; threads a library starts inherit their creator's name)
    and whatever else, by its kernel name."""
    groups: dict[str, float] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue  # the thread ended meanwhile
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            group = "event loop" if task.name == str(pid) else name
            groups[group] = groups.get(group, 0.0) + seconds
    return groups


def threads_of(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/task").iterdir()))
    except OSError:
        return 0


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU used by the server's processes (by thread group) and by this client, over one phase."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.pids = server_processes(server_pid) if server_pid else []
        self.start_server = thread_cpu(self.pids)
        self.start_workers = [sum(thread_cpu([pid]).values()) for pid in self.pids]
        self.start_client = own_cpu()
        self.start_wall = time.perf_counter()

    def stop(self, answered: int) -> dict:
        wall = time.perf_counter() - self.start_wall
        client = own_cpu() - self.start_client
        out = {"client_cpu_s": round(client, 2), "client_cores": round(client / wall, 2)}
        if self.pids:
            end = thread_cpu(self.pids)
            groups = {k: round(end.get(k, 0.0) - self.start_server.get(k, 0.0), 2) for k in end}
            server = sum(groups.values())
            out.update({
                "server_cpu_s": round(server, 2),
                "server_cores": round(server / wall, 2),
                "server_cpu_ms_per_answer": round(1000 * server / max(answered, 1), 1),
                "server_cpu_by_thread": {k: v for k, v in sorted(groups.items(), key=lambda kv: -kv[1]) if v > 0},
                "server_threads": [threads_of(pid) for pid in self.pids],
                # uneven shares mean the kernel handed one worker more of the clients' connections
                "server_cpu_by_worker": [round(sum(thread_cpu([pid]).values()) - start, 2)
                                         for pid, start in zip(self.pids, self.start_workers)],
            })
        return out


def memory_of(pid: int, index_dir: Path) -> dict:
    """RSS and PSS of one process (kB), and how much of it is mapped from the index files."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", status, re.M))
    rollup = dict(re.findall(r"^(\w+):\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M))
    index_rss = index_pss = 0
    current = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            current = head[5] if len(head) > 5 else None
        elif current and current.startswith(str(index_dir)) and head[0] in ("Rss:", "Pss:"):
            if head[0] == "Rss:":
                index_rss += int(head[1])
            else:
                index_pss += int(head[1])
    return {
        "pid": pid,
        "rss_mb": round(int(fields.get("VmRSS", 0)) / 1024, 1),
        "rss_anon_mb": round(int(fields.get("RssAnon", 0)) / 1024, 1),
        "rss_file_mb": round(int(fields.get("RssFile", 0)) / 1024, 1),
        "pss_mb": round(int(rollup.get("Pss", 0)) / 1024, 1),
        "index_files_rss_mb": round(index_rss / 1024, 2),
        "index_files_pss_mb": round(index_pss / 1024, 2),
    }


def health_summary(samples: list, start: float, end: float) -> dict:
    inside = [s for s in samples if start <= s[0] <= end]
    latencies = [s[1] for s in inside if s[2] == 200]
    # where a probe waited: on a new connection (after the server closed the last one) its connect is
    # apart; the rest is the request on the kept-alive connection (the worker's event loop and handler)
    fresh = [s for s in inside if s[2] == 200 and len(s) > 3 and s[3] is not None]
    kept = [s[1] for s in inside if s[2] == 200 and len(s) > 3 and s[3] is None]
    return {
        "samples": len(inside),
        "failures": sum(1 for s in inside if s[2] != 200),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "over_50ms": sum(1 for v in latencies if v > 50),
        "closed_by_server": sum(1 for s in inside if len(s) > 4 and s[4]),
        "new_connections": len(fresh),
        "new_connection_max_ms": round(max((s[1] for s in fresh), default=float("nan")), 1),
        "connect_max_ms": round(max((s[3] for s in fresh), default=float("nan")), 1),
        "kept_alive_max_ms": round(max(kept, default=float("nan")), 1),
        "slowest": [(round(s[1], 1), "new connection" if s[3] is not None else "kept alive",
                     None if s[3] is None else round(s[3], 1), s[5] if len(s) > 5 else None)
                    for s in sorted(inside, key=lambda s: -s[1])[:5] if s[2] == 200 and len(s) > 3],
        "loop_lag_max_ms": max((s[5][0] for s in inside if len(s) > 5 and s[5] is not None), default=None),
    }


def load_average() -> float:
    """The machine's 1-minute load average now (other work on a shared machine shows here)."""
    return round(os.getloadavg()[0], 2)


def per_call_cpu(summary: dict) -> None:
    """CPU per call of each pool (ms), from the pools' named threads: what one upload, one search
    costs, whatever share of the machine the server got (robust on a shared machine, unlike times)."""
    cpu = summary.get("cpu") or {}
    groups = cpu.get("server_cpu_by_thread")
    if not groups:
        return
    kinds = summary["by_kind"]
    calls = {"fs-uploads": sum(kinds.get(k, {}).get("answered", 0) for k in (*UPLOADS, "truncated")),
             "fs-searches": sum(kinds.get(k, {}).get("answered", 0) for k in ("figure", "text")),
             "event loop": summary["answered"]}
    cpu["cpu_ms_per_call"] = {group: round(1000 * groups[group] / n, 1)
                              for group, n in calls.items() if group in groups and n}
    # the most answers per second all of the machine's cores could give at this CPU per answer
    per_answer = (cpu["server_cpu_s"] + cpu["client_cpu_s"]) / max(summary["answered"], 1)
    cpu["cpu_bound_ceiling_rps"] = round((os.cpu_count() or 1) / per_answer, 1) if per_answer else None


def print_phase(name: str, summary: dict) -> None:
    print(f"{name}: {summary['clients']} client(s), {summary['seconds']} s, load average {summary.get('load_average')}: "
          f"{summary['answered']} answered "
          f"({summary['answered_in_window']} inside the window), "
          f"{summary['refused_503_with_retry_after']} refused (503 + Retry-After), {summary['errors']} errors "
          f"{summary['error_statuses'] or ''}; throughput {summary['throughput_rps']}/s; "
          f"p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, max {summary['max_ms']} ms")
    cpu = summary.get("cpu") or {}
    if "server_cpu_s" in cpu:
        groups = ", ".join(f"{k} {v}" for k, v in cpu["server_cpu_by_thread"].items())
        print(f"    CPU: server {cpu['server_cpu_s']} s ({cpu['server_cores']} cores; "
              f"{cpu['server_cpu_ms_per_answer']} ms per answer; by thread: {groups}; by worker "
              f"{cpu['server_cpu_by_worker']} s; threads per worker {cpu['server_threads']}); this client {cpu['client_cpu_s']} s ({cpu['client_cores']} cores)")
        if cpu.get("cpu_ms_per_call"):
            print("    CPU per call (ms): " + ", ".join(
                f"{g} {v}" for g, v in cpu["cpu_ms_per_call"].items()) +
                  " (fs-uploads: per upload of either kind and truncated upload; fs-searches: per search by figure or words; "
                  f"event loop: per answer); at this CPU per answer, the machine's {os.cpu_count()} cores could "
                  f"answer at most {cpu.get('cpu_bound_ceiling_rps')}/s")
    elif cpu:
        print(f"    CPU: this client {cpu['client_cpu_s']} s ({cpu['client_cores']} cores)")
    per_call = (cpu.get("cpu_ms_per_call") or {}).get("fs-uploads")
    for kind, what in (("image", "a crop of a collection drawing"), ("new", "a drawing new to the collection")):
        upload = summary["by_kind"].get(kind)
        if upload and upload.get("where_ms"):
            where = upload["where_ms"]
            turns = upload.get("turns")
            fired = (f"; {turns['one']} of {turns['all']} searched in one orientation (upright)"
                     if turns else "")
            off = (f" ({where['runq']} ms waiting for a core, {where['gil_or_blocked']} ms for the GIL or in a system call)"
                   if "runq" in where else " (other threads, the GIL)")
            print(f"    where an upload of {what} goes ({kind}, mean of {upload['answered']}, from Server-Timing): "
                  f"{where['queue']} ms waiting for an upload thread, {where['off_core']} ms on its thread but off the "
                  f"cores{off}, {where['cpu']} ms computing, {where['outside']} ms outside the pool "
                  f"(event loop, HTTP, client); mean {upload['mean_ms']} ms, p50 {upload['p50_ms']} ms{fired}")
            if upload.get("phases_ms"):
                print(f"      its phases on the thread (mean wall ms, off-core time included): " + ", ".join(
                    f"{k} {v}" for k, v in upload["phases_ms"].items()))
        elif upload and per_call and upload["answered"]:
            print(f"    where an upload of {what} goes ({kind}): p50 {upload['p50_ms']} ms; the upload pool's CPU per call "
                  f"{per_call} ms (both kinds), the rest is waiting (the upload queue, the cores' other work)")
    if summary.get("clients_in_kind"):
        # Little's law: the clients of a closed loop are always inside some request; the kinds whose
        # answers take longest hold most of them (with the cores saturated, a faster kind hands its
        # clients to the others' queues)
        print("    where the clients were (mean number inside each kind of request): " + ", ".join(
            f"{k} {v}" for k, v in summary["clients_in_kind"].items()))
    spread = summary.get("connections_per_worker")
    if spread:
        print(f"    connections per worker (mean of {spread['samples']} samples, every 2 s): {spread['mean']}; "
              f"the busiest worker held {spread['busiest_share']:.0%} of them")
    for kind, row in summary["by_kind"].items():
        where = row.get("where_ms")
        runq = (f" [runq {where['runq']}, GIL or blocked {where['gil_or_blocked']}]" if where and "runq" in where
                else "")
        split = (f"  (mean: queue {where['queue']} + off-core {where['off_core']}{runq} + CPU {where['cpu']} + outside the "
                 f"pool {where['outside']} ms; queue p50 {row['queue_p50_ms']} ms)") if where else ""
        print(f"    {kind:9s} {row['answered']:6d} answered  {row['refused']:5d} refused  {row['errors']} errors  "
              f"p50 {row['p50_ms']} ms  p95 {row['p95_ms']} ms  mean {row['mean_ms']} ms{split}")


def _one(measured: tuple[list, float, list, list], clients: int) -> dict:
    results, duration, window, samples = measured
    summary = summarise(results, clients, duration, window)
    if samples:
        workers = len(samples[0])
        summary["connections_per_worker"] = {
            "samples": len(samples),
            "mean": [round(statistics.fmean(s[i] for s in samples), 1) for i in range(workers)],
            # the busiest worker's share of the connections, on average (1/workers is even)
            "busiest_share": round(statistics.fmean(max(s) / max(sum(s), 1) for s in samples), 2),
        }
    return summary


async def run(args, base: str, headers: dict, queries: dict, kinds: list[str]) -> dict:
    warm = await warm_up(base, headers, queries, max(4, 4 * (args.workers or 2)))
    print(f"  warm-up: slowest search of each round {warm} s")
    out: dict = {"warm_up_rounds_s": warm}
    if args.server_pid:
        out["worker_pids_at_start"] = server_processes(args.server_pid)
    context = multiprocessing.get_context("spawn")
    stop, samples = context.Event(), context.Queue()
    seconds = args.baseline_duration + args.duration + args.burst_duration + 120
    prober = context.Process(target=probe_health, args=(base, 0.1, seconds, stop, samples), daemon=True)
    prober.start()
    try:
        tb = time.time()
        meter = CpuMeter(args.server_pid)
        out["one_client"] = _one(await phase(base, headers, queries, kinds, 1, args.baseline_duration,
                                             args.seed - 1), 1)
        out["one_client"]["load_average"] = load_average()
        out["one_client"]["cpu"] = meter.stop(out["one_client"]["answered"])
        per_call_cpu(out["one_client"])
        print_phase("one client alone", out["one_client"])
        t0 = time.time()
        meter = CpuMeter(args.server_pid)
        loaded = await phase(base, headers, queries, kinds, args.clients, args.duration, args.seed, meter.pids)
        t1 = time.time()
        out["clients"] = _one(loaded, args.clients)
        out["clients"]["load_average"] = load_average()
        out["clients"]["cpu"] = meter.stop(out["clients"]["answered"])
        per_call_cpu(out["clients"])
        print_phase(f"{args.clients} clients", out["clients"])
        if args.burst_duration > 0:
            meter = CpuMeter(args.server_pid)
            burst = await phase(base, headers, queries, kinds, args.burst_clients, args.burst_duration,
                                args.seed + 1000, meter.pids)
            out["burst"] = _one(burst, args.burst_clients)
            out["burst"]["load_average"] = load_average()
            out["burst"]["cpu"] = meter.stop(out["burst"]["answered"])
            per_call_cpu(out["burst"])
            print_phase(f"{args.burst_clients} clients", out["burst"])
        t2 = time.time()
    finally:
        stop.set()
        health, out["health_probe_cpu_s"] = samples.get(timeout=60)
        prober.join(10)
    out["health_during_one_client"] = health_summary(health, tb, t0)
    out["health_during_clients"] = health_summary(health, t0, t1)
    if args.burst_duration > 0:
        out["health_during_burst"] = health_summary(health, t1, t2)
    print(f"  the health probe (a process of its own) used {out['health_probe_cpu_s']:.2f} CPU s in all")
    for key in ("health_during_one_client", "health_during_clients", "health_during_burst"):
        if key in out:
            h = out[key]
            print(f"/api/health {key[len('health_during_'):]}: {h['samples']} samples, {h['failures']} failures, "
                  f"p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms, max {h['max_ms']} ms, {h['over_50ms']} over 50 ms; "
                  f"{h['closed_by_server']} answers closed the connection, {h['new_connections']} probes on a new one "
                  f"(max {h['new_connection_max_ms']} ms, of it connecting max {h['connect_max_ms']} ms), "
                  f"on a kept-alive one max {h['kept_alive_max_ms']} ms; the servers' event-loop lag (Server-Timing) "
                  f"max {h['loop_lag_max_ms']} ms; slowest (ms, connection, connect ms, the answering worker's largest "
                  f"loop lag of the last 1-2 s split as (lag, its loop's own CPU, waiting for a core) ms): {h['slowest']}")
    return out


def throughput_split(alone: dict, loaded: dict) -> dict | None:
    """The loaded phase's throughput over one client's, as (cores used, server and client) x (answers per CPU
    second): what a closed loop of clients can gain is more cores; what it loses is CPU per answer grown with
    the concurrency (each kind's CPU per call is given, alone and loaded). None without the server's CPU."""
    a, b = alone.get("cpu") or {}, loaded.get("cpu") or {}
    if "server_cpu_s" not in a or "server_cpu_s" not in b or not alone["answered"] or not loaded["answered"]:
        return None
    used = lambda c: c["server_cpu_s"] + c["client_cpu_s"]  # noqa: E731
    cores, cores_loaded = used(a) / alone["seconds"], used(b) / loaded["seconds"]
    per, per_loaded = 1000 * used(a) / alone["answered"], 1000 * used(b) / loaded["answered"]
    calls_a, calls_b = a.get("cpu_ms_per_call") or {}, b.get("cpu_ms_per_call") or {}
    return {
        "cores": round(cores, 2), "cores_loaded": round(cores_loaded, 2), "cores_ratio": round(cores_loaded / cores, 2),
        "cpu_ms_per_answer": round(per, 1), "cpu_ms_per_answer_loaded": round(per_loaded, 1),
        "cpu_ratio": round(per / per_loaded, 2),
        "product": round(cores_loaded / cores * per / per_loaded, 2),
        "per_call_ms": {group: (calls_a[group], calls_b[group]) for group in calls_a if group in calls_b},
        "client_share": b["client_cpu_s"] / max(used(b), 1e-9),
    }


def verdicts(out: dict) -> list[tuple[str, bool, str]]:
    clients, alone = out["clients"], out["one_client"]
    ratio = clients["throughput_rps"] / max(alone["throughput_rps"], 1e-9)
    search_p50 = _kinds_p50(clients, SEARCHES)
    rows = [
        (f"{clients['clients']} clients: 0 errors (503s included)",
         clients["errors"] == 0 and clients["refused_503_with_retry_after"] == 0,
         f"{clients['errors']} errors, {clients['refused_503_with_retry_after']} refused"),
        ("searches by figure id / text p50 <= 100 ms", search_p50 <= TARGETS["search_p50_ms"], f"{search_p50} ms"),
        *[(f"uploads of {what} p50 <= 1 s", p50 <= TARGETS["upload_p50_ms"], f"{p50} ms")
          for kind, what in (("image", "crops of collection drawings"), ("new", "drawings new to the collection"))
          if kind in clients["by_kind"] for p50 in [clients["by_kind"][kind]["p50_ms"]]],
        ("throughput >= 1.8x one client", ratio >= TARGETS["throughput_ratio"], f"{ratio:.2f}x"),
        ("bad uploads get their 4xx", all(clients["by_kind"].get(k, {}).get("errors", 0) == 0
                                          for k in ("oversized", "truncated", "nonimage")), ""),
    ]
    h = out["health_during_clients"]
    rows.append((f"health <= 50 ms during {clients['clients']} clients",
                 h["failures"] == 0 and h["max_ms"] <= TARGETS["health_max_ms"], f"max {h['max_ms']} ms"))
    if "burst" in out:
        burst = out["burst"]
        rows.append((f"{burst['clients']} clients: 0 errors but 503 + Retry-After", burst["errors"] == 0,
                     f"{burst['errors']} errors {burst['error_statuses']}, "
                     f"{burst['refused_503_with_retry_after']} refused"))
        h = out["health_during_burst"]
        rows.append((f"health <= 50 ms during {burst['clients']} clients",
                     h["failures"] == 0 and h["max_ms"] <= TARGETS["health_max_ms"], f"max {h['max_ms']} ms"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", required=True, type=Path, help="collection to serve and take queries from")
    parser.add_argument("--url", help="a figsearch server already running on this machine (else one is started)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load with --clients")
    parser.add_argument("--burst-clients", type=int, default=100)
    parser.add_argument("--burst-duration", type=float, default=30.0, help="seconds with --burst-clients (0: skip)")
    parser.add_argument("--baseline-duration", type=float, default=10.0, help="seconds of the one-client baseline")
    parser.add_argument("--mix", default=DEFAULT_MIX,
                        help="relative weights of the request kinds: " + ", ".join(EXPECTED))
    parser.add_argument("--workers", type=int, help="serve --workers (a started server only)")
    parser.add_argument("--threads", type=int, help="serve --threads")
    parser.add_argument("--queue", type=int, help="serve --queue")
    parser.add_argument("--max-upload-mb", type=int, default=1, help="serve --max-upload-mb (the oversized upload "
                        "is a little over it)")
    parser.add_argument("--server-source", type=Path, help="serve with the figsearch package under this src/ "
                        "directory (e.g. an older commit's, from git archive) to compare it on the same machine")
    parser.add_argument("--token", action="store_true", help="serve with an access token; clients send it as a bearer")
    parser.add_argument("--same-uploads", action="store_true", help="send the drawings as they are, so the same "
                        "files come again (as the page's next page does) and the server's cache of recent uploads "
                        "answers; by default each upload is a crop the server has not seen")
    parser.add_argument("--all-turns", action="store_true", help="uploads ask for all four orientations "
                        "(all_turns); by default the server searches the upright one alone (stop 21; before, unless its "
                        "upright-first rule fired); a server without the option answers 422")
    parser.add_argument("--new-images", type=Path, nargs="*", help="drawings new to the collection to upload (files, "
                        "or folders searched for TIFF/PNG/JPEG; files of the collection's patents left out) [default: "
                        "../shared/data/us-design-grants; without it, the collection's drawings turned and mirrored]")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()

    mix = {k: int(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    unknown = set(mix) - set(EXPECTED)
    if unknown:
        raise SystemExit(f"unknown request kinds in --mix: {sorted(unknown)}; expected some of {list(EXPECTED)}")
    kinds = [k for k, weight in mix.items() for _ in range(weight)]
    queries = load_queries(args.collection, 500, args.seed, args.max_upload_mb * 1024 * 1024, args.new_images)
    queries["same_uploads"] = args.same_uploads
    queries["all_turns"] = args.all_turns
    if not queries["figure_ids"]:
        raise SystemExit(f"no drawings in {args.collection} to search with")
    if not queries["images"]:
        kinds = [k for k in kinds if k != "image"]
    if not queries["new"]:
        kinds = [k for k in kinds if k != "new"]
    token = secrets.token_urlsafe(32) if args.token else None
    process = None
    server_lines: list[str] = []
    if args.url:
        base = args.url if args.url.endswith("/") else args.url + "/"
    else:
        extra = ["--max-upload-mb", str(args.max_upload_mb)]
        for option in ("workers", "threads", "queue"):
            if getattr(args, option):
                extra += [f"--{option}", str(getattr(args, option))]
        process, base = start_server(args.collection, extra, token, server_lines, args.server_source)
    host = urlparse(base).hostname or ""
    if not is_loopback(host):
        if process is not None:
            process.terminate()
        raise SystemExit(f"refusing to load {host}: this script only targets a server on this machine (loopback)")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    print(f"load test against {base} (mix {args.mix}; {len(queries['figure_ids'])} figure ids, "
          f"{len(queries['images'])} images, new drawings: {queries['new_source']}; "
          f"{'sent as they are' if args.same_uploads else 'each upload a new crop'}"
          f"{', all_turns' if args.all_turns else ''}, "
          f"{len(queries['words'])} words; token: {'yes' if token else 'no'}; "
          f"load average {load_average()}; "
          f"{os.cpu_count()} CPUs on this machine, shared with whatever else runs on it)")
    memory = []
    try:
        args.server_pid = process.pid if process is not None else None
        out = asyncio.run(run(args, base, headers, queries, kinds))
        if process is not None:
            index_dir = (args.collection / "index").resolve()
            pids = server_processes(process.pid)
            memory = [memory_of(pid, index_dir) for pid in pids]
            replaced = sorted(set(out["worker_pids_at_start"]) - set(pids))
            out["workers_replaced_during_load"] = replaced
            print(f"worker processes: {out['worker_pids_at_start']} after the warm-up, {pids} at the end"
                  + (f" ({len(replaced)} died or were killed and replaced)" if replaced else " (none replaced)"))
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    out["server"] = [line for line in server_lines if "worker process" in line]
    # a worker that died or was killed, a traceback: what the server said beyond its start
    trouble = [line for line in server_lines if re.search(r"died|kill|Traceback|ERROR|Error|WARNING", line)]
    out["server_trouble"] = trouble[:50]
    if trouble:
        print(f"the server logged {len(trouble)} line(s) of trouble, the first ones:")
        for line in trouble[:10]:
            print(f"  server: {line}")
    out["memory_per_worker"] = memory
    for row in memory:
        print(f"worker {row['pid']}: RSS {row['rss_mb']} MB (anonymous {row['rss_anon_mb']}, file-backed "
              f"{row['rss_file_mb']}), PSS {row['pss_mb']} MB; mapped from the index files: RSS "
              f"{row['index_files_rss_mb']} MB, PSS {row['index_files_pss_mb']} MB")
    ratio = out["clients"]["throughput_rps"] / max(out["one_client"]["throughput_rps"], 1e-9)
    print(f"ratios against one client: throughput {ratio:.2f}x, p50 latency "
          f"{out['clients']['p50_ms'] / max(out['one_client']['p50_ms'], 1e-9):.1f}x")
    split = throughput_split(out["one_client"], out["clients"])
    if split:
        out["throughput_split"] = split
        print(f"where the throughput goes against one client: the cores used (server and this client) {split['cores']} "
              f"-> {split['cores_loaded']} ({split['cores_ratio']}x), CPU per answer {split['cpu_ms_per_answer']} -> "
              f"{split['cpu_ms_per_answer_loaded']} ms ({split['cpu_ratio']}x fewer answers per CPU second); their "
              f"product {split['product']}x; CPU per call alone -> loaded (ms): " + ", ".join(
                  f"{group} {a} -> {b}" for group, (a, b) in split["per_call_ms"].items()) +
              f"; this client's share of the cores when loaded {split['client_share']:.0%}")
    rows = verdicts(out)
    if process is not None:  # a server of our own: its workers' memory was read above
        rows.append(("resident memory of each worker reported", bool(memory),
                     ", ".join(f"{m['rss_mb']} MB" for m in memory) or "no worker found"))
    out["targets"] = [{"target": name, "met": met, "measured": measured} for name, met, measured in rows]
    print("targets:")
    for name, met, measured in rows:
        print(f"  [{'met' if met else 'MISSED'}] {name}: {measured}")
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if all(met for _, met, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
