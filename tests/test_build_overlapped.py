"""The overlapped build (ingest, reading and embedding at once, figsearch.pipeline.overlapped)
gives the collection and the search results of the one-process build (``jobs=1``)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from collection_check import compare, snapshot
from ingest_helpers import write_ep_document
from ocr_drawings import block_diagram, drawing, two_figures

pytest.importorskip("tesserocr")
pytest.importorskip("faiss")
pytest.importorskip("torch")

import figsearch  # noqa: E402
from figsearch.pipeline import building  # noqa: E402


def _documents(root):
    """Three EP documents; sheets with numerals and labels, one sheet of two labelled figures, one
    block diagram (words printed in the drawing go into its text vector)."""
    sheets = {
        "EP1234561A1": [drawing(["10", "12", "14"], "FIG. 1"), two_figures(["12", "38"], ["14a", "102"])],
        "EP1234562A1": [drawing(["10", "14"], "FIG. 1"), drawing(["12"], "FIG. 2"),
                        block_diagram(["PUMP CONTROL UNIT", "PRINTER"], ("10", "12"), "FIG. 3")],
        "EP1234563A1": [drawing(["12", "14"], "FIG. 1")],
    }
    for number, images in sheets.items():
        folder = root / number
        write_ep_document(folder, figures=len(images), number=number[2:9])
        for i, image in enumerate(images, 1):
            image.convert("1").save(folder / f"imgf{i:04d}.tif", compression="group4")
    return root


def _vectors(root) -> dict:
    db = sqlite3.connect(f"file:{root / 'figsearch.sqlite'}?mode=ro", uri=True)
    try:
        return {(f, m, e): np.frombuffer(v, np.float32)
                for f, m, e, v in db.execute("SELECT figure_id, modality, encoder, vector FROM embeddings")}
    finally:
        db.close()


def _thread_limits() -> dict:
    """The thread count of each BLAS/OpenMP library loaded in this process, by file."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    base = tmp_path_factory.mktemp("overlap")
    docs = _documents(base / "docs")
    one = building.build([docs], base / "one", jobs=1)
    streamed, loads = [], []
    real = building._stream
    from figsearch.pipeline import index

    with pytest.MonkeyPatch.context() as patch:  # see that the stream did the reading and the visual embedding
        patch.setattr(building, "_stream", lambda *a, **k: streamed.append(real(*a, **k)) or streamed[-1])
        for name in ("create_visual", "create_text"):  # and that the index stage after it loads no model again
            patch.setattr(index, name, lambda spec, _name=name, _real=getattr(index, name): loads.append(_name) or _real(spec))
        two = building.build([docs], base / "two", jobs=2, overlap=True)
    assert loads == []
    assert streamed and streamed[0][1].signs.figures == two.signs.figures > 0
    assert streamed[0][1].embedded == {e.modality: e for e in two.index.embedded}["visual"].embedded
    # the cut figures mixed with their sheet's vector in the stream, none left for the index stage's step
    assert streamed[0][1].mixed == {e.modality: e for e in two.index.embedded}["visual"].mixed > 0
    assert streamed[0][1].texts == {e.modality: e for e in two.index.embedded}["text"].embedded > 0
    return base, one, two


def test_the_overlapped_build_streams_and_gives_the_same_collection(both, monkeypatch):
    base, one, two = both
    assert one.signs.split_sheets == two.signs.split_sheets == 1
    assert one.signs.figures == two.signs.figures and one.signs.links == two.signs.links
    visual = {e.modality: e for e in two.index.embedded}["visual"]
    assert visual.embedded == {e.modality: e for e in one.index.embedded}["visual"].embedded > 0
    # every table (figures, cut figures, signs, links, glossary, notes, ledger) and every stored file
    ref, got = snapshot(base / "one"), snapshot(base / "two")
    ref.tables.pop("embeddings"), got.tables.pop("embeddings")
    difference = compare(ref, got)
    assert difference.equal, str(difference)
    # vectors: the same rows, equal to float rounding (batches and threads differ)
    a, b = _vectors(base / "one"), _vectors(base / "two")
    assert a.keys() == b.keys() and any(k[1] == "visual" for k in a)
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-6


