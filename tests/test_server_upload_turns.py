"""An uploaded drawing is matched in four quarter turns. The ``backbone`` encoder prepares the turns
from one pass over the drawing's ink (``prepare_turns``) instead of turning and preparing the whole
image four times; these tests hold it to the general path pixel for pixel, vector for vector, and a
search's hits and scores to what they were before."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

from figsearch.embed.encoders.backbone import prepare_grey, prepare_turns
from figsearch.search.query import Query
from figsearch.search.service import QUERY_ROTATIONS

ANGLES = (0, 90, 180, 270)


def _general(image, angles, size):
    """What the service did before: turn the whole image, prepare each turn."""
    return np.stack([prepare_grey(image.rotate(a, expand=True, fillcolor=255) if a else image, size) for a in angles])


def _drawing(width: int, height: int, seed: int, *, header: str | None = None, edge: bool = False,
             mode: str = "L") -> Image.Image:
    """Lines and boxes in a margin; ``header``: a thin band of 'text' along that side, a wide gap
    from the drawing (a running header when it is on top); ``edge``: ink touching the border."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, x1 = sorted(rng.integers(width // 5, 4 * width // 5, 2))
        y0, y1 = sorted(rng.integers(height // 4, 4 * height // 5, 2))
        draw.rectangle((int(x0), int(y0), int(x1) + 2, int(y1) + 2), outline=int(rng.integers(0, 120)), width=2)
        draw.line((int(x0), int(y1), int(x1), int(y0)), fill=int(rng.integers(150, 230)), width=1)
    if header == "top":
        draw.rectangle((width // 10, height // 50, width // 2, height // 50 + 2), fill=0)
    elif header == "bottom":
        draw.rectangle((width // 10, height - height // 50 - 3, width // 2, height - height // 50 - 1), fill=0)
    elif header == "left":
        draw.rectangle((width // 50, height // 10, width // 50 + 2, height // 2), fill=0)
    elif header == "right":
        draw.rectangle((width - width // 50 - 3, height // 10, width - width // 50 - 1, height // 2), fill=0)
    if edge:
        draw.line((0, height // 2, width - 1, height // 2), fill=0)
        draw.line((width // 3, 0, width // 3, height - 1), fill=0)
    return image.convert(mode)


DRAWINGS = [
    pytest.param(lambda: _drawing(301, 457, 1), id="portrait-odd"),
    pytest.param(lambda: _drawing(640, 215, 2), id="landscape"),
    pytest.param(lambda: _drawing(400, 400, 3), id="square"),
    pytest.param(lambda: _drawing(120, 95, 4), id="smaller-than-the-model-input"),
    pytest.param(lambda: _drawing(350, 520, 5, edge=True), id="ink-at-the-edges"),
    pytest.param(lambda: _drawing(500, 700, 6, header="top"), id="header-on-top"),
    pytest.param(lambda: _drawing(500, 700, 7, header="bottom"), id="header-below"),
    pytest.param(lambda: _drawing(700, 500, 8, header="left"), id="header-left"),
    pytest.param(lambda: _drawing(700, 500, 9, header="right"), id="header-right"),
    pytest.param(lambda: Image.new("L", (90, 60), 255), id="blank"),
    pytest.param(lambda: _drawing(333, 222, 10, mode="RGB"), id="rgb"),
    pytest.param(lambda: _drawing(260, 380, 11, mode="1"), id="bilevel"),
    # ink at the edges keeps the whole image, so these sides are the square's: the resize's scale is a
    # whole number (448 / 224), a half (2352 / 224 = 10.5: pixel borders fall on box edges), or below one
    # (upsampled, LANCZOS); the turns that are wider than high skip the white rows' first pass
    pytest.param(lambda: _drawing(448, 150, 12, edge=True), id="landscape-whole-scale"),
    pytest.param(lambda: _drawing(2352, 900, 13, edge=True), id="landscape-half-scale"),
    pytest.param(lambda: _drawing(901, 2352, 14, edge=True), id="portrait-half-scale"),
    pytest.param(lambda: _drawing(150, 61, 15, edge=True), id="landscape-upsampled"),
    # the quarter turns are resized in the drawing's own orientation and their small result turned
    pytest.param(lambda: _drawing(61, 150, 16, edge=True), id="portrait-upsampled"),
    pytest.param(lambda: _drawing(1037, 2401, 17, edge=True), id="portrait-odd-scale"),
    pytest.param(lambda: _drawing(1680, 1680, 18, edge=True), id="square-whole-scale"),
    pytest.param(lambda: _drawing(97, 97, 19, edge=True), id="square-upsampled"),
]


@pytest.mark.parametrize("make", DRAWINGS)
@pytest.mark.parametrize("size", [224, 64])
def test_prepared_turns_are_the_general_path_pixel_for_pixel(make, size):
    image = make()
    assert np.array_equal(prepare_turns(image, ANGLES, size), _general(image, ANGLES, size))


def test_a_header_is_whitened_in_the_turn_that_has_it_on_top_only():
    """The fixture is what it claims: a band on the left is a header once the drawing is turned so
    that the left side is on top (270 degrees, clockwise), and not in the other turns."""
    image = _drawing(700, 500, 9, header="left")
    plain = _drawing(700, 500, 9)
    turns, without = prepare_turns(image, ANGLES, 224), prepare_turns(plain, ANGLES, 224)
    assert [bool(np.array_equal(a, b)) for a, b in zip(turns, without)] == [False, False, False, True]


def test_other_angles_and_repeated_ones_take_the_general_path():
    image = _drawing(300, 410, 12)
    angles = (0, 45, 90, 90, -90, 450)
    assert np.array_equal(prepare_turns(image, angles, 224), _general(image, angles, 224))


@pytest.fixture(scope="module")
def backbone():
    pytest.importorskip("onnxruntime")
    from figsearch.embed.catalog import create_visual

    return create_visual("backbone:drawing-backbone2.onnx", threads=1)


def test_encoded_turns_are_the_vectors_of_the_turned_drawings_to_the_bit(backbone):
    for seed, header in ((13, None), (14, "right")):
        image = _drawing(420, 610, seed, header=header)
        turned = [image.rotate(a, expand=True, fillcolor=255) if a else image for a in QUERY_ROTATIONS]
        assert np.array_equal(backbone.encode_turns(image, QUERY_ROTATIONS), backbone.encode(turned))


def test_turns_encode_from_several_threads_at_once(backbone):
    """``thread_safe``: the service calls it without a lock, so two uploads of one process run side
    by side; each thread gets the vectors it gets alone."""
    assert backbone.thread_safe
    images = [_drawing(300 + 40 * i, 420, 20 + i) for i in range(4)]
    alone = [backbone.encode_turns(image, ANGLES) for image in images]
    together: dict[int, list] = {}
    start = threading.Barrier(len(images))

    def run(i):
        start.wait(10)
        together[i] = [backbone.encode_turns(images[i], ANGLES) for _ in range(3)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for i, vectors in enumerate(alone):
        assert all(np.array_equal(vectors, again) for again in together[i])


def test_an_upload_finds_the_same_hits_with_the_same_scores_as_before(collection_dir, backbone, monkeypatch):
    """A fixed drawing searched in every turn with the new turns and with the general path (the service as
    it was before): the same hits, in the same order, with the same scores."""
    from _search_helpers import hand_collection

    from figsearch.embed.encoders.backbone import BackboneEncoder
    from figsearch.pipeline.index import update_collection
    from figsearch.search.service import SearchService
    from figsearch.store import Collection

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="backbone:drawing-backbone2.onnx", text_model="fake-words")
    query = _drawing(380, 520, 30, header="bottom")

    def hits(service):
        result = service.search(Query(image=query, mode="visual", k=20))
        return [(h.figure_id, h.score) for h in result.hits]

    def every_turn():  # all four turns (by default an upload is searched upright alone)
        return SearchService(Collection.open(collection_dir), owns=True, upright_confident=None)

    with every_turn() as service:
        service.limit_threads(1)
        now = hits(service)
    with monkeypatch.context() as patched:
        patched.delattr(BackboneEncoder, "encode_turns")  # the service falls back to turning the image itself
        with every_turn() as service:
            service.limit_threads(1)
            before = hits(service)
    assert now and now == before


def test_the_upright_first_option_keeps_every_turn_unless_the_upright_match_is_close(collection_dir, backbone):  # noqa: ARG001
    """``SearchService(upright_confident=T)``: a drawing whose upright match scores at least T is searched
    with its upright vector alone; below T, or with ``Query.all_turns``, with every turn: the same hits
    and scores as without the rule (the other turns encoded apart give the same vectors to the bit)."""
    from _search_helpers import hand_collection

    from figsearch.pipeline.index import update_collection
    from figsearch.search.service import UPRIGHT_CONFIDENT, SearchService
    from figsearch.store import Collection

    assert UPRIGHT_CONFIDENT is not None
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="backbone:drawing-backbone2.onnx", text_model="fake-words")
    query = _drawing(380, 520, 31)

    def search(threshold, all_turns=False):
        with SearchService(Collection.open(collection_dir), owns=True, upright_confident=threshold) as service:
            service.limit_threads(1)
            # plain cosines (no re-ranking), so that a hit's score is its match with the query's vectors
            result = service.search(Query(image=query, mode="visual", k=20, all_turns=all_turns, rerank=False))
            again = service.search(Query(image=query, mode="visual", k=20, all_turns=all_turns, rerank=False))  # cached
            assert [(h.figure_id, h.score) for h in again.hits] == [(h.figure_id, h.score) for h in result.hits]
            return result

    default, never, always, opted_out = search(None), search(2.0), search(-2.0), search(-2.0, all_turns=True)
    assert default.timings["turns"] == never.timings["turns"] == opted_out.timings["turns"] == len(QUERY_ROTATIONS)
    assert [(h.figure_id, h.score) for h in never.hits] == [(h.figure_id, h.score) for h in default.hits]
    assert [(h.figure_id, h.score) for h in opted_out.hits] == [(h.figure_id, h.score) for h in default.hits]
    assert always.timings["turns"] == 1 and -1.0 <= always.timings["upright_score"] <= 1.0
    # with the upright vector alone, each figure scores its match with that vector (<= its best over the turns)
    best = {h.figure_id: h.score for h in default.hits}
    assert always.hits and all(h.score <= best.get(h.figure_id, h.score) + 1e-6 for h in always.hits)
    assert always.timings["upright_score"] == pytest.approx(max(h.score for h in always.hits), abs=1e-4)


def test_an_upload_new_to_the_collection_is_searched_upright_alone_unless_it_asks_for_every_turn(
        collection_dir, backbone):  # noqa: ARG001
    """Stop 21: by default an uploaded drawing is searched in its upright orientation alone, however weakly
    it matches (a drawing new to the collection: before, every turn); ``Query.all_turns`` searches every
    turn, with the hits and scores of a service that always does."""
    from _search_helpers import hand_collection

    from figsearch.pipeline.index import update_collection
    from figsearch.search.service import SearchService
    from figsearch.store import Collection

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="backbone:drawing-backbone2.onnx", text_model="fake-words")
    query = _drawing(380, 520, 32)

    def search(service, **options):
        service.limit_threads(1)
        result = service.search(Query(image=query, mode="visual", k=20, rerank=False, **options))
        return result, [(h.figure_id, h.score) for h in result.hits]

    with SearchService.open(collection_dir) as service:
        plain, plain_hits = search(service)
        asked, asked_hits = search(service, all_turns=True)
    with SearchService(Collection.open(collection_dir), owns=True, query_rotations=(0,)) as service:
        _, upright_hits = search(service)
    with SearchService(Collection.open(collection_dir), owns=True, upright_confident=None) as service:
        _, every_hits = search(service)
    assert plain.timings["upright_score"] < 0.9  # not nearly a figure of the collection: stop 17's rule kept every turn
    assert plain.timings["turns"] == 1 and plain_hits == upright_hits
    assert asked.timings["turns"] == len(QUERY_ROTATIONS) and asked_hits == every_hits
