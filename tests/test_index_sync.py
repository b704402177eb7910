"""Index building, appends, rebuilds from stored vectors, and the encoder guard."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _search_helpers import CALLS, add_patent, hand_collection

from figsearch.embed.catalog import create_visual, encoder_key
from figsearch.errors import EmptyCollection
from figsearch.index.files import index_dir, read_manifest
from figsearch.index.sync import sync_index
from figsearch.pipeline.index import update_collection
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.store import Collection


def _index_files(root):
    return sorted(p.name for p in index_dir(root).iterdir() if not p.name.startswith("."))


def test_first_run_builds_then_nothing_to_do(collection_dir):
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        first = update_collection(c, visual_model="fake-angle", text_model="fake-words")
        assert [(e.modality, e.embedded) for e in first.embedded] == [("visual", 5), ("text", 4)]
        assert [(r.modality, r.action, r.count, r.factory) for r in first.indexes] == [
            ("visual", "rebuilt", 5, "Flat"), ("text", "rebuilt", 4, "Flat")]
        calls = dict(CALLS)
        again = update_collection(c)  # the stored encoders are used again
        assert [(e.embedded, e.unchanged) for e in again.embedded] == [(0, 5), (0, 4)]
        assert [r.action for r in again.indexes] == ["unchanged", "unchanged"]
        assert CALLS == calls
    manifest = read_manifest(index_dir(collection_dir))
    entry = manifest["modalities"]["visual"]
    assert entry["identity"]["name"] == "fake-angle" and entry["count"] == 5
    assert _index_files(collection_dir) == ["manifest.json", "text.g1.a0.faiss", "text.g1.ids", "visual.g1.a0.faiss", "visual.g1.ids"]


def test_new_figures_are_appended_changed_ones_rebuild(collection_dir):
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
        add_patent(c, "US4", [("G", 45, "hub hub")])
        report = update_collection(c)
        assert [(r.action, r.added, r.count) for r in report.indexes] == [("appended", 1, 6), ("appended", 1, 5)]
        # a re-ingested sheet with a new image: its old vector is replaced, so the index is rebuilt
        add_patent(c, "US4", [("G", 50, "hub hub")])
        report = update_collection(c)
        assert [r.action for r in report.indexes] == ["rebuilt", "rebuilt"]
        assert "replaced or deleted" in report.indexes[0].reason
    assert _index_files(collection_dir)[1:3] == ["text.g2.a0.faiss", "text.g2.ids"]
    with SearchService.open(collection_dir) as s:
        hit = s.search(Query(image=__import__("_search_helpers").angle_image(50), mode="visual", rerank=False, k=1)).hits[0]
        assert hit.figure_id == "US4-G" and hit.scores["visual"] == pytest.approx(1.0)


def test_changing_encoder_never_mixes_vectors(collection_dir):
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="none")
        report = update_collection(c, visual_model="fake-angle:2")  # another identity, same name
        assert report.indexes[0].action == "rebuilt" and "encoder changed" in report.indexes[0].reason
        keys = {r[0] for r in c.db.execute("SELECT DISTINCT encoder FROM embeddings")}
        assert len(keys) == 2  # the old vectors stay: switching back costs no model run
        entry = read_manifest(index_dir(collection_dir))["modalities"]["visual"]
        assert entry["encoder"] == encoder_key(create_visual("fake-angle:2")) and entry["count"] == 5
        calls = dict(CALLS)
        back = update_collection(c, visual_model="fake-angle")
        assert back.embedded[0].embedded == 0 and back.indexes[0].action == "rebuilt" and CALLS == calls


def test_changed_vectors_give_a_stale_note_until_the_index_run_rebuilds(collection_dir):
    """A search answers from the last index (no rebuild inside a search) and says it is stale;
    the next index run rebuilds from the stored vectors without running a model."""
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        assert "visual model fake-angle: chosen (--visual-model)" in update_collection(
            c, visual_model="fake-angle", text_model="fake-words").notes
        key = encoder_key(create_visual("fake-angle"))
        # the stored vectors change behind the index's back (e.g. another process embedded)
        # (with its image's digest, so that the index run takes it as up to date and does not embed again)
        c.vectors.save("visual", key, [("US2-D", np.array([1.0, 0.0], np.float32), c.figure("US2-D").image_sha256)])
    calls = dict(CALLS)
    with SearchService.open(collection_dir) as s:
        result = s.search(Query(figure_id="US1-A", mode="visual", rerank=False, k=1))
        assert result.hits[0].figure_id == "EP3-E"  # the index still holds D's old vector
        assert result.notes == ["the visual index is stale: stored vectors of 1 figure(s) changed since the last "
                                "`figsearch index` (they are found by their old ones); run it to update them"]
        with Collection.open(collection_dir, write=True) as c:
            report = update_collection(c)
            assert report.indexes[0].action == "rebuilt" and "replaced or deleted" in report.indexes[0].reason
            # `figsearch index` says which visual model it used, and why (here: the one the collection was built with)
            assert "visual model fake-angle: the collection's own (it keeps the encoder it was built with)" in report.notes
        result = s.search(Query(figure_id="US1-A", mode="visual", rerank=False, k=1))  # the same service sees the new index
        assert result.hits[0].figure_id == "US2-D" and result.hits[0].score == pytest.approx(1.0)
        assert not any("stale" in n for n in result.notes)
    assert CALLS == calls
    assert read_manifest(index_dir(collection_dir))["modalities"]["visual"]["generation"] == 2


def test_missing_or_corrupt_index_files_are_reported_then_rebuilt_by_the_index_run(collection_dir):
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="none")
    (index_dir(collection_dir) / "visual.g1.a0.faiss").unlink()
    with SearchService.open(collection_dir) as s:
        with pytest.raises(EmptyCollection, match="index cannot be opened.*figsearch index"):
            s.search(Query(figure_id="US1-A", mode="visual", k=10))
    with Collection.open(collection_dir, write=True) as c:
        assert update_collection(c).indexes[0].reason == "index files are missing"
    with SearchService.open(collection_dir) as s:
        assert len(s.search(Query(figure_id="US1-A", mode="visual", k=10)).hits) == 4
    (index_dir(collection_dir) / "manifest.json").write_text("{not json")
    with SearchService.open(collection_dir) as s:
        with pytest.raises(EmptyCollection, match="no indexed drawings; run: figsearch index"):
            s.search(Query(figure_id="US1-A", mode="visual", k=10))
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c)
    assert json.loads((index_dir(collection_dir) / "manifest.json").read_text())["format"] == 1
    with SearchService.open(collection_dir) as s:
        assert len(s.search(Query(figure_id="US1-A", mode="visual", k=10)).hits) == 4


def test_crash_leftovers_beyond_the_count_are_cut(collection_dir):
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="none", index_factory="IVF4,Flat")
        ids = index_dir(collection_dir) / "visual.g1.ids"
        with open(ids, "ab") as handle:  # an append that died before its manifest was written
            handle.write(b"garbage" * 10)
        add_patent(c, "US4", [("G", 45, None)])
        report = update_collection(c)
        assert report.indexes[0].action == "appended"
    with SearchService.open(collection_dir) as s:
        ids_found = {h.figure_id for h in s.search(Query(figure_id="US1-A", mode="visual", k=10)).hits}
        assert ids_found == {"US1-B", "US2-C", "US2-D", "EP3-E", "US4-G"}


def test_a_search_never_builds_trains_or_writes(collection_dir, monkeypatch):
    """Stale, missing or half-missing indexes: the search path never reaches index building and
    leaves the index directory (and the temporary directory) as it found them."""
    import tempfile

    import figsearch.index.modality as modality
    import figsearch.index.sync as sync

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
        add_patent(c, "US4", [("G", 45, "hub hub")])  # ingested after the index run: no vector, not indexed

    def refuse(*args, **kwargs):
        raise AssertionError("a search reached index building")

    for module, name in ((sync, "sync_index"), (sync, "build"), (sync, "append"), (modality, "build"),
                         (modality, "calibrate_nprobe"), (modality, "calibrate")):
        monkeypatch.setattr(module, name, refuse)
    before = {p.name: p.stat().st_mtime_ns for p in index_dir(collection_dir).iterdir()}
    temporary = set(__import__("os").listdir(tempfile.gettempdir()))
    with SearchService.open(collection_dir) as s:
        result = s.search(Query(figure_id="US1-A", k=10))
        assert {h.figure_id for h in result.hits} == {"US1-B", "US2-C", "US2-D", "EP3-E"}
        assert "the visual index is stale: 1 figure(s) added since the last `figsearch index` cannot be found yet; " \
               "run it to include them" in result.notes
        (index_dir(collection_dir) / "text.g1.a0.faiss").unlink()
        before.pop("text.g1.a0.faiss")
        with Collection.open(collection_dir, write=True) as c:  # a touched manifest makes the service reopen it
            c.set_setting("unrelated", 1)
        (index_dir(collection_dir) / "manifest.json").touch()
        before["manifest.json"] = (index_dir(collection_dir) / "manifest.json").stat().st_mtime_ns
        result = s.search(Query(figure_id="US1-A", k=10))
        assert result.modalities == ["visual"]
        assert any("text index cannot be opened" in n for n in result.notes)
    assert {p.name: p.stat().st_mtime_ns for p in index_dir(collection_dir).iterdir()} == before
    assert not {n for n in __import__("os").listdir(tempfile.gettempdir()) if n.startswith("figsearch-index-")} - temporary


def test_vector_state_tracks_changes(collection_dir):
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        key = "k:1"
        assert c.vectors.state("visual", key) == {"count": 0, "max_rowid": 0}
        c.vectors.save("visual", key, [("US1-A", np.ones(2, np.float32), "a")])
        first = c.vectors.state("visual", key)
        c.vectors.save("visual", key, [("US1-A", np.ones(2, np.float32), "b")])  # replaced: new rowid
        second = c.vectors.state("visual", key)
        assert first["count"] == second["count"] == 1 and second["max_rowid"] > first["max_rowid"]
        report = sync_index(c, "visual", key, {"name": "k"})
        assert report.action == "rebuilt" and report.count == 1


def test_one_index_run_publishes_both_indexes_in_one_manifest_write(collection_dir, monkeypatch):
    """A search opens what one manifest names: the run's visual and text indexes appear together."""
    import figsearch.index.files as files

    hand_collection(collection_dir)
    writes = []
    original = files.write_manifest

    def counting(directory, manifest):
        writes.append(sorted(manifest["modalities"]))
        return original(directory, manifest)

    monkeypatch.setattr(files, "write_manifest", counting)
    with Collection.open(collection_dir, write=True) as c:
        report = update_collection(c, visual_model="fake-angle", text_model="fake-words")
        assert [r.action for r in report.indexes] == ["rebuilt", "rebuilt"] and writes == [["text", "visual"]]
        add_patent(c, "US4", [("G", 45, "hub hub")])
        assert [r.action for r in update_collection(c).indexes] == ["appended", "appended"]
        assert len(writes) == 2
        assert [r.action for r in update_collection(c).indexes] == ["unchanged", "unchanged"]
        assert len(writes) == 2  # nothing changed, nothing written


