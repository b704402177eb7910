"""Appends to an IVF index re-calibrate nprobe once the index has grown enough (issue 16: appends keep recall)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from figsearch.index import calibrate, modality  # noqa: E402
from figsearch.index.calibrate import exact_neighbours  # noqa: E402
from figsearch.index.modality import ModalityIndex, Refused, append, build  # noqa: E402
from figsearch.index.plan import IndexPlan  # noqa: E402
from figsearch.index.sync import append_or_rebuild  # noqa: E402


def _vectors(n: int, seed: int, dim: int = 32, centres: int = 40, kinds: int | None = None) -> np.ndarray:
    """``kinds``: the seed of the cluster centres (default: one per ``seed``)."""
    rng = np.random.default_rng(seed)
    middles = np.random.default_rng(seed * 7 + 1 if kinds is None else kinds).standard_normal((centres, dim))
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
    real = modality.calibration_set

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(modality, "calibration_set", spy)
    extra = _vectors(1000, seed=3, centres=80)  # 25 % more, partly of other clusters
    updated = append(directory, entry, _ids(4000, 5000), extra, 5000)
    assert isinstance(updated, dict)
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
    refused = append(directory, entry, _ids(4000, 5000), _vectors(1000, seed=4), 5000)
    assert isinstance(refused, Refused) and refused.retrain
    assert "recall@50 0.500 at nprobe 64" in refused.reason


def test_an_id_too_long_is_refused_with_its_own_reason(built):
    directory, entry, _ = built
    refused = append(directory, entry, ["P" + "9" * 80], _vectors(1, seed=5), 4001)
    assert isinstance(refused, Refused) and not refused.retrain
    assert "do not fit the id file" in refused.reason


def test_the_recalibration_stops_at_the_nprobe_that_would_ask_for_a_retrain(built, monkeypatch):
    """Probing more than RETRAIN_NPROBE_FACTOR × the build's lists is refused anyway: the ladder is not
    climbed past it (before stop 26 it went up to the cap, half of the lists here, only to refuse)."""
    directory, entry, _ = built
    probed = []
    real = calibrate.set_nprobe
    monkeypatch.setattr(calibrate, "set_nprobe", lambda faiss, index, nprobe: (probed.append(nprobe),
                                                                               real(faiss, index, nprobe)))
    entry = dict(entry, built_nprobe=2)  # a build that needed 2 lists: the re-calibration may try up to 8
    extra = _vectors(1000, seed=6, centres=80)  # 25 % more, many of kinds the lists were not trained on
    result = append(directory, entry, _ids(4000, 5000), extra, 5000)
    assert probed and max(probed) <= modality.RETRAIN_NPROBE_FACTOR * 2
    if isinstance(result, Refused):
        assert result.retrain and "the build needed nprobe 2" in result.reason
    else:
        assert result["nprobe"] <= 8


def test_a_refused_append_rebuilds_with_lists_that_serve_the_new_kinds(built, monkeypatch):
    """What figsearch index does after a refused append (figsearch.index.sync.append_or_rebuild): a new
    generation built from every vector, its lists retrained and calibrated, so queries of the new
    kinds find their neighbours."""
    directory, entry, data = built
    extra = _vectors(2000, seed=8, kinds=99)  # 50 % more, all of kinds the lists were never trained on
    real = modality.calibrate_nprobe
    monkeypatch.setattr(modality, "calibrate_nprobe", lambda *a, **k: (64, 0.5))  # the old lists refuse
    drawn = []
    real_set = modality.calibration_set
    monkeypatch.setattr(modality, "calibration_set", lambda *a, **k: (drawn.append(k), real_set(*a, **k))[1])
    everything = np.concatenate([data, extra])
    new_entry, action, reason, added = append_or_rebuild(
        directory, "visual", entry, key="k", identity={}, dim=32, plan=IndexPlan.from_dict(entry["plan"]), reason="",
        new=lambda: [(_ids(4000, 6000), extra, 6000)],
        everything=lambda: [(_ids(0, 6000), everything, 6000)])
    monkeypatch.setattr(modality, "calibrate_nprobe", real)
    assert action == "rebuilt" and "retrained" in reason and added == 6000
    assert new_entry["generation"] == 2 and new_entry["count"] == 6000 and new_entry["appends"] == 0
    assert new_entry["calibrated_count"] == 6000 and new_entry["calibrated_recall"] >= 0.9
    # the new lists were calibrated with half of the queries from the 2,000 appended vectors: the very
    # queries the refusal drew (one scan of every vector for their neighbours, not two)
    assert [k.get("newest") for k in drawn] == [2000]
    index = ModalityIndex.open(directory, "visual", new_entry)
    queries = _vectors(30, seed=10, kinds=99)
    truth = exact_neighbours(modality._faiss(), everything, queries, 50)
    found = [{int(f[1:8]) for f, _ in index.search(q, 50)} for q in queries]
    assert np.mean([len(f & set(t.tolist())) / 50 for f, t in zip(found, truth)]) >= 0.9


def test_a_rebuild_for_a_new_plan_calibrates_on_the_vectors_added_since_the_build(built, monkeypatch):
    """A grown index rebuilt because its plan changes (more lists) draws half of its calibration queries
    from the vectors added since its lists were trained, as a retrain does (stop 26: a uniform draw
    promised 0.964 where queries of the new kinds got 0.906)."""
    directory, entry, data = built
    drawn = []
    real_set = modality.calibration_set
    monkeypatch.setattr(modality, "calibration_set", lambda *a, **k: (drawn.append(k), real_set(*a, **k))[1])
    extra = _vectors(1000, seed=11, kinds=98)
    everything = np.concatenate([data, extra])
    plan = IndexPlan("IVF32,Flat", rerank=True, auto=False, nprobe=4, train_size=5000)
    new_entry, action, reason, _ = append_or_rebuild(
        directory, "visual", entry, key="k", identity={}, dim=32, plan=plan, reason="index type changes", newest=1000,
        new=lambda: pytest.fail("a rebuild for a new plan appends nothing"),
        everything=lambda: [(_ids(0, 5000), everything, 5000)])
    assert action == "rebuilt" and reason == "index type changes" and new_entry["count"] == 5000
    assert [k.get("newest") for k in drawn] == [1000]
