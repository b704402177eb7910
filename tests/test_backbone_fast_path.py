"""The backbone encoder's faster path (stop 19): level poolings rewritten when a model is opened, and drawings
run in small chunks on worker threads. Both must give the vectors of the model as written."""

from __future__ import annotations

import numpy as np
import pytest

from backbone_helpers import drawing

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from figsearch.embed.encoders.backbone import BackboneEncoder, pooling_rewritten  # noqa: E402
from figsearch.errors import ModelUnavailable  # noqa: E402


def _gem_graph(relu6_first: bool):
    """x (B, 3, 8, 8) -> [Clip 0..6] -> Clip(min 0) -> Pow 3 -> ReduceMean over H, W (no keepdims), and beside it
    the plain mean of x with keepdims: the two poolings of ``train.backbone.Pooled``."""
    nodes, source = [], "x"
    if relu6_first:
        nodes.append(helper.make_node("Clip", ["x", "zero", "six"], ["r6"]))
        source = "r6"
    nodes += [
        helper.make_node("Clip", [source, "zero"], ["c"]),
        helper.make_node("Pow", ["c", "three"], ["p"]),
        helper.make_node("ReduceMean", ["p"], ["gem"], axes=[2, 3], keepdims=0),
        helper.make_node("ReduceMean", ["x"], ["avg"], axes=[2, 3], keepdims=1),
    ]
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in (("zero", 0.0), ("six", 6.0), ("three", 3.0))]
    graph = helper.make_graph(nodes, "gem", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, 8, 8])],
                              [helper.make_tensor_value_info("gem", TensorProto.FLOAT, ["B", 3]),
                               helper.make_tensor_value_info("avg", TensorProto.FLOAT, ["B", 3, 1, 1])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("relu6_first", [True, False])
def test_rewritten_poolings_compute_the_same(relu6_first):
    x = np.random.default_rng(0).normal(0, 3, (2, 3, 8, 8)).astype(np.float32)  # negatives and values above 6
    model = _gem_graph(relu6_first)
    expected = _run(model, x)
    assert pooling_rewritten(model) == 2
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert "Pow" not in ops and "ReduceMean" not in ops and ops.count("GlobalAveragePool") == 2
    # the clamp to >= 0 is dropped only after a ReLU6; on a raw input it stays (negatives must not be cubed)
    assert ops.count("Clip") == 1
    for got, want in zip(_run(model, x), expected):
        assert got.shape == want.shape
        assert np.allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_graph_without_those_poolings_is_left_alone():
    graph = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    before = model.SerializeToString()
    assert pooling_rewritten(model) == 0
    assert model.SerializeToString() == before


@pytest.fixture(scope="module")
def shipped():
    try:
        return BackboneEncoder("drawing-backbone3.onnx")
    except ModelUnavailable as exc:
        pytest.skip(f"the shipped model is missing from this checkout: {exc}")


def test_the_shipped_model_opens_rewritten_and_gives_its_vectors(shipped):
    assert shipped.rewritten_poolings == 17  # its 17 levels
    as_written = BackboneEncoder("drawing-backbone3.onnx", chunk=None, rewrite_pooling=False)
    assert as_written.rewritten_poolings == 0
    images = [drawing("ring" if i % 2 else "box", i) for i in range(9)]
    got, want = shipped.encode(images), as_written.encode(images)
    assert np.min(np.sum(got * want, axis=1)) > 0.99999
    assert shipped.identity == as_written.identity  # the same index key: the same vectors up to rounding


def test_chunks_on_worker_threads_give_the_single_runs_vectors(shipped):
    images = [drawing("ring" if i % 3 else "box", 50 + i) for i in range(7)]
    chunked = BackboneEncoder("drawing-backbone3.onnx", threads=2, chunk=2)
    whole = BackboneEncoder("drawing-backbone3.onnx", threads=2, chunk=None)
    assert chunked.workers == 2 and whole.workers == 1
    assert chunked.session.get_session_options().intra_op_num_threads == 1  # each worker runs on one thread
    assert whole.session.get_session_options().intra_op_num_threads == 2
    a, b = chunked.encode(images), whole.encode(images)
    assert a.shape == (7, chunked.dim)
    assert np.allclose(a, b, atol=1e-5)
    prepared = np.stack([chunked.prepare(image) for image in images])
    assert np.allclose(chunked.encode_prepared(prepared), a, atol=1e-6)
    one = BackboneEncoder("drawing-backbone3.onnx", threads=1)
    assert one.workers == 1 and one.session.get_session_options().intra_op_num_threads == 1
    assert np.allclose(one.encode(images), a, atol=1e-5)


def test_prepare_gives_prepare_greys_pixels(shipped):
    from PIL import ImageDraw

    from figsearch.embed.encoders.backbone import prepare_grey

    sheet = drawing("box", 7).resize((300, 700))
    ImageDraw.Draw(sheet).text((10, 5), "U.S. Patent  Jan. 5, 2021  Sheet 1 of 3  US D900,000 S", fill=0)
    for image in (drawing("ring", 3), drawing("box", 4).rotate(30, expand=True, fillcolor=255), sheet, sheet.convert("RGB")):
        assert np.array_equal(shipped.prepare(image), prepare_grey(image, shipped.image_size))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_encodes_with_workers_of_its_own(shipped):
    import multiprocessing

    images = [drawing("ring" if i % 2 else "box", 70 + i) for i in range(9)]
    expected = shipped.encode(images)  # the parent's pool now exists
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=lambda: results.put(shipped.encode(images)))  # forked: nothing pickled but the result
    child.start()
    try:
        got = results.get(timeout=120)  # with the parent's pool the child's map would wait forever
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    assert np.allclose(got, expected, atol=1e-6)