def test_an_embedders_shard_executor_reaches_the_index_build(collection_dir, monkeypatch):
    """``update_collection(embedder=...)`` hands the embedder's ``index_shards`` (the Ray build's:
    its vectors added by Ray tasks) to every rebuild's ``modality.build``; without one, the build
    uses its own default (``FIGSEARCH_INDEX_WORKERS`` processes)."""
    import figsearch.index.sync as sync
    from figsearch.embed.catalog import create_text
    from figsearch.index.shards import ShardExecutor
    from figsearch.pipeline.embed import embed_text, embed_visual

    seen = []
    real_build = sync.build

    def recording_build(*args, **kwargs):
        seen.append((args[1], kwargs.get("workers"), kwargs.get("map_shards")))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(sync, "build", recording_build)

    def ray_like_map(fn, tasks):
        return map(fn, tasks)

    class Embedder:  # encodes here, as the Ray build's workers would
        index_shards = ShardExecutor(3, ray_like_map)

        def encoder(self, modality, spec):
            return (create_visual if modality == "visual" else create_text)(spec)

        def visual(self, collection, spec, encoder, todo, progress):
            return embed_visual(collection, encoder, todo, progress=progress)

        def text(self, collection, spec, encoder, plan, progress):
            return embed_text(collection, encoder, plan, progress=progress)

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words", embedder=Embedder())
        assert seen == [("visual", 3, ray_like_map), ("text", 3, ray_like_map)]
        seen.clear()
        update_collection(c, rebuild=True)
        assert seen == [("visual", None, None), ("text", None, None)]
