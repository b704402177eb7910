"""The offline ``lines`` encoder on real design-grant sheets (same-patent retrieval)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "visual_map.py"


def _bench():
    spec = importlib.util.spec_from_file_location("visual_map", _BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lines_beats_plain_hog_by_a_wide_margin(shared_data, tmp_path):
    bench = _bench()
    folder = tmp_path / "grants"
    folder.mkdir()
    # twelve patents with 3 to 9 sheets each: small enough for a test, large enough to mean something
    chosen = [p for p in sorted((shared_data / "us-design-grants").iterdir()) if p.is_dir()
              and 3 <= len([s for s in p.glob("*.TIF") if "-D00000" not in s.name]) <= 9][:12]
    for patent in chosen:
        (folder / patent.name).symlink_to(patent)
    images, patents = bench.load_sheets(folder, 1600)
    from figsearch.embed.catalog import create_visual

    lines, _ = bench.mean_ap(create_visual("lines").encode(images), patents)
    hog, _ = bench.mean_ap(create_visual("hog").encode(images), patents)
    assert lines >= 0.55 and lines >= hog + 0.15, (lines, hog)
