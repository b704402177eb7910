"""Indexes at scale (issue 16): sharded adds, float16 re-ranking vectors, recall through appends.

Small data (a few thousand to 20,000 vectors); the sizes and timings are in
benchmarks/index_scale_benchmark.py.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from figsearch.index import modality, shards  # noqa: E402
from figsearch.index.calibrate import exact_neighbours  # noqa: E402
from figsearch.index.files import update_entry  # noqa: E402
from figsearch.index.modality import ModalityIndex, append, build  # noqa: E402
from figsearch.index.plan import IndexPlan, choose_plan  # noqa: E402
from figsearch.index.snapshot import IndexSnapshot  # noqa: E402

faiss = modality._faiss()  # with its thread count set: unset, OpenMP spins on a busy machine


def _clustered(n: int, dim: int, seed: int, centres: int = 60, spread: float = 0.35, kinds_seed: int = 0):
    middles = np.random.default_rng(kinds_seed).standard_normal((centres, dim))
    rng = np.random.default_rng(seed)
    x = middles[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _ids(start: int, stop: int) -> list[str]:
    return [f"P{i:07d}-f1" for i in range(start, stop)]


def _chunks(x: np.ndarray, size: int = 5000):
    return [(_ids(s, min(s + size, len(x))), x[s : s + size], min(s + size, len(x))) for s in range(0, len(x), size)]


def _recall(index: ModalityIndex, data: np.ndarray, queries: np.ndarray, k: int) -> float:
    truth = exact_neighbours(faiss, data, queries, k)
    found = 0
    for q, expected in zip(queries, truth):
        got = {int(f[1:8]) for f, _ in index.search(q, k)}
        found += len(got & set(expected.tolist()))
    return found / (k * len(queries))


def test_plans_keep_float16_vectors_from_a_million_on():
    assert choose_plan(10_000, 256).vector_dtype == "<f4"
    assert choose_plan(999_999, 256).vector_dtype == "<f4"
    assert choose_plan(1_000_000, 256).vector_dtype == "<f2"
    assert choose_plan(10**7, 256).vector_dtype == "<f2"
    # a flat index is built from the stored file: never rounded
    assert choose_plan(10**7, 256, factory="Flat").vector_dtype == "<f4"
    # entries written before the field existed read as float32
    assert IndexPlan.from_dict({"factory": "Flat", "rerank": False, "auto": True}).vector_dtype == "<f4"


def test_shard_ranges_cover_every_position_once():
    assert shards.shard_ranges(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert shards.shard_ranges(2, 5) == [(0, 1), (1, 2)]
    covered = [i for a, b in shards.shard_ranges(20_001, 7) for i in range(a, b)]
    assert covered == list(range(20_001))


def _trained(x: np.ndarray, factory: str):
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    index.train(x[:5000])
    return faiss.serialize_index(index)


def test_shards_merged_in_order_equal_one_sequential_add(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_MIN", 1000)
    monkeypatch.setattr(shards, "SHARD_MAX", 6000)  # 20,000 vectors: 4 shards
    x = _clustered(20_000, 32, seed=1)
    path = tmp_path / "v.f32"
    x.tofile(path)
    empty = _trained(x, "IVF64,PQ16x4fs")
    one, sharded = faiss.deserialize_index(empty), faiss.deserialize_index(empty)
    shards.add_vectors(faiss, one, path, "<f4", len(x), 32, workers=1)
    seen = []

    def in_process_map(fn, tasks):  # the executor hook, as a cluster would use it
        tasks = list(tasks)
        seen.extend(tasks)
        return map(fn, tasks)

    shards.add_vectors(faiss, sharded, path, "<f4", len(x), 32, workers=2, map_shards=in_process_map)
    assert [(t.start, t.stop) for t in seen] == [(0, 5000), (5000, 10000), (10000, 15000), (15000, 20000)]
    assert sharded.ntotal == one.ntotal == 20_000
    for index in (one, sharded):
        index.nprobe = 16
    queries = _clustered(40, 32, seed=2)
    d1, i1 = one.search(queries, 50)
    d2, i2 = sharded.search(queries, 50)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)
    assert not list(tmp_path.glob(".shard-*")), "shard files are removed after the merge"


def test_a_sharded_build_in_worker_processes_finds_what_an_unsharded_one_finds(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_MIN", 1000)
    x = _clustered(20_000, 32, seed=3)
    plan = IndexPlan("IVF64,PQ32x4fs", rerank=True, auto=False, nprobe=8, train_size=5000)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = build(tmp_path / "a", "visual", key="k", identity={}, dim=32, plan=plan, chunks=_chunks(x),
                  generation=1, workers=1)
    sharded = build(tmp_path / "b", "visual", key="k", identity={}, dim=32, plan=plan, chunks=_chunks(x),
                    generation=1, workers=2)
    assert sharded["count"] == plain["count"] == 20_000
    a = ModalityIndex.open(tmp_path / "a", "visual", plain)
    b = ModalityIndex.open(tmp_path / "b", "visual", sharded)
    queries = _clustered(30, 32, seed=4)
    overlap = np.mean([len({f for f, _ in a.search(q, 50)} & {f for f, _ in b.search(q, 50)}) / 50 for q in queries])
    assert overlap >= 0.98
    assert _recall(b, x, queries, 50) >= 0.95
    assert not list((tmp_path / "b").glob(".shard-*"))


def _build_pair(tmp_path, x):
    entries = {}
    for dtype in ("<f4", "<f2"):
        directory = tmp_path / dtype[1:]
        directory.mkdir()
        plan = IndexPlan("IVF32,PQ16x4fs", rerank=True, auto=False, nprobe=8, train_size=4000, vector_dtype=dtype)
        entries[dtype] = (directory, build(directory, "visual", key="k", identity={}, dim=64, plan=plan,
                                           chunks=_chunks(x), generation=1))
    return entries


def test_float16_reranking_vectors_give_the_float32_top_k(tmp_path):
    x = _clustered(8000, 64, seed=5)
    entries = _build_pair(tmp_path, x)
    directory, entry = entries["<f2"]
    assert entry["vector_dtype"] == "<f2" and entry["files"]["vectors"] == "visual.g1.f16"
    assert (directory / "visual.g1.f16").stat().st_size == 8000 * 64 * 2
    full = ModalityIndex.open(*entries["<f4"][:1], "visual", entries["<f4"][1])
    half = ModalityIndex.open(directory, "visual", entry)
    assert half.vectors.dtype == np.float16
    queries = _clustered(40, 64, seed=6)
    overlaps = []
    for q in queries:
        a, b = full.search(q, 20), half.search(q, 20)
        overlaps.append(len({f for f, _ in a} & {f for f, _ in b}) / 20)
        scores_a, scores_b = dict(a), dict(b)
        for figure in scores_a.keys() & scores_b.keys():
            assert scores_b[figure] == pytest.approx(scores_a[figure], abs=2e-3)
    assert np.mean(overlaps) >= 0.98


def test_a_float16_index_grows_by_appends_and_opens_through_a_snapshot(tmp_path):
    x = _clustered(8000, 64, seed=7)
    directory, entry = _build_pair(tmp_path, x)["<f2"]
    extra = _clustered(2000, 64, seed=8, centres=30, kinds_seed=9)  # 25 % more, of other kinds
    updated = append(directory, entry, _ids(8000, 10_000), extra, 10_000)
    assert isinstance(updated, dict) and updated["calibrated_count"] == 10_000
    assert (directory / "visual.g1.f16").stat().st_size == 10_000 * 64 * 2
    update_entry(directory, "visual", updated)
    # the read path opens it as it opens any index: nothing there builds or converts
    snapshot = IndexSnapshot.open(directory)
    assert not snapshot.broken
    index = snapshot.indexes["visual"]
    assert index.count == 10_000 and index.vectors.dtype == np.float16
    assert index.search(extra[17], 1)[0][0] == "P0008017-f1"


def test_a_crashed_append_tail_is_cut_in_float16_files_too(tmp_path):
    x = _clustered(8000, 64, seed=10)
    directory, entry = _build_pair(tmp_path, x)["<f2"]
    with open(directory / entry["files"]["vectors"], "ab") as handle:
        handle.write(b"\x00" * 64 * 2 * 3)  # three vectors a crashed append wrote and never published
    extra = _clustered(100, 64, seed=11)
    updated = append(directory, entry, _ids(8000, 8100), extra, 8100)
    assert (directory / "visual.g1.f16").stat().st_size == 8100 * 64 * 2
    index = ModalityIndex.open(directory, "visual", updated)
    assert index.search(extra[5], 1)[0][0] == "P0008005-f1"


def test_recall_holds_through_appends_of_10_50_and_100_percent(tmp_path):
    """Appends of new kinds of vectors re-calibrate nprobe, or ask for a rebuild that retrains the lists;
    either way recall@50 of new queries stays at the bar after each step (benchmarks report the sizes)."""
    n, dim, k = 6000, 32, 50
    base = _clustered(n, dim, seed=12, centres=40)
    plan = IndexPlan("IVF64,PQ16x4fs", rerank=True, auto=False, nprobe=8, train_size=n)
    entry = build(tmp_path, "visual", key="k", identity={}, dim=dim, plan=plan, chunks=_chunks(base), generation=1)
    data, done, generation = base, 0, 1
    queries = np.concatenate([_clustered(20, dim, seed=13, centres=40),
                              _clustered(20, dim, seed=14, centres=40, kinds_seed=15)])
    for fraction in (0.1, 0.5, 1.0):
        target = int(n * fraction)
        extra = _clustered(target - done, dim, seed=20 + target, centres=40, kinds_seed=15)
        ids = _ids(n + done, n + target)
        data = np.concatenate([data, extra])
        updated = append(tmp_path, entry, ids, extra, n + target)
        if isinstance(updated, modality.Refused):  # what figsearch index then does: a new generation, lists retrained
            generation += 1
            updated = build(tmp_path, "visual", key="k", identity={}, dim=dim, plan=plan,
                            chunks=_chunks(data), generation=generation)
        entry, done = updated, target
        assert entry["count"] == len(data)
        assert entry["calibrated_count"] == len(data)  # every step here grows the index by >= 10 %
        assert _recall(ModalityIndex.open(tmp_path, "visual", entry), data, queries, k) >= 0.93


def test_appends_that_need_many_more_lists_ask_for_a_retrain(tmp_path, monkeypatch):
    x = _clustered(8000, 64, seed=16)
    directory, entry = _build_pair(tmp_path, x)["<f2"]
    assert entry["built_nprobe"] == entry["nprobe"]
    extra = _clustered(1000, 64, seed=17)
    monkeypatch.setattr(modality, "calibrate_nprobe", lambda *a, **k: (entry["nprobe"] * 4, 0.99))
    kept = append(directory, entry, _ids(8000, 9000), extra, 9000)
    assert isinstance(kept, dict) and kept["nprobe"] == entry["nprobe"] * 4
    monkeypatch.setattr(modality, "calibrate_nprobe", lambda *a, **k: (entry["nprobe"] * 4 + 1, 0.99))
    assert isinstance(append(directory, kept, _ids(9000, 10_000), _clustered(1000, 64, seed=18), 10_000),
                      modality.Refused)


def test_two_level_training_and_an_hnsw_quantizer_keep_recall(tmp_path, monkeypatch):
    """The 10^7 plan (IVF…_HNSW32, centroids by two-level k-means) on small data: lists trained,
    vectors found, recall as with the flat quantizer and one-level k-means."""
    x = _clustered(12_000, 32, seed=3)
    queries = _clustered(40, 32, seed=4)
    recalls = {}
    for factory, two_level_from in (("IVF64_HNSW32,PQ16x4fs", 64), ("IVF64,PQ16x4fs", 10**9)):
        monkeypatch.setattr(modality, "HNSW_NLIST_MIN", two_level_from)
        directory = tmp_path / factory.replace(",", "_")
        directory.mkdir()
        entry = build(directory, "visual", key="k", identity={}, dim=32,
                      plan=choose_plan(len(x), 32, factory=factory), chunks=_chunks(x), generation=1)
        index = ModalityIndex.open(directory, "visual", entry)
        assert index.index.is_trained and index.count == len(x)
        recalls[factory] = _recall(index, x, queries, 20)
    assert recalls["IVF64_HNSW32,PQ16x4fs"] >= 0.9
    assert recalls["IVF64_HNSW32,PQ16x4fs"] >= recalls["IVF64,PQ16x4fs"] - 0.05


def test_more_reranking_candidates_where_the_nprobe_cap_misses_the_target(tmp_path):
    """Coarse codes (4 bits × 4 for 32 dims) on diffuse data: even with every list probed (the cap
    for 16 lists) the default 400 candidates miss true neighbours; the build keeps a wider candidate
    count in the manifest and searches use it. (Since the ladder goes to 5,000 and 10,000 candidates
    here, a wide count reaches the bar before the cap: nprobe is whatever that costs least.)"""
    x = _clustered(12_000, 32, seed=5, centres=3000, spread=0.8)
    plan = choose_plan(len(x), 32, factory="IVF16,PQ4x4fs")
    entry = build(tmp_path, "visual", key="k", identity={}, dim=32, plan=plan, chunks=_chunks(x), generation=1)
    assert entry["nprobe"] <= 16 and entry["candidates"] > 400
    wide = ModalityIndex.open(tmp_path, "visual", entry)
    narrow = ModalityIndex.open(tmp_path, "visual", dict(entry, candidates=0))
    queries = _clustered(60, 32, seed=6, centres=3000, spread=0.8)
    assert _recall(wide, x, queries, 50) >= _recall(narrow, x, queries, 50) + 0.02


def test_resumed_shards_are_kept_and_only_the_missing_ones_added(tmp_path, monkeypatch):
    """A build killed while adding keeps its finished shard files; the rerun adds only the others
    and merges to the index one sequential add gives."""
    monkeypatch.setattr(shards, "SHARD_MIN", 1000)
    monkeypatch.setattr(shards, "SHARD_MAX", 6000)  # 20,000 vectors: 4 shards
    x = _clustered(20_000, 32, seed=21)
    path = tmp_path / "v.f32"
    x.tofile(path)
    empty = _trained(x, "IVF64,PQ16x4fs")
    one = faiss.deserialize_index(empty)
    shards.add_vectors(faiss, one, path, "<f4", len(x), 32, workers=1)
    resume = tmp_path / "shards"
    resume.mkdir()
    ran = []

    def dies_after_two(fn, tasks):
        for task in list(tasks)[:2]:
            ran.append((task.start, task.stop))
            yield fn(task)
        raise _Killed("killed")

    killed = faiss.deserialize_index(empty)
    with pytest.raises(_Killed):
        shards.add_vectors(faiss, killed, path, "<f4", len(x), 32, workers=2, map_shards=dies_after_two,
                           resume=resume)
    assert sorted(p.name for p in resume.glob("shard-*.faiss")) == ["shard-0-5000.faiss", "shard-5000-10000.faiss"]
    added = []

    def counting(fn, tasks):
        for task in tasks:
            done = fn(task)
            if done.seconds:
                added.append((task.start, task.stop))
            yield done

    resumed = faiss.deserialize_index(empty)
    shards.add_vectors(faiss, resumed, path, "<f4", len(x), 32, workers=2, map_shards=counting, resume=resume)
    assert added == [(10000, 15000), (15000, 20000)]
    for index in (one, resumed):
        index.nprobe = 16
    queries = _clustered(40, 32, seed=22)
    d1, i1 = one.search(queries, 50)
    d2, i2 = resumed.search(queries, 50)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)
    # without a pool (one worker), a resumable build still goes shard by shard in its own process
    again = faiss.deserialize_index(empty)
    (resume / "shard-15000-20000.faiss").unlink()
    shards.add_vectors(faiss, again, path, "<f4", len(x), 32, workers=1, resume=resume)
    assert (resume / "shard-15000-20000.faiss").exists() and again.ntotal == len(x)


def test_a_build_killed_after_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """Every finished phase is kept: the rerun neither reads the chunks again nor retrains, and
    publishes the index an uninterrupted build publishes; the checkpoint is then removed."""
    monkeypatch.setattr(shards, "SHARD_MIN", 1000)
    x = _clustered(12_000, 32, seed=23)
    plan = IndexPlan("IVF64,PQ16x4fs", rerank=True, auto=False, nprobe=8, train_size=5000, vector_dtype="<f2")
    (tmp_path / "plain").mkdir()
    (tmp_path / "resumed").mkdir()
    plain = build(tmp_path / "plain", "visual", key="k", identity={}, dim=32, plan=plan, chunks=_chunks(x),
                  generation=1, workers=1)
    checkpoint = tmp_path / "resumed" / ".checkpoint"
    phases = []

    def killed(*args, **kwargs):
        raise _Killed("killed while adding")

    monkeypatch.setattr(modality, "add_vectors", killed)
    with pytest.raises(_Killed):
        build(tmp_path / "resumed", "visual", key="k", identity={}, dim=32, plan=plan, chunks=_chunks(x),
              generation=1, workers=1, checkpoint=checkpoint, on_phase=lambda name, s: phases.append(name))
    assert phases == ["vectors", "train"]
    assert (checkpoint / "trained.faiss").exists() and (checkpoint / "vectors.f16").exists()
    monkeypatch.setattr(modality, "add_vectors", shards.add_vectors)
    monkeypatch.setattr(modality, "_train", lambda *a: pytest.fail("trained again"))

    def never_read():
        raise AssertionError("the chunks were read again")
        yield

    phases.clear()
    resumed = build(tmp_path / "resumed", "visual", key="k", identity={}, dim=32, plan=plan, chunks=never_read(),
                    generation=1, workers=1, checkpoint=checkpoint, on_phase=lambda name, s: phases.append(name))
    assert phases == ["add", "calibrate"]
    assert not checkpoint.exists()
    for key in ("count", "id_width", "max_rowid", "nprobe", "calibrated_recall", "candidates", "files"):
        assert resumed[key] == plain[key]
    a = ModalityIndex.open(tmp_path / "plain", "visual", plain)
    b = ModalityIndex.open(tmp_path / "resumed", "visual", resumed)
    assert (tmp_path / "resumed" / "visual.g1.f16").read_bytes() == (tmp_path / "plain" / "visual.g1.f16").read_bytes()
    for q in _clustered(20, 32, seed=24):
        assert a.search(q, 20) == b.search(q, 20)


def test_a_checkpoint_of_another_build_is_not_used(tmp_path):
    x = _clustered(6000, 32, seed=25)
    checkpoint = tmp_path / "ck"
    checkpoint.mkdir()
    (checkpoint / "state.json").write_text('{"identity": {"plan": "other"}, "vectors": {"count": 5}}')
    (checkpoint / "trained.faiss").write_bytes(b"not an index")
    plan = IndexPlan("IVF32,PQ16x4fs", rerank=True, auto=False, nprobe=8, train_size=4000)
    entry = build(tmp_path, "visual", key="k", identity={}, dim=32, plan=plan, chunks=_chunks(x), generation=1,
                  checkpoint=checkpoint)
    assert entry["count"] == 6000 and not checkpoint.exists()
    assert ModalityIndex.open(tmp_path, "visual", entry).search(x[7], 1)[0][0] == "P0000007-f1"


class _Killed(Exception):
    """Stands for the signal that ends a build part way."""


def test_merging_into_a_list_whose_size_is_a_multiple_of_the_block_bytes_is_safe():
    """FAISS 1.15 copies a shard's fast-scan blocks over the end of a list whose entry count is a
    multiple of the block size in bytes (256 for 16 4-bit codes): heap corruption. merge_shard
    moves such lists itself; the merged index is the one a sequential add builds."""
    x = _clustered(4000, 32, seed=26)
    trained = faiss.index_factory(32, "IVF1,PQ16x4fs", faiss.METRIC_INNER_PRODUCT)  # one list: sizes known
    trained.train(x)
    empty = faiss.serialize_index(trained)
    block_bytes = faiss.downcast_InvertedLists(faiss.extract_index_ivf(trained).invlists).block_size
    assert block_bytes == 256
    one = faiss.deserialize_index(empty)
    one.add(x[:700])
    merged = faiss.deserialize_index(empty)
    for a, b in ((0, 256), (256, 512), (512, 513), (513, 700)):  # the list holds 256, then 512, entries
        part = faiss.deserialize_index(empty)
        part.add_with_ids(x[a:b], np.arange(a, b, dtype=np.int64))
        shards.merge_shard(faiss, merged, part)
    assert merged.ntotal == 700
    queries = _clustered(30, 32, seed=27)
    d1, i1 = one.search(queries, 100)
    d2, i2 = merged.search(queries, 100)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)


def test_a_build_killed_after_calibrating_keeps_the_calibration(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_MIN", 1000)
    x = _clustered(12_000, 32, seed=28)
    plan = IndexPlan("IVF64,PQ16x4fs", rerank=True, auto=False, nprobe=8, train_size=5000, vector_dtype="<f2")
    checkpoint = tmp_path / ".checkpoint"
    real_write = modality._write_faiss

    def killed(*args):
        raise _Killed("killed while publishing")

    monkeypatch.setattr(modality, "_write_faiss", killed)
    with pytest.raises(_Killed):
        build(tmp_path, "visual", key="k", identity={}, dim=32, plan=plan, chunks=_chunks(x), generation=1,
              workers=2, checkpoint=checkpoint)
    assert sorted(p.name for p in (checkpoint / "shards").glob("shard-*.faiss")) == [
        "shard-0-6000.faiss", "shard-6000-12000.faiss"]
    monkeypatch.setattr(modality, "_write_faiss", real_write)
    monkeypatch.setattr(modality, "calibrate", lambda *a, **k: pytest.fail("calibrated again"))
    phases = []
    entry = build(tmp_path, "visual", key="k", identity={}, dim=32, plan=plan, chunks=_chunks(x), generation=1,
                  workers=2, checkpoint=checkpoint, on_phase=lambda name, s: phases.append(name))
    assert phases == ["add"] and entry["count"] == 12_000 and entry["nprobe"] >= 8
    index = ModalityIndex.open(tmp_path, "visual", entry)
    assert index.search(x[11], 1)[0][0] == "P0000011-f1"
    assert faiss.extract_index_ivf(faiss.read_index(str(tmp_path / entry["files"]["index"]))).nprobe == entry["nprobe"]


def test_an_hnsw_quantizer_is_searched_wide_enough_to_find_the_probed_lists(tmp_path):
    """With FAISS's default efSearch (16) an HNSW coarse quantizer returns nprobe lists of which many
    are not the query's nearest (measured at 4,096 lists: 34-53 % found at nprobe 64-512; the 10^7
    diffuse index's recall stopped at 0.37). Opened or calibrated, figsearch searches it with
    efSearch >= 2 × nprobe and the lists probed are the exact top nprobe."""
    from figsearch.index.calibrate import set_nprobe

    x = _clustered(20_000, 64, seed=11, centres=2000, spread=0.8)
    plan = choose_plan(len(x), 64, factory="IVF1024_HNSW32,PQ16x4fs")
    entry = build(tmp_path, "visual", key="k", identity={}, dim=64, plan=plan, chunks=_chunks(x), generation=1)
    index = ModalityIndex.open(tmp_path, "visual", dict(entry, nprobe=128))
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index.index).quantizer)
    assert isinstance(quantizer, faiss.IndexHNSW) and quantizer.hnsw.efSearch >= 256
    centroids = quantizer.storage.reconstruct_n(0, quantizer.ntotal)
    flat = faiss.IndexFlatIP(64)
    flat.add(centroids)
    queries = _clustered(100, 64, seed=12, centres=2000, spread=0.8)
    _, exact = flat.search(queries, 128)

    def found() -> float:
        _, lists = quantizer.search(queries, 128)
        return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 128 for a, b in zip(lists, exact)]))

    wide = found()
    quantizer.hnsw.efSearch = 16  # FAISS's default, what searches used before
    narrow = found()
    assert wide >= 0.98 and narrow < wide - 0.05, (wide, narrow)
    set_nprobe(faiss, index.index, 128)
    assert quantizer.hnsw.efSearch == 256 and faiss.extract_index_ivf(index.index).nprobe == 128


def _hnsw_index(x: np.ndarray, nlist: int = 256):
    index = faiss.index_factory(x.shape[1], f"IVF{nlist}_HNSW32,PQ16x4fs", faiss.METRIC_INNER_PRODUCT)
    index.train(x[:5000])
    return index


def _lists_of(index, n: int) -> np.ndarray:
    ivf = faiss.extract_index_ivf(index)
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    where = np.full(n, -1, np.int64)
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if size:
            where[faiss.rev_swig_ptr(lists.get_ids(number), size).astype(np.int64)] = number
    return where


def test_vectors_are_added_to_their_nearest_list_and_the_graph_is_kept(tmp_path):
    """An HNSW quantizer searched with FAISS's default efSearch (16) puts many vectors in a list that
    is not their nearest (at 10^7 diffuse vectors: 55 %); the exact rule puts every one in its
    nearest centroid's list, and the index keeps its graph for searching."""
    x = np.random.default_rng(21).standard_normal((12_000, 128)).astype(np.float32)  # no structure: the
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # graph search misses more (1.6 % here at efSearch 16)
    index = _hnsw_index(x, nlist=512)
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
    centroids = quantizer.reconstruct_n(0, quantizer.ntotal)
    nearest = np.argmax(x @ centroids.T, axis=1)
    path = tmp_path / "v.f32"
    x.tofile(path)
    exact, narrow = faiss.clone_index(index), faiss.clone_index(index)
    shards.add_vectors(faiss, exact, path, "<f4", len(x), 128, workers=1)  # the default rule
    shards.add_vectors(faiss, narrow, path, "<f4", len(x), 128, workers=1, assignment="hnsw-ef16")
    assert np.array_equal(_lists_of(exact, len(x)), nearest)
    assert np.mean(_lists_of(narrow, len(x)) == nearest) < 0.995
    kept = faiss.downcast_index(faiss.extract_index_ivf(exact).quantizer)
    assert isinstance(kept, faiss.IndexHNSW) and kept.ntotal == quantizer.ntotal
    with pytest.raises(Exception, match="unknown assignment"):
        with shards.assigning(faiss, exact, "nearest-ish"):
            pass


