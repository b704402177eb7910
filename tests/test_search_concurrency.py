"""One search service called from several threads while an index run writes new snapshots."""

from __future__ import annotations

import threading

from _search_helpers import add_patent, angle_image, hand_collection

from figsearch.pipeline.index import update_collection
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.store import Collection

BASE = {"US1-A", "US1-B", "US2-C", "US2-D", "EP3-E"}
ADDED = ["US5-G", "US6-G", "US7-G"]


def test_threads_search_while_index_runs_swap_the_snapshot(collection_dir):
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    errors: list[BaseException] = []
    seen: list[frozenset] = []
    connections: set[int] = set()
    stop = threading.Event()
    with SearchService.open(collection_dir) as service:

        def searcher(query: Query) -> None:
            connections.add(id(service.collection.db))
            while not stop.is_set():
                try:
                    result = service.search(query)
                    seen.append(frozenset(h.figure_id for h in result.hits))
                except BaseException as exc:  # noqa: BLE001 - every failure is the test's business
                    errors.append(exc)
                    return

        queries = [Query(image=angle_image(45), mode="visual", k=20), Query(text="rotor hub", k=20),
                   Query(figure_id="US1-A", mode="avg", k=20), Query(image=angle_image(45), text="hub", k=20)]
        threads = [threading.Thread(target=searcher, args=(q,)) for q in queries]
        for thread in threads:
            thread.start()
        try:
            with Collection.open(collection_dir, write=True) as c:
                for number, publication in enumerate(ADDED):
                    add_patent(c, publication[:3], [("G", 40 + number, "hub")])
                    assert update_collection(c).indexes[0].action == "appended"
                assert {r.action for r in update_collection(c, rebuild=True).indexes} == {"rebuilt"}
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        final = service.search(Query(image=angle_image(45), mode="visual", k=20))
    assert not errors, errors
    assert len(connections) == len(queries)  # each thread read through its own connection
    assert {h.figure_id for h in final.hits} == BASE | set(ADDED)
    assert not final.notes  # the last snapshot is current
    assert seen
    for hits in seen:  # every answer came from one whole snapshot of a moment of the run
        assert hits <= BASE | set(ADDED) | {"US1-A"}


def test_a_new_index_is_picked_up_whole_by_an_open_service(collection_dir, monkeypatch):
    from figsearch.index import snapshot
    from figsearch.search import service as service_module

    monkeypatch.setattr(service_module, "STATE_CHECK_SECONDS", 0.0)  # count the stored vectors on every search
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    opened = []
    original = snapshot.IndexSnapshot.open.__func__

    def counting(cls, directory):
        opened.append(directory)
        return original(cls, directory)

    monkeypatch.setattr(snapshot.IndexSnapshot, "open", classmethod(counting))
    with SearchService.open(collection_dir) as service:
        first = service.snapshot()
        service.search(Query(figure_id="US1-A", k=5))
        assert service.snapshot() is first and len(opened) == 1  # unchanged manifest: not reopened
        with Collection.open(collection_dir, write=True) as c:
            add_patent(c, "US5", [("G", 45, "hub")])
            stale = service.search(Query(image=angle_image(45), mode="visual", k=10))
            assert "US5-G" not in {h.figure_id for h in stale.hits}
            assert any("1 figure(s) added since the last `figsearch index`" in n for n in stale.notes)
            update_collection(c)
        fresh = service.search(Query(image=angle_image(45), mode="visual", k=10))
        assert fresh.hits[0].figure_id == "US5-G" and not fresh.notes
        second = service.snapshot()
        assert second is not first and len(opened) == 2
        assert set(second.indexes) == {"visual", "text"}  # both modalities from the same manifest
        assert first.indexes["visual"].count == 5 and second.indexes["visual"].count == 6
