"""What one uploaded drawing costs the search service, phase by phase, in each mode.

For ``--images`` drawings of a collection (their stored PNG files, as an upload sends them), one at
a time on an otherwise idle service:

- the phases on their own, as the service before issue 15's upload work ran them one after
  the other: decode, the visual encoding of the four orientations (one batch), reading the
  drawing's words (the default OCR engine); and the CPU of the four orientations turned and
  prepared one by one against the ``backbone`` encoder's ``encode_turns`` (the script stops if
  their vectors differ);
- a whole search (``SearchService.search``) per mode (visual, text with the typed words
  "ornamental design" beside the drawing's own, auto), each drawing first
  sent for the first time (nothing cached) and then sent again (the page's next page or another
  mode), with the service's own per-phase timings (``SearchResult.timings``);
- with ``--baseline-src DIR`` (e.g. main's ``src/`` from ``git archive``), the same script runs
  again under that checkout's figsearch, in a process of its own right after this one, and the
  ratios of the whole-search medians are printed (same machine, same run);
- the CPU time of each whole search (this process's, so the words read in a thread count too);
  ``--compute-threads N`` runs the service as the server does (``limit_threads(N)``: N intra-op
  threads per encoder call), and ``--compare-threads`` runs the script twice more, in processes of
  their own, with the libraries' default threads and with one, and prints both (same run).

    python benchmarks/upload_phases.py --collection /tmp/coll --images 12
    python benchmarks/upload_phases.py --collection /tmp/coll --baseline-src /tmp/main-src
    python benchmarks/upload_phases.py --collection /tmp/coll --compare-threads

The drawings are the collection's own. The service searches every upload upright alone by default
(``UPRIGHT_CONFIDENT``, stop 21; ``turns`` 1 in the phases; before, its upright-first rule did so for
these near-copies only); ``--all-turns`` sends every upload with ``all_turns`` (every orientation). ``--new-images PATH...`` uploads drawing
files new to the collection instead (files, or folders searched for TIFF/PNG/JPEG, front pages
``-D00000`` left out, the first ``--images`` of them in name order), e.g. sheets of design grants the
collection does not hold, as an examiner's upload:

    python benchmarks/upload_phases.py --collection /tmp/coll --new-images ../shared/data/us-design-grants/USD09[2-9]*

Medians in milliseconds. Timings on a machine shared with other work are pessimistic: compare the
ratios of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MODES = ("visual", "text", "auto")
#: a text-mode upload needs words; design drawings seldom hold any, so typed ones join them
TYPED = {"text": "ornamental design"}


def median(values) -> float:
    values = list(values)
    return round(statistics.median(values), 1) if values else float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def new_files(paths: list[Path], count: int) -> list[bytes]:
    """The first ``count`` drawing files under ``paths`` (front pages left out), in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".tif", ".tiff", ".png", ".jpg", ".jpeg"))
        else:
            files.append(path)
    return [f.read_bytes() for f in files if "-D00000" not in f.name.upper()][:count]


