"""The ``lines-head`` kind of the drawing encoder: starts as ``lines``, trains reproducibly, resumes, loads."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")

from figsearch.cli import main  # noqa: E402
from figsearch.embed import VISUAL_ENCODERS  # noqa: E402
from figsearch.embed.encoders.drawing import DrawingEncoder  # noqa: E402
from figsearch.embed.encoders.drawing.model import DrawingModel  # noqa: E402
from figsearch.embed.encoders.lines import LinesEncoder  # noqa: E402
from figsearch.train.architectures import create_lines_head  # noqa: E402
from figsearch.train.samples import prepare_samples  # noqa: E402
from figsearch.train.trainer import Trainer, TrainConfig  # noqa: E402
from figsearch.errors import ModelUnavailable  # noqa: E402
from figsearch.records import Figure, FigureRole, Patent  # noqa: E402
from figsearch.store import Collection  # noqa: E402


def _sheet(patent: int, sheet: int) -> Image.Image:
    """A drawing whose strokes depend on the patent (hatching, weight) and whose framing on the sheet."""
    image = Image.new("L", (160, 200), 255)
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(patent)
    width = 1 + patent % 3
    shift = 6 * sheet
    for _ in range(4):
        x, y = (int(v) for v in rng.integers(10, 100, 2))
        draw.rectangle((x + shift, y, x + shift + 50, y + 40), outline=0, width=width)
    for k in range(0, 60, 4 + 2 * (patent % 4)):  # hatching, spaced by patent
        draw.line((20 + k, 140, 40 + k, 180), fill=0, width=1)
    return image


def _items(patents: int = 8, sheets: int = 3) -> list[tuple]:
    return [(f"p{p}-{s}", f"p{p}", partial(_sheet, p, s)) for p in range(patents) for s in range(sheets)]


@pytest.fixture(scope="module")
def samples():
    return prepare_samples(create_lines_head(dim=32, copies=1), _items())


def _train(samples, tmp_path, name, seed=0, epochs=3, budget=None, resume=False):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = create_lines_head(dim=32, copies=1, hidden=16)
    config = TrainConfig(epochs=epochs, batch_size=12, lr=5e-3, warmup_epochs=0.0, seed=seed, val_fraction=0.25,
                         time_budget=budget, patience=0)
    trainer = Trainer(model, samples, config, checkpoint=tmp_path / f"{name}.ckpt", device="cpu")
    if resume:
        trainer.resume()
    trainer.fit()
    return trainer, model


def _weights(model: DrawingModel) -> np.ndarray:
    return np.concatenate([v.detach().flatten().numpy() for v in model.module.state_dict().values()])


def test_untrained_head_is_the_lines_encoder():
    images = [_sheet(p, 0) for p in range(3)]
    model = create_lines_head()
    ours = model.encode([model.prepare(image) for image in images])
    assert ours.shape == (3, 256)
    assert np.allclose(ours, LinesEncoder().encode(images), atol=1e-5)


def test_training_samples_hold_the_drawing_and_its_augmented_copies(samples):
    assert samples.features.shape == (24, 2, 2395)
    assert not np.array_equal(samples.features[0, 0], samples.features[0, 1])
    again = prepare_samples(create_lines_head(dim=32, copies=1), _items()[:2])
    assert np.array_equal(again.features, samples.features[:2])  # copies are seeded, not random


def test_training_is_deterministic_for_a_seed_and_learns(samples, tmp_path):
    a, model_a = _train(samples, tmp_path, "a")
    b, model_b = _train(samples, tmp_path, "b")
    c, model_c = _train(samples, tmp_path, "c", seed=1)
    assert np.array_equal(_weights(model_a), _weights(model_b))
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert not np.array_equal(_weights(model_a), _weights(model_c))
    assert len(a.history) == 3 and all(h["val_map"] is not None for h in a.history)
    assert a.history[-1]["loss"] < a.history[0]["loss"]


def test_interrupted_run_resumes_to_the_same_result(samples, tmp_path):
    full, model_full = _train(samples, tmp_path, "full")
    part, _ = _train(samples, tmp_path, "part", budget=0.0)
    assert part.epoch == 0 and part.batch == 1
    resumed, model_resumed = _train(samples, tmp_path, "part", resume=True)
    assert resumed.epoch == 3
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert np.array_equal(_weights(model_resumed), _weights(model_full))


def test_model_file_loads_as_the_drawing_encoder(tmp_path):
    model = create_lines_head(dim=16, hidden=8)
    with torch.no_grad():
        model.module.mlp[2].weight.normal_()  # a trained head differs from the lines projection
    path = tmp_path / "head.pt"
    model.save(path, metadata={"note": "test"})
    encoder = VISUAL_ENCODERS.create("drawing", model=str(path), device="cpu")
    images = [_sheet(p, 1) for p in range(4)]
    vectors = encoder.encode(images)
    assert vectors.shape == (4, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.identity["kind"] == "lines-head" and encoder.identity["branches"] == ["lines"]
    assert np.allclose(vectors, model.encode([model.prepare(image) for image in images]), atol=1e-6)


def test_missing_model_file_is_model_unavailable(tmp_path, monkeypatch):
    with pytest.raises(ModelUnavailable, match="absent.pt"):
        DrawingEncoder(tmp_path / "absent.pt")
    import figsearch.embed.encoders.drawing as drawing

    monkeypatch.setattr(drawing, "default_model_path", lambda: tmp_path / "drawing-encoder.pt")
    with pytest.raises(ModelUnavailable, match="lacks the shipped default model"):
        VISUAL_ENCODERS.create("drawing")


def _collection(root, patents=6, sheets=2):
    with Collection.open(root, create=True) as c:
        for p in range(patents):
            pub = f"US{2000 + p}S1"
            figures = []
            for s in range(1, sheets + 1):
                rel, sha = c.save_png("images", pub, f"D{s:05d}", _sheet(p, s))
                figures.append(Figure(f"{pub}-D{s:05d}", pub, role=FigureRole.DRAWING, sequence=s, image_path=rel,
                                      image_sha256=sha))
            c.upsert_patent(Patent(pub, "US", str(2000 + p), "S1"), figures)
    return root


def test_train_encoder_command_trains_a_lines_head(tmp_path):
    collection = _collection(tmp_path / "coll")
    out = tmp_path / "head.pt"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--arch", "lines-head", "--copies", "1",
            "--epochs", "2", "--batch-size", "8", "--val-fraction", "0.34", "--threads", "1", "--seed", "5"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "val mAP@50" in result.output and "epoch   2/2" in result.output
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["arch"] == "lines-head" and record["seed"] == 5 and record["branches"] == ["lines"]
    assert "--arch lines-head" in record["command"] and len(record["history"]) == 2
    model = DrawingModel.load(out)
    assert model.kind == "lines-head" and model.settings["lines"]["copies"] == 1
    wrong = CliRunner().invoke(main, args[:5] + ["--copies", "1"])
    assert wrong.exit_code == 2 and "lines-head only" in wrong.output