def test_the_overlapped_build_computes_each_vector_once(both):
    # the stream's text vectors once left out the drawing words, and the index stage computed them again
    base, _, two = both
    db = sqlite3.connect(f"file:{base / 'two' / 'figsearch.sqlite'}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT COUNT(*) FROM figure_words").fetchone()[0] > 0
        rows = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        saved = int(db.execute("SELECT value FROM meta WHERE key = 'setting:embeddings_rowid_seq'").fetchone()[0])
        cut = db.execute("SELECT COUNT(*) FROM figures WHERE parent_id IS NOT NULL").fetchone()[0]
    finally:
        db.close()
    # the default encoder's sheet context (stop 27): the stream stores each cut figure's vector mixed with its
    # sheet's (the sheet encoded there, once, from the pixels it decoded to cut it; stop 28), so the index stage's
    # mixing step finds nothing left to mix: each vector saved once
    mixed = {e.modality: e for e in two.index.embedded}["visual"].mixed
    assert mixed == cut > 0
    assert saved == rows, f"{saved - rows} vectors saved twice"


def test_the_overlapped_build_gives_the_same_search_results(both):
    base, _, _ = both
    queries = sorted({f for f, m, _ in _vectors(base / "one") if m == "visual"})
    assert len(queries) >= 6
    with figsearch.open(base / "one") as one, figsearch.open(base / "two") as two:
        for query in queries:
            for mode in ("visual", "text", "avg"):
                left, right = one.search(figure=query, mode=mode, k=10), two.search(figure=query, mode=mode, k=10)
                assert [h.figure_id for h in left.hits] == [h.figure_id for h in right.hits], (query, mode)
                assert np.allclose([h.score for h in left.hits], [h.score for h in right.hits], atol=1e-5)
        words = one.search(text="lid and base", mode="text", k=10)
        assert [h.figure_id for h in words.hits] == [h.figure_id for h in two.search(text="lid and base", mode="text", k=10).hits]


