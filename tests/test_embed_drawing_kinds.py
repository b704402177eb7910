"""Drawing-model kinds: a model file's stored kind picks its class from a registry, and the shipped model
gives the vectors it gave before encoders were split into one class per kind."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")

from figsearch.embed import VISUAL_ENCODERS  # noqa: E402
from figsearch.embed.encoders.drawing import default_model_path  # noqa: E402
from figsearch.embed.encoders.drawing.clip import ClipModel  # noqa: E402
from figsearch.embed.encoders.drawing.cnn import CnnModel  # noqa: E402
from figsearch.embed.encoders.drawing.lines_head import LinesHeadModel  # noqa: E402
from figsearch.embed.encoders.drawing.model import DRAWING_KINDS, DrawingModel, Prepared  # noqa: E402
from figsearch.embed.encoders.drawing.net import NetConfig  # noqa: E402
from figsearch.errors import InputError  # noqa: E402
from figsearch.train.architectures import create_cnn  # noqa: E402


def _sheet() -> Image.Image:
    image = Image.new("L", (600, 800), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((120, 150, 460, 520), outline=0, width=3)
    draw.ellipse((200, 220, 380, 400), outline=0, width=2)
    for x in range(140, 440, 10):
        draw.line((x, 560, x + 40, 700), fill=0, width=1)
    draw.line((120, 150, 300, 60), fill=0, width=2)
    draw.line((460, 150, 540, 90), fill=0, width=2)
    return image


def test_each_stored_kind_resolves_to_its_class():
    assert DRAWING_KINDS.get("cnn") is CnnModel and CnnModel.kind == "cnn"
    assert DRAWING_KINDS.get("clip") is ClipModel and ClipModel.kind == "clip"
    assert DRAWING_KINDS.get("lines-head") is LinesHeadModel and LinesHeadModel.kind == "lines-head"
    with pytest.raises(InputError, match="choose one of: .*clip.*cnn.*lines-head"):
        DRAWING_KINDS.get("resnet")


def test_a_file_of_an_unknown_kind_is_refused_with_the_valid_kinds(tmp_path):
    state = create_cnn(NetConfig(widths=(4, 4, 4, 4), depths=(1, 1, 1, 1), dim=4), 16, 1).state()
    state["kind"] = "resnet"
    path = tmp_path / "odd.pt"
    torch.save(state, path)
    with pytest.raises(InputError, match="odd.pt.*'resnet'.*lines-head"):
        DrawingModel.load(path)


def test_a_new_kind_is_one_registered_class(tmp_path):
    name = "test-mean-ink"
    if name not in DRAWING_KINDS:

        @DRAWING_KINDS.register(name)
        class MeanInk(DrawingModel):
            """A 2-d vector: mean ink, and a learned constant."""

            @classmethod
            def build_module(cls, settings):
                class Net(torch.nn.Module):
                    def __init__(self):
                        super().__init__()
                        self.bias = torch.nn.Parameter(torch.ones(1))

                    def forward(self, inputs):
                        ink = inputs.features[:, :1]
                        return {"ink": torch.cat([ink, self.bias.expand_as(ink)], dim=1)}

                return Net()

            branches = property(lambda self: ["ink"])
            dim = property(lambda self: 2)

            def prepare(self, image):
                return Prepared(None, None, np.array([1 - np.asarray(image.convert("L")).mean() / 255], np.float32))

    model = DRAWING_KINDS.get(name)({"weights": {"ink": 1.0}}, 0, 1)
    path = tmp_path / "ink.pt"
    model.save(path)
    encoder = VISUAL_ENCODERS.create("drawing", model=str(path), device="cpu")
    assert type(encoder.model).__name__ == "MeanInk" and encoder.identity["kind"] == name
    assert encoder.encode([_sheet()]).shape == (1, 2)


@pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model in this checkout")
def test_shipped_model_loads_as_lines_head_and_keeps_its_vectors():
    encoder = VISUAL_ENCODERS.create("drawing", device="cpu")
    assert isinstance(encoder.model, LinesHeadModel) and encoder.identity["kind"] == "lines-head"
    vector = encoder.encode([_sheet()])[0]
    # computed from this drawing by the code before the split (one DrawingModel branching on kind);
    # the README's numbers were measured with these vectors
    expected = [0.060391, -0.0369534, 0.0867678, 0.0138984, 0.0740718, -0.0763536, -0.013215, -0.0364687]
    assert np.allclose(vector[:8], expected, atol=2e-6)
    assert vector.sum() == pytest.approx(0.19171838, abs=1e-4)
    assert float(vector @ np.arange(len(vector))) == pytest.approx(4.5826941, abs=1e-3)
