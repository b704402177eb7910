"""How many threads one call of the server computes with, and the names its threads carry.

A server runs several calls at once, in several processes, so each encoder call gets one thread
(onnxruntime's and torch's intra-op threads); a search answers the same either way. The pools'
threads are named for the kernel, so a profile (top -H, py-spy, /proc) tells them apart.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from figsearch.errors import ModelUnavailable
from figsearch.records import Figure, FigureRole, Patent
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.server.state import COMPUTE_THREADS, BoundedPool, ServerState
from figsearch.server.uploads import Limits
from figsearch.store import Collection

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names are read from /proc (Linux)")


def drawing(seed: int) -> Image.Image:
    """A small line drawing, different for each seed."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (96, 96), 255)
    pen = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(4, 92, size=4))
        pen.line((x0, y0, x1, y1), fill=0, width=2)
    pen.rectangle((10 + seed % 7, 12, 60, 50 + seed % 9), outline=0, width=2)
    return image


@pytest.fixture(scope="module")
def backbone_collection(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER
    from figsearch.pipeline.index import update_collection

    root = tmp_path_factory.mktemp("server-threads") / "collection"
    with Collection.open(root, create=True) as c:
        for p in range(3):
            publication = f"US{p + 1}"
            records = []
            for i in range(3):
                path, digest = c.save_png("images", publication, f"D{i}", drawing(10 * p + i))
                records.append(Figure(f"{publication}-D{i}", publication, label=f"FIG. {i + 1}",
                                      role=FigureRole.DRAWING, sequence=i, image_path=path, image_sha256=digest,
                                      width=96, height=96))
            c.upsert_patent(Patent(publication, "US", publication[2:], "S1", title=f"design {p}",
                                   publication_date="2021-01-05"), records)
    with Collection.open(root, write=True) as c:
        try:
            update_collection(c, visual_model=DEFAULT_VISUAL_ENCODER, text_model="none")
        except ModelUnavailable as exc:  # the shipped model is missing from this checkout
            pytest.skip(f"the default visual encoder cannot be loaded here: {exc}")
    return root


def _upload_hits(service: SearchService, image: Image.Image) -> list[tuple[str, float]]:
    result = service.search(Query(image=image, mode="visual", k=9))
    return [(h.figure_id, h.score) for h in result.hits]


def test_one_thread_per_call_opens_the_visual_model_so_and_answers_the_same(backbone_collection):
    query = drawing(4).rotate(90, expand=True, fillcolor=255)
    with SearchService.open(backbone_collection) as default, SearchService.open(backbone_collection) as limited:
        limited.limit_threads(1)
        assert default.compute_threads is None and limited.compute_threads == 1
        expected, got = _upload_hits(default, query), _upload_hits(limited, query)
        options = limited._encoders["visual"].session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert default._encoders["visual"].session.get_session_options().intra_op_num_threads >= 1
    assert [f for f, _ in got] == [f for f, _ in expected]
    assert np.allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)


def test_limit_threads_sets_torchs_threads_when_torch_is_loaded(backbone_collection):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        with SearchService.open(backbone_collection) as service:
            service.limit_threads(1)
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_limit_threads_limits_numpys_blas_too(backbone_collection):
    """The visual mode's re-ranking multiplies matrices with numpy: OpenBLAS's own threads would spin beside
    the server's calls, so one thread per call covers BLAS too (where threadpoolctl is installed)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    if not blas:
        pytest.skip("numpy here has no BLAS that threadpoolctl can see")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):  # put back as it was afterwards
        with SearchService.open(backbone_collection) as service:
            service.limit_threads(1)
        assert {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"} == {1}


def test_limit_threads_refuses_nonsense(backbone_collection):
    with SearchService.open(backbone_collection) as service, pytest.raises(ValueError, match="threads"):
        service.limit_threads(0)


class Recording:
    """A backend that notes the order of limit_threads and warm."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def limit_threads(self, threads):
        self.calls.append(("limit_threads", threads))

    def warm(self):
        self.calls.append(("warm",))
        return []


def test_the_server_gives_each_call_one_thread_before_any_model_loads(tmp_path):
    with Collection.open(tmp_path / "c", create=True):
        pass
    backend = Recording()
    state = ServerState(backend, tmp_path / "c", Limits(), threads=2)
    assert backend.calls == [("limit_threads", COMPUTE_THREADS)] and COMPUTE_THREADS == 1
    state.start_warming()
    assert state.warmed.wait(20)
    state.close()
    assert backend.calls == [("limit_threads", 1), ("warm",)]


def test_a_backend_without_limit_threads_is_served_as_before(tmp_path):
    with Collection.open(tmp_path / "c", create=True):
        pass
    ServerState(object(), tmp_path / "c", Limits(), threads=2).close()


@linux
def test_pool_threads_carry_their_pools_name_for_the_kernel():
    def comm() -> str:
        return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()

    async def scenario():
        pool = BoundedPool("searches", 1, 0)
        try:
            return await pool.run(comm)
        finally:
            pool.shutdown()

    assert asyncio.run(scenario()) == "fs-searches"


@pytest.mark.parametrize("spec, expected", [("minilm", {"threads": 1}), ("use-multilingual", {})])
def test_one_thread_per_call_reaches_the_onnx_text_encoder(backbone_collection, monkeypatch, spec, expected):
    """minilm runs through onnxruntime (whose idle intra-op threads spin): a server's limit must reach it
    as it reaches the visual model; an encoder without a thread option gets none."""
    import figsearch.search.service as service_module

    seen = {}

    def fake_create_text(spec, **options):
        seen.update(spec=spec, options=options)
        raise ModelUnavailable("not loaded in this test")

    monkeypatch.setattr(service_module, "create_text", fake_create_text)
    with SearchService.open(backbone_collection) as service:
        monkeypatch.setattr(service, "_settings", lambda modality: {"spec": spec, "key": "x"})
        service.limit_threads(1)
        with pytest.raises(ModelUnavailable):
            service._encoder("text")
    assert seen == {"spec": spec, "options": expected}
