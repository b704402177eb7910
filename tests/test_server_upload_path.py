"""The cost of an uploaded drawing: only what the mode scores with is computed, the words are read
beside the visual encoding, and a drawing sent again (the page's next page, another mode) is not
encoded again. Results are the same as without any of it (fake encoders, hand-made collection). The
services here encode every turn (``upright_confident=None``): the upright-first rule is
tests/test_server_upload_turns.py's."""

from __future__ import annotations

import io
import threading

import pytest
from _search_helpers import angle_image, indexed_hand_collection

from figsearch.records import DrawingWord
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.store import Collection


class ThreadReader:
    """Reads fixed words, and notes which thread read them; ``wait_for`` makes it wait until an
    event is set (by the visual encoding) before it answers."""

    unavailable = None

    def __init__(self, words: list[str], wait_for: threading.Event | None = None) -> None:
        self.words = [DrawingWord(w, (0, 0, 4, 2), 0.95, line) for line, w in enumerate(words)]
        self.calls = 0
        self.threads: list[str] = []
        self.wait_for = wait_for

    def read(self, image):
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        if self.wait_for is not None and not self.wait_for.wait(10):
            raise RuntimeError("the visual encoding never started while the words were read")
        return list(self.words)


@pytest.fixture
def indexed(collection_dir):
    return indexed_hand_collection(collection_dir)


def counting(service: SearchService) -> list[tuple[str, int]]:
    """Records (modality, inputs) for every encoder call of ``service``."""
    calls: list[tuple[str, int]] = []
    encode = service._encode

    def spy(modality, inputs):
        inputs = list(inputs)
        calls.append((modality, len(inputs)))
        return encode(modality, inputs)

    service._encode = spy
    return calls


def ranked(result):
    return [(h.figure_id, round(h.score, 6)) for h in result.hits]


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_drawing_sent_again_is_not_encoded_again(indexed):
    reader = ThreadReader(["hub"])
    with SearchService(Collection.open(indexed), owns=True, upright_confident=None, reader=reader) as s:
        calls = counting(s)
        first = s.search(Query(image=angle_image(58), mode="avg", k=5))
        assert calls == [("visual", 4), ("text", 1)] and reader.calls == 1
        assert "cached" not in first.timings and {"decode", "visual", "words", "search", "explain"} <= set(first.timings)
        # the same pixels as a PNG file, the next page: neither the drawing nor its words again
        again = s.search(Query(image=png(angle_image(58)), mode="avg", k=2, offset=1))
        assert calls == [("visual", 4), ("text", 1), ("text", 1)] and reader.calls == 1
        assert again.timings["cached"] == 1.0 and "visual" not in again.timings
        assert ranked(again) == ranked(first)[1:3] and again.query_words == first.query_words == ["hub"]
        # other pixels are another drawing
        s.search(Query(image=angle_image(59), mode="avg", k=5))
        assert calls[-2:] == [("visual", 4), ("text", 1)] and reader.calls == 2


def test_the_cache_changes_no_result(indexed):
    queries = [Query(image=angle_image(a), mode=m, k=5) for a in (3, 58, 3) for m in ("visual", "avg", "text")]
    with SearchService(Collection.open(indexed), owns=True, upright_confident=None, reader=ThreadReader(["hub"]), query_cache=0) as plain, \
            SearchService(Collection.open(indexed), owns=True, upright_confident=None, reader=ThreadReader(["hub"])) as cached:
        for query in queries:
            assert ranked(cached.search(query)) == ranked(plain.search(query)), query


def test_the_cache_is_bounded(indexed):
    with SearchService(Collection.open(indexed), owns=True, upright_confident=None, reader=ThreadReader([]), query_cache=1) as s:
        calls = counting(s)
        for angle in (3, 58, 3):
            s.search(Query(image=angle_image(angle), mode="visual", k=1))
        assert calls == [("visual", 4)] * 3  # 58 pushed 3 out
        s.search(Query(image=angle_image(3), mode="visual", k=1))
        assert len(calls) == 3


def test_a_text_mode_upload_is_not_encoded_as_a_drawing(indexed):
    reader = ThreadReader(["hub"])
    with SearchService(Collection.open(indexed), owns=True, upright_confident=None, reader=reader) as s:
        calls = counting(s)
        result = s.search(Query(image=angle_image(3), mode="text", k=3))
        assert calls == [("text", 1)] and result.modalities == ["text"] and "visual" not in result.timings
        assert result.hits[0].figure_id == "US1-B"
        # a visual-mode upload reads no words, a search by figure in text mode fetches no drawing vector
        s.search(Query(image=angle_image(3), mode="visual", k=3))
        assert reader.calls == 1 and calls[-1] == ("visual", 4)
        by_figure = s.search(Query(figure_id="US1-A", mode="text", k=3))
        assert by_figure.modalities == ["text"] and len(calls) == 2


def test_the_words_are_read_while_the_drawing_is_encoded(indexed):
    started = threading.Event()
    reader = ThreadReader(["hub"], wait_for=started)
    with SearchService(Collection.open(indexed), owns=True, upright_confident=None, reader=reader) as s:
        encode = s._encode

        def visual_sets_the_event(modality, inputs):
            if modality == "visual":
                started.set()  # the reader, waiting in its own thread, may answer now
            return encode(modality, inputs)

        s._encode = visual_sets_the_event
        result = s.search(Query(image=angle_image(58), mode="avg", k=5))
        assert result.query_words == ["hub"] and result.modalities == ["visual", "text"]
        assert reader.threads and reader.threads[0].startswith("figsearch-words")


def test_warm_loads_the_collections_encoders_and_the_words_reader(indexed):
    class WarmReader(ThreadReader):
        def warm(self):
            return True

    with SearchService(Collection.open(indexed), owns=True, upright_confident=None, reader=WarmReader([])) as s:
        assert s.warm() == ["visual", "text", "words"]
        assert set(s._encoders) == {"visual", "text"}