def measure(collection: Path, count: int, compute_threads: int | None = None, all_turns: bool = False,
            new_images: list[Path] | None = None) -> dict:
    from figsearch.records import FigureRole
    from figsearch.search.inputs import load_query_image
    from figsearch.search.query import Query
    from figsearch.search.service import QUERY_ROTATIONS, SearchService
    from figsearch.store import Collection

    with Collection.open(collection) as store:
        figures = [f for f in store.figures(roles=(FigureRole.DRAWING,)) if f.image_path]
        files = [store.path(f.image_path).read_bytes() for f in figures[:count]]
    if new_images:
        files = new_files(new_images, count)
        if not files:
            raise SystemExit(f"no drawing files under {', '.join(map(str, new_images))}")
    service = SearchService.open(collection)
    if compute_threads:
        service.limit_threads(compute_threads)
    out: dict = {"images": len(files), "phases_alone": {}, "search_first": {}, "search_again": {}, "service_phases": {},
                 "cpu_first": {}, "compute_threads": compute_threads}
    try:
        # warm: models loaded, first-call costs paid, outside the clock
        service.search(Query(image=files[-1], mode="auto", k=12))
        visual = service._encoder("visual")
        reader = service.reader
        alone: dict[str, list[float]] = {"decode": [], "visual": [], "words": []}
        turns = getattr(visual, "encode_turns", None)
        general_cpu, turns_cpu, turns_ms = [], [], []
        split: dict[str, list[float]] = {"decode": [], "prepare": [], "onnx": []}
        for data in files:
            t = time.perf_counter()
            image = load_query_image(data)
            alone["decode"].append((time.perf_counter() - t) * 1000)
            t, c = time.perf_counter(), time.thread_time()
            general = visual.encode([image.rotate(a, expand=True, fillcolor=255) if a else image for a in QUERY_ROTATIONS])
            alone["visual"].append((time.perf_counter() - t) * 1000)
            general_cpu.append((time.thread_time() - c) * 1000)
            if callable(turns):  # the backbone encoder's turns from one pass (the same vectors, checked here)
                t, c = time.perf_counter(), time.thread_time()
                turned = turns(image, QUERY_ROTATIONS)
                turns_ms.append((time.perf_counter() - t) * 1000)
                turns_cpu.append((time.thread_time() - c) * 1000)
                if not np.array_equal(turned, general):
                    raise SystemExit("encode_turns gave other vectors than the turned drawings' encode")
                # encode_turns' two parts apart: preparing the four turns (pure Python/Pillow/NumPy) and
                # onnxruntime's run of them, CPU of this thread
                from figsearch.embed.encoders.backbone import prepare_turns
                c = time.thread_time()
                prepared = prepare_turns(image, QUERY_ROTATIONS, visual.image_size)
                split["prepare"].append((time.thread_time() - c) * 1000)
                c = time.thread_time()
                visual.encode_prepared(prepared)
                split["onnx"].append((time.thread_time() - c) * 1000)
                c = time.thread_time()
                load_query_image(data)
                split["decode"].append((time.thread_time() - c) * 1000)
            t = time.perf_counter()
            reader.read(image)
            alone["words"].append((time.perf_counter() - t) * 1000)
        out["phases_alone"] = {k: median(v) for k, v in alone.items()}
        out["phases_alone"]["sum"] = round(sum(out["phases_alone"].values()), 1)
        # the four orientations: turned and prepared one by one (general) against encode_turns, CPU of this thread
        out["orientations_cpu_ms"] = {"general": median(general_cpu)}
        if turns_cpu:
            out["orientations_cpu_ms"].update({"encode_turns": median(turns_cpu), "encode_turns_wall": median(turns_ms)})
            out["upload_cpu_ms"] = {k: median(v) for k, v in split.items()}
        for mode in MODES:
            cache = getattr(service, "_query_cache", None)
            if cache is not None:
                cache._items.clear()  # every mode starts with nothing cached
            first, again, phases, cpu = [], [], {}, []
            for data in files:
                for store in (first, again):
                    t, c = time.perf_counter(), cpu_seconds()
                    # all_turns only when asked: a baseline checkout's Query may not have it
                    extra = {"all_turns": True} if all_turns else {}
                    result = service.search(Query(image=data, mode=mode, k=12, text=TYPED.get(mode), **extra))
                    store.append((time.perf_counter() - t) * 1000)
                    if store is first:
                        cpu.append((cpu_seconds() - c) * 1000)
                    if store is first:
                        for key, value in getattr(result, "timings", {}).items():
                            phases.setdefault(key, []).append(value)
            out["search_first"][mode] = median(first)
            out["search_again"][mode] = median(again)
            out["cpu_first"][mode] = median(cpu)
            out["service_phases"][mode] = {k: median(v) for k, v in phases.items()}
    finally:
        service.close()
    return out


