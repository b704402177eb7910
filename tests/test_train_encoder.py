"""Encoder training: loss, metric, batches, determinism, resume, the CLI, and the CLIP code path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")

from figsearch.cli import main  # noqa: E402
from figsearch.embed.encoders.drawing.model import DrawingModel  # noqa: E402
from figsearch.embed.encoders.drawing.net import NetConfig  # noqa: E402
from figsearch.train.architectures import create_cnn  # noqa: E402
from figsearch.train.metric import same_group_map  # noqa: E402
from figsearch.train.parts import epoch_batches, split_groups, supcon_loss  # noqa: E402
from figsearch.train.samples import Samples, samples_from_prepared  # noqa: E402
from figsearch.train.trainer import Trainer, TrainConfig  # noqa: E402
from figsearch.train.trainset import strip_running_header  # noqa: E402
from figsearch.records import Figure, FigureRole, Patent  # noqa: E402
from figsearch.store import Collection  # noqa: E402

TINY_NET = NetConfig(widths=(4, 8, 8, 8), depths=(1, 1, 1, 1), dim=8)
TINY_STYLE = NetConfig(widths=(4, 8, 8, 8), depths=(1, 1, 1, 1), dim=8, stem="conv2")
TINY_STYLE_OPTIONS = {"patch": 16, "max_patches": 6, "train_patches": 2}


def _sheet(patent: int, sheet: int, size: int = 96) -> Image.Image:
    """A drawing whose shape depends on the patent and whose position/size on the sheet."""
    image = Image.new("L", (size, size + 20), 255)
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(patent)
    points = [tuple(int(v) for v in rng.integers(10, size - 10, 2)) for _ in range(5)]
    shift = 3 * sheet
    draw.line([(x + shift, y + shift) for x, y in points], fill=0, width=2)
    if patent % 2:
        draw.ellipse((20 + shift, 20, 60 + shift, 60), outline=0, width=2)
    return image


def _build_collection(root: Path, patents: int = 8, sheets: int = 3) -> Path:
    with Collection.open(root, create=True) as c:
        for p in range(patents):
            pub = f"US{1000 + p}S1"
            figures = []
            for s in range(sheets + 1):
                role = FigureRole.FRONT_PAGE if s == 0 else FigureRole.DRAWING
                rel, sha = c.save_png("images", pub, f"D{s:05d}", _sheet(p, s))
                figures.append(Figure(f"{pub}-D{s:05d}", pub, role=role, sequence=s, image_path=rel, image_sha256=sha))
            c.upsert_patent(Patent(pub, "US", str(1000 + p), "S1"), figures)
    return root


def _samples(n_groups: int = 8, per: int = 3, size: int = 32) -> Samples:
    model = _model()
    prepared, groups, ids = [], [], []
    for g in range(n_groups):
        for s in range(per):
            prepared.append(model.prepare(_sheet(g, s)))
            groups.append(f"p{g}")
            ids.append(f"p{g}-{s}")
    return samples_from_prepared(prepared, groups, ids)


def _model(seed: int = 0, size: int = 32) -> DrawingModel:
    torch.manual_seed(seed)
    return create_cnn(TINY_NET, size, 1, style=TINY_STYLE, style_options=TINY_STYLE_OPTIONS)


def _weights(model: DrawingModel) -> np.ndarray:
    return np.concatenate([v.detach().flatten().numpy() for v in model.module.state_dict().values() if v.is_floating_point()])


# -- loss and metric ----------------------------------------------------------------------------


def test_supcon_loss_matches_hand_computation():
    z = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    t = 0.5
    s = (z @ z.T / t).numpy()
    # anchors 0 and 1 have one positive each; anchor 2 has none and is skipped
    l0 = -(s[0, 1] - np.log(np.exp(s[0, 1]) + np.exp(s[0, 2])))
    l1 = -(s[1, 0] - np.log(np.exp(s[1, 0]) + np.exp(s[1, 2])))
    assert float(supcon_loss(z, labels, t)) == pytest.approx((l0 + l1) / 2, rel=1e-5)


def test_supcon_loss_averages_over_several_positives():
    z = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [0.9, 0.3], [0.7, 0.7], [-1.0, 0.2]]), dim=1)
    labels = torch.tensor([5, 5, 5, 2])
    s = (z @ z.T / 0.1).numpy()
    expected = []
    for i in range(3):
        others = [j for j in range(4) if j != i]
        log_den = np.log(np.exp(s[i, others]).sum())
        expected.append(-np.mean([s[i, j] - log_den for j in range(3) if j != i]))
    assert float(supcon_loss(z, labels, 0.1)) == pytest.approx(np.mean(expected), rel=1e-5)


def test_same_group_map_agrees_with_ir_measures():
    ir_measures = pytest.importorskip("ir_measures")
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(30, 6)).astype(np.float32)
    groups = [f"g{i % 7}" for i in range(29)] + ["alone"]
    sims = vectors @ vectors.T
    qrels, run = [], []
    for q in range(30):
        for d in range(30):
            if d != q and groups[d] == groups[q]:
                qrels.append(ir_measures.Qrel(str(q), str(d), 1))
            if d != q:
                run.append(ir_measures.ScoredDoc(str(q), str(d), float(sims[q, d])))
    expected = ir_measures.calc_aggregate([ir_measures.AP @ 5], qrels, run)[ir_measures.AP @ 5]
    assert same_group_map(vectors, groups, k=5) == pytest.approx(expected, abs=1e-9)


def test_same_group_map_ranks_equal_scores_in_index_order():
    pytest.importorskip("ir_measures")
    # all four vectors equal: each query's first hit is the lowest other index, so only query 2
    # (first hit 0, same group) finds a relevant item at rank 1; trec_eval's doc-id tie rule would differ
    vectors = np.ones((4, 3), np.float32)
    assert same_group_map(vectors, ["a", "b", "a", "b"], k=1) == pytest.approx(0.25)


def test_epoch_batches_cover_each_image_once_and_keep_patents_together():
    groups = np.repeat(np.arange(10), 4)
    batches = epoch_batches(groups, batch_size=8, per_group=4, seed=1, epoch=0, min_batch=1)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(40))
    # chunks of 4 sheets of one patent stay together, so every batch holds positives
    assert all(len(set(groups[b].tolist())) <= 2 for b in batches)
    assert [b.tolist() for b in batches] == [b.tolist() for b in epoch_batches(groups, 8, 4, 1, 0, 1)]
    assert [b.tolist() for b in batches] != [b.tolist() for b in epoch_batches(groups, 8, 4, 1, 1, 1)]


def test_split_holds_out_only_multi_drawing_patents():
    groups = [f"m{i // 2}" for i in range(40)] + [f"s{i}" for i in range(10)]
    held = split_groups(groups, 0.25, seed=0)
    assert len(held) == 5 and all(g.startswith("m") for g in held)
    assert held == split_groups(groups, 0.25, seed=0)


def test_running_header_is_whitened_but_drawings_kept():
    sheet = Image.new("L", (400, 1000), 255)
    draw = ImageDraw.Draw(sheet)
    draw.rectangle((20, 70, 380, 82), fill=0)  # header text line
    draw.ellipse((100, 300, 300, 700), outline=0, width=4)
    stripped = np.asarray(strip_running_header(sheet))
    assert stripped[60:90].min() == 255 and stripped[300:700].min() == 0
    plain = Image.new("L", (400, 1000), 255)
    ImageDraw.Draw(plain).ellipse((100, 50, 300, 700), outline=0, width=4)
    assert np.array_equal(np.asarray(strip_running_header(plain)), np.asarray(plain))


# -- the trainer ----------------------------------------------------------------------------------


def _train(tmp_path: Path, name: str, epochs=3, seed=0, budget=None, resume=False) -> tuple[Trainer, DrawingModel]:
    model = _model(seed)
    config = TrainConfig(epochs=epochs, batch_size=12, per_group=3, seed=seed, val_fraction=0.25, time_budget=budget)
    trainer = Trainer(model, _samples(), config, checkpoint=tmp_path / f"{name}.ckpt", device="cpu")
    if resume:
        trainer.resume()
    trainer.fit()
    return trainer, model


def test_training_is_deterministic_for_a_seed(tmp_path):
    torch.set_num_threads(1)
    a, model_a = _train(tmp_path, "a")
    b, model_b = _train(tmp_path, "b")
    c, model_c = _train(tmp_path, "c", seed=1)
    assert np.array_equal(_weights(model_a), _weights(model_b))
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert not np.array_equal(_weights(model_a), _weights(model_c))
    assert len(a.history) == 3 and all(h["val_map"] is not None for h in a.history)


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    torch.set_num_threads(1)
    full, model_full = _train(tmp_path, "full", epochs=3)
    # stop after the first batch (time budget 0), then resume twice until done
    part, _ = _train(tmp_path, "part", epochs=3, budget=0.0)
    assert part.epoch == 0 and part.batch == 1
    resumed, model_resumed = _train(tmp_path, "part", epochs=3, resume=True)
    assert resumed.epoch == 3
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert np.array_equal(_weights(model_resumed), _weights(model_full))


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    from figsearch.errors import InputError

    _train(tmp_path, "x", epochs=1)
    model = _model()
    trainer = Trainer(model, _samples(), TrainConfig(epochs=1, batch_size=8), checkpoint=tmp_path / "x.ckpt", device="cpu")
    with pytest.raises(InputError, match="other settings"):
        trainer.resume()


# -- the command ----------------------------------------------------------------------------------


def test_train_encoder_command_writes_a_loadable_model_and_record(tmp_path):
    collection = _build_collection(tmp_path / "coll")
    out = tmp_path / "model.pt"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--epochs", "2", "--image-size", "32",
            "--input-scale", "1", "--batch-size", "12", "--val-fraction", "0.25", "--threads", "1", "--seed", "3"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "val mAP@50" in result.output and "epoch   2/2" in result.output
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["seed"] == 3 and record["data"]["drawings"] == 24 and record["data"]["patents"] == 8
    assert "train-encoder" in record["command"] and len(record["history"]) == 2
    # the layout/style balance is measured on the held-out patents and travels with the model
    assert record["branches"] == ["layout", "style"]
    assert record["branch_weights"]["layout"] == record["calibration"]["layout_weight"]
    assert len(record["calibration"]["by_layout_weight"]) == 7
    assert set(record["calibration"]["branches"]) == {"layout", "style"}
    assert "layout weight" in result.output
    assert Path(str(out) + ".ckpt").exists()
    model = DrawingModel.load(out)
    assert model.metadata["seed"] == 3 and model.settings["weights"] == record["branch_weights"]


def test_clip_fine_tuning_code_path_with_random_weights(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8, projection_dim=16,
    )
    weights = tmp_path / "tiny-clip"
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(weights)
    collection = _build_collection(tmp_path / "coll", patents=6, sheets=2)
    out = tmp_path / "clip-ft.pt"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--arch", "clip", "--clip-model", str(weights),
            "--epochs", "1", "--batch-size", "8", "--val-fraction", "0.34", "--threads", "1"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    model = DrawingModel.load(out)
    assert model.kind == "clip" and model.image_size == 32 and model.dim == 16
    before = transformers.CLIPVisionModelWithProjection.from_pretrained(weights).state_dict()
    after = model.module.clip.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the tower itself was fine-tuned


def test_clip_without_weights_gives_a_clear_error(tmp_path):
    pytest.importorskip("transformers")
    collection = _build_collection(tmp_path / "coll", patents=4, sheets=2)
    args = ["train-encoder", "-c", str(collection), "--out", str(tmp_path / "m.pt"), "--arch", "clip",
            "--clip-model", str(tmp_path / "no-such-folder")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "cannot load CLIP weights" in result.output


def test_interrupted_command_resumes_from_its_checkpoint(tmp_path):
    collection = _build_collection(tmp_path / "coll", patents=6, sheets=2)
    out = tmp_path / "model.pt"
    args = ["train-encoder", "-c", str(collection), "--out", str(out), "--epochs", "2", "--image-size", "32",
            "--input-scale", "1", "--batch-size", "8", "--val-fraction", "0.34", "--threads", "1", "--branches", "layout"]
    first = CliRunner().invoke(main, args + ["--time-budget", "0s"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["complete"] is False and record["epochs_done"] == 0
    prepared = Path(str(out) + ".ckpt.samples.npz")
    stamp = prepared.stat().st_mtime_ns
    second = CliRunner().invoke(main, args, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "resuming" in second.output and "from epoch 1 batch 2" in second.output
    assert prepared.stat().st_mtime_ns == stamp  # drawings prepared by the first run are reused
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["complete"] is True and record["epochs_done"] == 2 and record["branches"] == ["layout"]
