"""benchmarks/build_speed.py's sampling of a process tree: the CPU left unasked for, and the scheduler's counts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

if not Path("/proc/self/task").exists():
    pytest.skip("samples /proc (Linux)", allow_module_level=True)

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "build_speed.py"
_spec = importlib.util.spec_from_file_location("build_speed", _PATH)
build_speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_speed)


def test_short_counts_the_cpus_beyond_the_runnable_threads_between_two_moments():
    sampler = build_speed.TreeCPU(0)
    sampler.runnable = [(0.0, 0), (1.0, 1), (2.0, 2), (3.0, 3), (4.0, 0)]
    assert sampler.short(2, 0.0, 4.0) == pytest.approx(2 * 1.0 + 1 * 1.0)  # 2, 1, 0, 0 CPUs unasked for
    assert sampler.short(2, 0.5, 1.5) == pytest.approx(2 * 0.5 + 1 * 0.5)
    assert sampler.short(4, 3.0, 4.0) == pytest.approx(1.0)
    assert sampler.short(2, 5.0, 6.0) == 0.0


def test_a_sampled_tree_shows_its_cpu_its_runnable_threads_and_its_switches():
    # a child that spins for a while, then sleeps in short naps (voluntary switches)
    code = ("import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
            "for _ in range(40): time.sleep(0.01)\n")
    child = subprocess.Popen([sys.executable, "-c", code])
    sampler = build_speed.TreeCPU(child.pid, interval=0.05)
    sampler.SCHED_EVERY = 1  # the scheduler's counts at every sample: the child ends soon after its naps
    sampler.start()
    child.wait()
    time.sleep(0.1)
    sampler.halt.set()
    sampler.join()
    assert sampler.by_kind()["build process"] >= 0.4
    assert max(running for _, running in sampler.runnable) >= 1  # seen spinning
    migrations, voluntary, involuntary = sampler.switches_by_kind()["build process"]
    assert voluntary >= 20 and migrations >= 0 and involuntary >= 0
    start, end = sampler.runnable[0][0], sampler.runnable[-1][0]
    assert 0.0 < sampler.short(1, start, end) < end - start  # idle part of the time, busy the rest


def test_each_env_option_is_one_more_build_with_its_variables():
    builds = build_speed.env_builds(["FIGSEARCH_A=1", "FIGSEARCH_B=batch,FIGSEARCH_C=x=y"])
    assert builds == {"overlapped (FIGSEARCH_A=1)": {"FIGSEARCH_A": "1"},
                      "overlapped (FIGSEARCH_B=batch FIGSEARCH_C=x=y)": {"FIGSEARCH_B": "batch", "FIGSEARCH_C": "x=y"}}
    assert build_speed.env_builds([]) == {}
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        build_speed.env_builds(["FIGSEARCH_A"])