def report(label: str, out: dict) -> None:
    print(f"{label}: {out['images']} drawings")
    print(f"  phases alone, one after the other (ms): {out['phases_alone']}")
    if out.get("orientations_cpu_ms"):
        cpu = out["orientations_cpu_ms"]
        ratio = f" ({cpu['general'] / max(cpu['encode_turns'], 1e-9):.2f}x less)" if "encode_turns" in cpu else ""
        print(f"  four orientations encoded, CPU ms (median): turned one by one {cpu['general']}, "
              f"encode_turns {cpu.get('encode_turns', 'not in this version')}{ratio}; the same vectors")
    if out.get("upload_cpu_ms"):
        cpu = out["upload_cpu_ms"]
        print(f"  an upload's CPU by part, ms (median): decoding the file {cpu['decode']}, preparing the four turns "
              f"{cpu['prepare']}, onnxruntime's run of them {cpu['onnx']}")
    for mode in MODES:
        phases = out["service_phases"].get(mode) or "(no per-phase timings in this version)"
        print(f"  {mode:6s} whole search: first {out['search_first'][mode]} ms (CPU "
              f"{out.get('cpu_first', {}).get(mode, 'not measured')} ms), sent again "
              f"{out['search_again'][mode]} ms; phases {phases}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", required=True, type=Path)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src/ to run the same measures with")
    parser.add_argument("--compute-threads", type=int, help="threads per encoder call, as the server sets them "
                        "(SearchService.limit_threads); default: the libraries' own")
    parser.add_argument("--compare-threads", action="store_true", help="also run with the libraries' default threads "
                        "and with one thread per call, each in a process of its own, and compare their CPU")
    parser.add_argument("--all-turns", action="store_true", help="every upload in all of its orientations "
                        "(Query.all_turns), not upright alone when it matches a figure of the collection")
    parser.add_argument("--new-images", type=Path, nargs="*", help="upload these drawing files (or the files in "
                        "these folders) new to the collection instead of the collection's own drawings")
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = measure(args.collection, args.images, args.compute_threads, args.all_turns, args.new_images)
    new = ["--new-images", *map(str, args.new_images)] if args.new_images else []
    if args.json_only:
        print(json.dumps(out))
        return 0
    report("this checkout" + (f", {args.compute_threads} thread(s) per call" if args.compute_threads else ""), out)
    if args.compare_threads:
        runs = {}
        for threads in (0, 1):
            command = [sys.executable, __file__, "--collection", str(args.collection), "--images", str(args.images),
                       "--json-only"] + (["--compute-threads", str(threads)] if threads else []) \
                + (["--all-turns"] if args.all_turns else []) + new
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[threads] = json.loads(done.stdout.strip().splitlines()[-1])
            report("default threads" if not threads else "one thread per call", runs[threads])
        for mode in MODES:
            default, one = runs[0]["cpu_first"][mode], runs[1]["cpu_first"][mode]
            print(f"  {mode:6s} CPU per first upload: default threads {default} ms, one thread {one} ms "
                  f"({default / max(one, 1e-9):.2f}x); time {runs[0]['search_first'][mode]} -> "
                  f"{runs[1]['search_first'][mode]} ms")
    if args.baseline_src:
        env = dict(os.environ, PYTHONPATH=str(args.baseline_src.resolve()))
        done = subprocess.run([sys.executable, __file__, "--collection", str(args.collection), "--images",
                               str(args.images), "--json-only", *new], env=env, capture_output=True, text=True, check=True)
        base = json.loads(done.stdout.strip().splitlines()[-1])
        report(f"baseline ({args.baseline_src})", base)
        for mode in MODES:
            print(f"  {mode:6s} whole search, first upload: {base['search_first'][mode]} -> {out['search_first'][mode]} ms "
                  f"({base['search_first'][mode] / max(out['search_first'][mode], 1e-9):.2f}x faster); sent again: "
                  f"{base['search_again'][mode]} -> {out['search_again'][mode]} ms "
                  f"({base['search_again'][mode] / max(out['search_again'][mode], 1e-9):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