def test_sharded_workers_assign_by_the_same_rule(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_MIN", 1000)
    monkeypatch.setattr(shards, "SHARD_MAX", 4000)
    x = np.random.default_rng(22).standard_normal((12_000, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    path = tmp_path / "v.f32"
    x.tofile(path)
    empty = faiss.serialize_index(_hnsw_index(x, nlist=512))
    lists = {}
    for rule in (shards.EXACT, "hnsw-ef16"):
        one, sharded = faiss.deserialize_index(empty), faiss.deserialize_index(empty)
        shards.add_vectors(faiss, one, path, "<f4", len(x), 128, workers=1, assignment=rule)
        seen = []

        def in_process_map(fn, tasks):
            tasks = list(tasks)
            seen.extend(tasks)
            return map(fn, tasks)

        shards.add_vectors(faiss, sharded, path, "<f4", len(x), 128, workers=2, map_shards=in_process_map,
                           assignment=rule)
        assert len(seen) == 3 and {t.assignment for t in seen} == {rule}
        lists[rule] = _lists_of(one, len(x))
        assert np.array_equal(lists[rule], _lists_of(sharded, len(x))), rule
    assert not np.array_equal(lists[shards.EXACT], lists["hnsw-ef16"])


def test_reset_and_re_adding_by_the_same_rule_gives_the_same_index():
    """What the 10^7 re-add relies on: ``reset`` empties the lists and keeps the quantizer and the
    codes' training, so adding again gives the index the first add gave, byte for byte."""
    x = _clustered(8_000, 64, seed=23, centres=2000, spread=0.9)
    index = _hnsw_index(x, nlist=128)
    for rule in ("hnsw-ef16", shards.EXACT):
        with shards.assigning(faiss, index, rule):
            index.add(x)
        first = faiss.serialize_index(index)
        index.reset()
        assert index.ntotal == 0 and index.is_trained
        with shards.assigning(faiss, index, rule):
            index.add(x)
        assert np.array_equal(faiss.serialize_index(index), first), rule
        index.reset()


def test_appends_assign_by_the_rule_their_build_recorded(tmp_path, monkeypatch):
    x = _clustered(12_000, 64, seed=24, centres=3000, spread=0.9)
    plan = choose_plan(len(x), 64, factory="IVF256_HNSW32,PQ16x4fs")
    entry = build(tmp_path, "visual", key="k", identity={}, dim=64, plan=plan, chunks=_chunks(x[:10_000]),
                  generation=1)
    assert entry["assignment"] == "exact"
    rules = []
    real = modality.assigning

    def spy(faiss_, index, rule):
        rules.append(rule)
        return real(faiss_, index, rule)

    monkeypatch.setattr(modality, "assigning", spy)
    monkeypatch.setattr(modality, "RECALIBRATE_GROWTH_PERCENT", 10**6)
    grown = append(tmp_path, entry, _ids(10_000, 11_000), x[10_000:11_000], 11_000)
    assert grown["assignment"] == "exact"
    old = dict(grown)
    del old["assignment"]  # an entry written before the rule was recorded: its lists were filled so
    append(tmp_path, old, _ids(11_000, 12_000), x[11_000:12_000], 12_000)
    assert rules == ["exact", "hnsw-ef16"]


def test_a_published_index_is_re_added_from_its_own_files(tmp_path, monkeypatch):
    """``seed_readd``: the published generation's vectors, ids and emptied index become a build's
    checkpoint; the build only adds (by the current rule) and calibrates, and the source is untouched."""
    x = _clustered(12_000, 64, seed=25, centres=3000, spread=0.9)
    plan = choose_plan(len(x), 64, factory="IVF256_HNSW32,PQ16x4fs")
    monkeypatch.setattr(shards, "SHARD_MIN", 1000)
    monkeypatch.setattr(shards, "SHARD_MAX", 5000)
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    monkeypatch.setattr(modality, "ADD_ASSIGNMENT", "hnsw-ef16")  # as built before stop 18
    old = build(old_dir, "visual", key="k", identity={}, dim=64, plan=plan, chunks=_chunks(x), generation=1)
    monkeypatch.setattr(modality, "ADD_ASSIGNMENT", "exact")
    before = {p.name: p.read_bytes() for p in old_dir.iterdir()}
    modality.seed_readd(tmp_path / "ck", old_dir, old, modality="visual")
    modality.seed_readd(tmp_path / "ck", old_dir, old, modality="visual")  # a rerun keeps what is there
    phases = []
    entry = build(new_dir, "visual", key="k", identity={}, dim=64, plan=plan,
                  chunks=iter(()), generation=1, workers=1, checkpoint=tmp_path / "ck",
                  on_phase=lambda name, s: phases.append(name))
    assert phases == ["add", "calibrate"] and entry["assignment"] == "exact" and entry["count"] == len(x)
    assert {p.name: p.read_bytes() for p in old_dir.iterdir()} == before
    index = faiss.read_index(str(new_dir / entry["files"]["index"]))
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
    centroids = quantizer.reconstruct_n(0, quantizer.ntotal)
    assert np.array_equal(_lists_of(index, len(x)), np.argmax(x @ centroids.T, axis=1))
    assert ModalityIndex.open(new_dir, "visual", entry).search(x[7], 1)[0][0] == "P0000007-f1"


def test_an_hnsw_quantizer_searched_wider_than_a_scan_finds_its_lists_by_scanning_the_centroids():
    """Where the graph search the nprobe needs costs more than scanning every centroid, searches take
    the exact nearest lists from the scan (stop 18); a narrow graph search is left as it was."""
    faiss = pytest.importorskip("faiss")
    from figsearch.index.calibrate import set_nprobe
    from figsearch.index.modality import search_index

    rng = np.random.default_rng(5)
    data = rng.standard_normal((6000, 32)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    index = faiss.index_factory(32, "IVF256_HNSW32,PQ8x4fs", faiss.METRIC_INNER_PRODUCT)
    index.train(data)
    index.add(data)
    queries = data[:20] + 0.05 * rng.standard_normal((20, 32)).astype(np.float32)
    centroids = faiss.downcast_index(index.quantizer).storage.reconstruct_n(0, 256)

    set_nprobe(faiss, index, 64)
    # efSearch 8 × M 32 ≥ 256 lists: the scan; the graph itself, this narrow, finds ~95 % of the lists
    faiss.downcast_index(index.quantizer).hnsw.efSearch = 8
    nearest = np.argsort(-(queries @ centroids.T), axis=1)[:, :64]
    expected = index.search_preassigned(queries, 10, nearest.astype(np.int64),
                                        np.take_along_axis(queries @ centroids.T, nearest, axis=1))
    scores, found = search_index(index, queries, 10)
    assert np.array_equal(found, expected[1]) and np.allclose(scores, expected[0], atol=1e-5)
    assert not np.array_equal(index.search(queries, 10)[1], found)  # what the graph alone returns

    faiss.downcast_index(index.quantizer).hnsw.efSearch = 4  # 4 × 32 < 256: the graph, as before
    assert np.array_equal(search_index(index, queries, 10)[1], index.search(queries, 10)[1])