def test_one_job_runs_the_stages_in_turn_even_when_overlap_is_asked(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(building, "_stream", lambda *a, **k: called.append(1))
    write_ep_document(tmp_path / "docs" / "EP1234567A1", figures=1)
    report = building.build([tmp_path / "docs"], tmp_path / "c", jobs=1, overlap=True)
    assert not called and report.signs.figures > 0


def test_the_one_thread_limit_puts_every_pool_back_as_it_was():
    # the build limits this process's pools while it streams texts; it once "restored" them to the core
    # count instead, and FAISS's next training in the same process spun forever under OMP_THREAD_LIMIT=1
    import torch

    from figsearch.pipeline.overlapped import _one_thread_here

    torch.set_num_threads(2)
    before = _thread_limits()
    with _one_thread_here():
        assert set(_thread_limits().values()) == {1}
    assert _thread_limits() == before
    assert torch.get_num_threads() == 2


def test_the_text_encoder_for_after_the_readers_sleeps_instead_of_spinning_and_gives_the_same_vectors():
    # once every drawing is read the writer embeds texts on both cores' threads, with onnxruntime's
    # spinning off; the one-thread encoder decides whether there is such an encoder at all
    from concurrent.futures import Future

    from figsearch.embed.catalog import create_text
    from figsearch.embed.encoders.text import MiniLMOnnxEncoder
    from figsearch.pipeline.overlapped import _text_encoder_alone

    one_thread = Future()
    one_thread.set_result(create_text("minilm", threads=1))
    if not isinstance(one_thread.result(), MiniLMOnnxEncoder):
        pytest.skip("minilm is not running through onnxruntime here")
    encoder = _text_encoder_alone("minilm", one_thread)
    options = encoder.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == create_text("minilm").session.get_session_options().intra_op_num_threads
    texts = ["a thermal head 14 presses the ribbon 12", "FIG. 2 is a side view", "x " * 300]
    assert np.abs(encoder.encode(texts) - one_thread.result().encode(texts)).max() <= 1e-6
    other = Future()
    other.set_result(object())  # use-multilingual, sentence-transformers: no second encoder
    assert _text_encoder_alone("minilm", other) is None


def test_figsearch_build_overlaps_the_stages_unless_told_not_to(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from figsearch.cli import main

    streamed = []
    real = building._stream
    monkeypatch.setattr(building, "_stream", lambda *a, **k: streamed.append(1) or real(*a, **k))
    write_ep_document(tmp_path / "docs" / "EP1234567A1", figures=2)
    runner = CliRunner()
    turn = runner.invoke(main, ["build", str(tmp_path / "docs"), "-c", str(tmp_path / "a"), "-q", "-j", "2", "--no-overlap"])
    assert turn.exit_code == 0, turn.output
    assert not streamed
    over = runner.invoke(main, ["build", str(tmp_path / "docs"), "-c", str(tmp_path / "b"), "-q", "-j", "2"])
    assert over.exit_code == 0, over.output
    assert streamed and "is ready" in over.output
    # the same summaries, times aside (the ingest's line, the indexes' lines): signs read, vectors embedded

    def summary(output: str, root) -> list[str]:
        return [line.replace(str(root), "") for line in output.splitlines()[1:] if " index: " not in line]

    assert summary(turn.output, tmp_path / "a") == summary(over.output, tmp_path / "b")


def test_the_readers_start_before_any_drawing_and_yield_to_the_writer():
    """The overlapped build's readers start with the ingest (their imports and engines ready when the first
    drawings are) and run at READER_NICENESS, so that the writer keeps up with them."""
    import os
    import time
    from pathlib import Path

    from figsearch.ocr import create_engine
    from figsearch.pipeline.overlapped import READER_NICENESS, _Readers

    if not Path("/proc/self/stat").exists():
        pytest.skip("reads the readers' niceness from /proc")

    def niceness(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])

    readers = _Readers(create_engine(None).name, 2, 8)
    try:
        wanted = min(19, os.nice(0) + READER_NICENESS)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = list(readers.pool._processes or {})
            if len(pids) == 2 and all(niceness(pid) == wanted for pid in pids):
                break
            time.sleep(0.2)
        assert len(pids) == 2 and [niceness(pid) for pid in pids] == [wanted, wanted]
        assert not readers.in_flight  # no drawing was submitted
    finally:
        readers.close()


def test_the_readers_prepare_the_visual_encoders_input_as_the_encoder_does():
    """The overlapped build's readers prepare the backbone encoder's input (``signs.backbone_input``) so
    that the writer need not decode the sheet: the same pixels as the encoder's own ``prepare``, and the
    same vectors to the bit as ``encode`` of the images (``_Writer.flush``)."""
    from PIL import Image

    from figsearch.embed.base import l2_normalise
    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER, create_visual
    from figsearch.pipeline.embed import encoder_input
    from figsearch.pipeline.signs import backbone_input

    encoder = create_visual(DEFAULT_VISUAL_ENCODER, threads=1)
    sheets = [drawing(["10", "12"], "FIG. 1"), two_figures(["12", "38"], ["14a", "102"]).convert("1"),
              block_diagram(["PUMP"], ("10",), "FIG. 3").convert("RGB"),
              drawing(["14"], "FIG. 2").transpose(Image.Transpose.ROTATE_90)]
    prepared = [backbone_input(encoder.image_size, sheet) for sheet in sheets]
    for sheet, mine in zip(sheets, prepared):
        assert np.array_equal(mine, encoder.prepare(encoder_input(sheet)))
    expected = encoder.encode([encoder_input(sheet) for sheet in sheets])
    assert np.array_equal(l2_normalise(encoder.encode_prepared(np.stack(prepared))), expected)
