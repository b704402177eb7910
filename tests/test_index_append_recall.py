"""Appends to an IVF index re-calibrate nprobe once the index has grown enough (issue 16: appends keep recall)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from figsearch.index import modality  # noqa: E402
from figsearch.index.modality import ModalityIndex, append, build  # noqa: E402
from figsearch.index.plan import IndexPlan  # noqa: E402


def _vectors(n: int, seed: int, dim: int = 32, centres: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middles = np.random.default_rng(seed * 7 + 1).standard_normal((centres, dim))
    x = middles[rng.integers(0, centres, n)] + 0.4 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _ids(start: int, stop: int) -> list[str]:
    return [f"P{i:07d}-f1" for i in range(start, stop)]


@pytest.fixture()
def built(tmp_path):
    data = _vectors(4000, seed=1)
    plan = IndexPlan("IVF64,Flat", rerank=True, auto=False, nprobe=4, train_size=4000)
    entry = build(tmp_path, "visual", key="k", identity={}, dim=32, plan=plan,
                  chunks=[(_ids(0, 4000), data, 4000)], generation=1)
    return tmp_path, entry, data


def test_a_small_append_keeps_the_calibration(built):
    directory, entry, _ = built
    extra = _vectors(200, seed=2)  # 5 %: below the threshold
    updated = append(directory, entry, _ids(4000, 4200), extra, 4200)
    assert updated["calibrated_count"] == 4000
    assert updated["nprobe"] == entry["nprobe"]


def test_growth_past_the_threshold_recalibrates_on_the_new_vectors(built, monkeypatch):
    directory, entry, _ = built
    seen = {}
    real = modality.calibrate_nprobe

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(modality, "calibrate_nprobe", spy)
    extra = _vectors(1000, seed=3, centres=80)  # 25 % more, partly of other clusters
    updated = append(directory, entry, _ids(4000, 5000), extra, 5000)
    assert updated is not None
    assert updated["calibrated_count"] == 5000
    assert seen["newest"] == 1000
    assert 0.0 < updated["calibrated_recall"] <= 1.0
    index = ModalityIndex.open(directory, "visual", updated)
    assert index.count == 5000
    # the index still finds an appended vector first
    assert index.search(extra[17], 1)[0][0] == "P0004017-f1"


def test_an_append_that_no_nprobe_can_serve_asks_for_a_rebuild(built, monkeypatch):
    directory, entry, _ = built
    monkeypatch.setattr(modality, "calibrate_nprobe", lambda *a, **k: (64, 0.5))
    assert append(directory, entry, _ids(4000, 5000), _vectors(1000, seed=4), 5000) is None
