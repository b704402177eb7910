"""The `drawing` visual encoder: model files, registry, preprocessing, batching, errors, the shipped model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")

from figsearch.embed import VISUAL_ENCODERS  # noqa: E402
from figsearch.embed.encoders.drawing import DrawingEncoder, default_model_path  # noqa: E402
from figsearch.embed.encoders.drawing.model import DrawingModel, ink_map  # noqa: E402
from figsearch.embed.encoders.drawing.net import NetConfig  # noqa: E402
from figsearch.train.architectures import create_clip, create_cnn  # noqa: E402
from figsearch.embed.preprocess import prepare_drawing  # noqa: E402
from figsearch.errors import InputError, ModelUnavailable  # noqa: E402

TINY = NetConfig(widths=(4, 8, 8, 16), depths=(1, 1, 1, 1), dim=16)
TINY_STYLE = NetConfig(widths=(4, 8, 8, 8), depths=(1, 1, 1, 1), dim=8, stem="conv2")


def _drawing(seed: int, size=(300, 420)) -> Image.Image:
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        x0, y0 = rng.integers(20, 150, 2)
        draw.rectangle((int(x0), int(y0), int(x0) + 100, int(y0) + 80), outline=0, width=1)
    return image


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    model = create_cnn(TINY, image_size=32, input_scale=2, style=TINY_STYLE, style_options={"patch": 16})
    path = tmp_path / "tiny.pt"
    model.save(path, metadata={"note": "test"})
    return path


def test_ink_map_is_prepare_drawing_max_pooled():
    image = _drawing(1)
    grey = np.asarray(prepare_drawing(image, 64))
    expected = (255 - grey).reshape(32, 2, 32, 2).max(axis=(1, 3))
    assert np.array_equal(ink_map(image, 32, 2), expected)
    # a one-pixel line survives max-pooling at full strength where averaging would halve it
    line = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(line).line((0, 31, 63, 31), fill=0)
    line.putpixel((0, 0), 0)  # keeps margins from being trimmed away
    line.putpixel((63, 63), 0)
    assert ink_map(line, 32, 2).max() >= 200


def test_registry_builds_the_encoder_from_a_model_file(model_file):
    encoder = VISUAL_ENCODERS.create("drawing", model=str(model_file), device="cpu")
    vectors = encoder.encode([_drawing(i) for i in range(5)])
    assert vectors.shape == (5, 24) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.identity["name"] == "drawing" and len(encoder.identity["model_sha256"]) == 16


def test_batching_does_not_change_vectors(model_file):
    images = [_drawing(i) for i in range(7)]
    one = DrawingEncoder(model_file, device="cpu", batch_size=7).encode(images)
    small = DrawingEncoder(model_file, device="cpu", batch_size=2).encode(images)
    assert np.allclose(one, small, atol=1e-5)


def test_flip_average_makes_the_layout_branch_mirror_invariant(tmp_path):
    # (style patches sit on a grid anchored at the drawing's corner, so they are only nearly invariant)
    torch.manual_seed(0)
    path = tmp_path / "layout.pt"
    create_cnn(TINY, image_size=32, input_scale=2).save(path)
    encoder = DrawingEncoder(path, device="cpu", flip_average=True)
    image = _drawing(4)
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    a, b = encoder.encode([image, mirrored])
    assert np.allclose(a, b, atol=1e-4)
    assert encoder.identity["flip_average"] is True


def test_saved_model_round_trips_with_metadata(model_file):
    model = DrawingModel.load(model_file)
    assert model.metadata == {"note": "test"} and model.image_size == 32 and model.input_scale == 2
    maps = [model.prepare(_drawing(i)) for i in range(3)]
    again = DrawingModel.load(model_file)
    assert np.allclose(model.encode(maps), again.encode(maps))


def test_missing_and_corrupt_model_files_give_clear_errors(tmp_path):
    with pytest.raises(ModelUnavailable, match="train-encoder"):
        DrawingEncoder(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="bad.pt"):
        DrawingEncoder(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(InputError, match="not a figsearch drawing-encoder"):
        DrawingEncoder(other)


def test_importing_the_package_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, figsearch.embed, figsearch.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_clip_code_path_with_random_weights(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8, projection_dim=16,
    )
    model = create_clip(config)
    path = tmp_path / "clip.pt"
    model.save(path)
    encoder = DrawingEncoder(path, device="cpu")
    vectors = encoder.encode([_drawing(i) for i in range(3)])
    assert vectors.shape == (3, 16) and encoder.identity["kind"] == "clip"


@pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model in this checkout")
def test_shipped_model_is_small_and_documented():
    import json

    path = default_model_path()
    assert path.stat().st_size <= 10 * 1024 * 1024
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["command"].startswith("figsearch train-encoder") and "us-design-grants" not in json.dumps(record["data"])
    encoder = VISUAL_ENCODERS.create("drawing")
    assert encoder.encode([_drawing(0)]).shape == (1, encoder.dim)
