"""benchmarks/ray_build_benchmark.py's cores used per build and the speed-up that the cores allow a 2-worker build."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "ray_build_benchmark.py"
_spec = importlib.util.spec_from_file_location("ray_build_benchmark", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _build(seconds: float, before: float, **cpu: float) -> dict:
    tree = {"others": 9.0, "stolen": 0.5, "seconds": seconds + 3.0, **cpu}  # others, stolen: not the build's
    return {"seconds": seconds, "driver_cpu_before_clock": before, "tree_cpu": tree}


def test_cores_used_counts_every_process_of_the_build_after_its_clock_started():
    build = _build(40.0, 2.0, driver=6.0, workers=50.0, ray=1.0)
    assert bench.cores_used(build) == pytest.approx((55.0, 40.0, 55.0 / 40.0))
    # a local build's worker processes and its other children count too
    local = _build(20.0, 1.0, driver=11.0, workers=20.0, **{"other children": 2.0})
    assert bench.cores_used(local) == pytest.approx((32.0, 20.0, 1.6))
    assert bench.cores_used({"seconds": 10.0}) is None  # a build without the tree's CPU


def test_a_1_worker_build_that_keeps_more_than_a_core_busy_leaves_less_than_2x_to_2_workers():
    one = (55.0, 40.0, 1.375)  # CPU s, wall s, cores used
    same, own = bench.speedup_bounds(one, (60.0, 31.0, 60.0 / 31.0), cores=2)
    assert same == pytest.approx(2 / 1.375)  # 1.45x: the 2-worker build doing the same CPU on 2 full cores
    assert own == pytest.approx(40.0 / 30.0)  # its own 60 CPU s take at least 30 s on 2 cores
    assert bench.speedup_bounds((40.0, 40.0, 1.0), (40.0, 20.0, 2.0), cores=2) == pytest.approx((2.0, 2.0))


def test_the_summary_prints_each_modes_cores_and_the_bound_beside_the_measured_ratio(capsys):
    runs = {"ray1": [_build(40.0, 2.0, driver=6.0, workers=50.0, ray=1.0)] * 3,
            "ray2": [_build(31.0, 2.0, driver=6.0, workers=54.0, ray=2.0)] * 3,
            "overlap2": [_build(25.0, 2.0, driver=10.0, workers=40.0)] * 3,
            "raycore1": [_build(55.0, 2.0, driver=6.0, workers=50.0, ray=1.0)] * 3}  # one core: 1.0 used
    bench.cores_table(runs, 2)
    out = capsys.readouterr().out
    assert "ray1: CPU 55.0 s, wall 40.0 s, cores used 1.38" in out
    assert "ray2: CPU 60.0 s, wall 31.0 s, cores used 1.94" in out
    assert "overlap2: CPU 48.0 s, wall 25.0 s, cores used 1.92" in out
    assert "ray2 vs ray1 on 2 cores: at most 1.45x with ray1's CPU" in out
    assert "at most 1.33x with ray2's own CPU" in out and "measured 1.29x" in out
    assert "ray2 vs raycore1 on 2 cores: at most 2.00x with raycore1's CPU" in out and "measured 1.77x" in out
    assert "vs local1" not in out  # no local 1-process build in these runs
