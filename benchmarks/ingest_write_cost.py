"""What ingest's decoding and storing of the drawings costs: this tree against another tree (``--baseline``),
in the same run.

    python benchmarks/ingest_write_cost.py ../shared/data/us-design-grants --baseline /tmp/pre [--rounds 3]

Each configuration runs ``figsearch ingest PATHS -j 1 --skip-ocr`` into a fresh collection in its own
process, the configurations in a rotated order each round, so that a machine whose load changes favours
none. Printed per run: the CPU seconds of the process and its children (user and system, getrusage) per
stored sheet, the wall time, the bytes under ``images/`` and ``thumbs/`` and how many drawings are 1-bit
PNGs; with the load average before and after. Then whether every configuration stored the same pixels
(a 1-bit file read as its "L" pixels, as ``imaging.load_stored`` reads it). Collections are built under
a temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _children_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def ingest(tree: Path, env_extra: dict, paths: list[Path], collection: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **env_extra)
    command = [sys.executable, "-m", "figsearch", "ingest", *map(str, paths), "-c", str(collection), "-j", "1",
               "--json", "--quiet", "--skip-ocr"]
    load = os.getloadavg()[0]
    (user, system), wall = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"ingest failed ({tree}, {env_extra}):\n{done.stderr[-2000:]}")
    user2, system2 = _children_cpu()
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"user": user2 - user, "system": system2 - system, "wall": time.perf_counter() - wall,
            "sheets": summary["figures"], "load": (load, os.getloadavg()[0])}


def stored(collection: Path) -> tuple[dict, dict]:
    """({relative path: digest of the decoded "L" pixels}, sizes) of the stored PNGs."""
    from PIL import Image

    pixels, sizes = {}, {"images": 0, "thumbs": 0, "1-bit": 0}
    for folder in ("images", "thumbs"):
        for path in sorted((collection / folder).glob("*/*.png")):
            sizes[folder] += path.stat().st_size
            with Image.open(path) as image:
                image.load()
                sizes["1-bit"] += folder == "images" and image.mode == "1"
                grey = image.convert("L") if image.mode == "1" else image
                key = str(path.relative_to(collection))
                pixels[key] = hashlib.sha256(f"{grey.mode} {grey.size}".encode() + grey.tobytes()).hexdigest()
    return pixels, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--baseline", type=Path, required=True, help="another tree (its src/ is used)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configs = [("baseline tree", args.baseline, {}), ("this tree", HERE, {})]
    scratch = Path(tempfile.mkdtemp(prefix="figsearch-ingest-write-"))
    results: dict[str, list[dict]] = {name: [] for name, _, _ in configs}
    kept: dict[str, Path] = {}
    try:
        for round_ in range(args.rounds):
            order = configs[round_ % len(configs):] + configs[:round_ % len(configs)]
            for name, tree, env_extra in order:
                collection = scratch / f"{round_}-{len(results[name])}-{name.replace(' ', '_').replace(',', '')}"
                run = ingest(tree, env_extra, args.paths, collection)
                results[name].append(run)
                cpu = run["user"] + run["system"]
                print(f"round {round_ + 1}  {name:28} {cpu / run['sheets'] * 1000:6.2f} CPU ms per sheet "
                      f"(system {run['system'] / run['sheets'] * 1000:5.2f}), wall {run['wall']:5.1f} s, "
                      f"{run['sheets']} sheets, load {run['load'][0]:.1f} -> {run['load'][1]:.1f}", flush=True)
                if name in kept:
                    shutil.rmtree(collection, ignore_errors=True)
                else:
                    kept[name] = collection
        print()
        reference = None
        for name, _, _ in configs:
            runs = results[name]
            cpu = statistics.median((r["user"] + r["system"]) / r["sheets"] for r in runs) * 1000
            pixels, sizes = stored(kept[name])
            same = "" if reference is None else f", the same pixels as the {configs[0][0]}: {pixels == reference}"
            reference = pixels if reference is None else reference
            print(f"{name:28} median {cpu:6.2f} CPU ms per sheet; images {sizes['images'] / 1e6:.1f} MB "
                  f"({sizes['1-bit']} of {len([k for k in pixels if k.startswith('images')])} 1-bit), "
                  f"thumbs {sizes['thumbs'] / 1e6:.1f} MB{same}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
