"""CPU seconds per sheet of the default OCR engine on the truth set: this tree against another
source tree (e.g. main's), alternating, in one run, so that the load of a shared machine hits both.

Each round runs ``ocr_benchmark.py --only truth`` (or ``--part``) once with each tree's ``src`` on
PYTHONPATH (the benchmark script and truth file are this tree's for both), and prints the CPU
s/sheet of each run, the means and their ratio, with ``uptime`` before and after.

    OMP_THREAD_LIMIT=1 python benchmarks/ocr_speed_compare.py --baseline /work/main --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one_run(src: Path, part: str, data: str | None) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    command = [sys.executable, str(HERE / "ocr_benchmark.py"), "--only", part]
    if data:
        command += ["--data", data]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    # the part's JSON follows its "-- " heading; its last "cpu_s_per_sheet" is the part's own
    section = out.split("\n-- ", 1)[1] if "\n-- " in out else out
    found = re.findall(r'"cpu_s_per_sheet": ([0-9.]+)', section)
    if not found:
        raise RuntimeError(f"no cpu_s_per_sheet in the output of {command}:\n{out[-2000:]}")
    return float(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the other tree (its src/ is used)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--part", default="truth", help="the ocr_benchmark.py part timed (truth, dev1 … dev6, holdout7, design or build)")
    parser.add_argument("--data", default=None, help="passed on to ocr_benchmark.py")
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve() / "src", "this": HERE.parent / "src"}
    print("uptime before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for i in range(args.rounds):
        for name, src in trees.items():
            runs[name].append(one_run(src, args.part, args.data))
            print(f"round {i + 1} {name:8s} {runs[name][-1]:.3f} CPU s/sheet", flush=True)
    print("uptime after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    mean = {name: sum(v) / len(v) for name, v in runs.items()}
    print(json.dumps({"part": args.part, "cpu_s_per_sheet": {k: round(v, 3) for k, v in mean.items()},
                      "ratio_this_to_baseline": round(mean["this"] / mean["baseline"], 3), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
