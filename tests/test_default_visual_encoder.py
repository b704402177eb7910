"""The default visual encoder of new collections: the shipped multi-level ``backbone`` model, named by
its packaged file name so that a collection's stored spec works on every installation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("onnxruntime")

from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER, create_visual, encoder_key  # noqa: E402
from figsearch.embed.encoders.backbone import default_model_path  # noqa: E402
from figsearch.errors import ModelUnavailable  # noqa: E402

SHIPPED = default_model_path().with_name("drawing-backbone5-lite0-288.onnx")
needs_shipped = pytest.mark.skipif(not SHIPPED.is_file(), reason=f"{SHIPPED} is not in this installation")


def _box(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("L", (320, 240), 255)
    draw = ImageDraw.Draw(image)
    x, y = (int(v) for v in rng.integers(20, 120, 2))
    draw.rectangle([x, y, x + 150, y + 90], outline=0, width=3)
    return image


@needs_shipped
def test_default_is_the_packaged_multi_level_backbone():
    encoder = create_visual(threads=1)
    # since stop 20 that model; since stop 27 with the cut figures' vectors mixed with their sheets' (embed.sheet_context)
    assert DEFAULT_VISUAL_ENCODER == "backbone:drawing-backbone5-lite0-288.onnx@sheet=1"
    assert encoder.path.resolve() == SHIPPED.resolve()
    assert len(encoder.meta["levels"]) == 17
    assert encoder.identity["sheet_context"] == 1.0
    # the bare file name and the full path are the same encoder: same index key, same vectors
    by_path = create_visual(f"backbone:{SHIPPED}@sheet=1", threads=1)
    assert encoder_key(encoder) == encoder_key(by_path)
    images = [_box(1), _box(2)]
    assert np.allclose(encoder.encode(images), by_path.encode(images), atol=1e-6)
    # and not the first backbone model or the previous defaults, whose indexes must not be mixed with this one
    assert encoder_key(encoder) != encoder_key(create_visual("backbone", threads=1))
    assert encoder_key(encoder) != encoder_key(create_visual("backbone:drawing-backbone2.onnx", threads=1))
    assert encoder_key(encoder) != encoder_key(create_visual("backbone:drawing-backbone3.onnx", threads=1))
    # the model without the sheet context: a key of its own (an index of plain vectors is never mixed with
    # mixed ones), the same vectors for every image it is given (queries are never mixed)
    plain = create_visual("backbone:drawing-backbone5-lite0-288.onnx", threads=1)
    assert "sheet_context" not in plain.identity and encoder_key(plain) != encoder_key(encoder)
    assert np.array_equal(plain.encode(images), encoder.encode(images))


def test_an_unknown_packaged_name_is_a_clear_error():
    with pytest.raises(ModelUnavailable, match="no-such-model.onnx"):
        create_visual("backbone:no-such-model.onnx")
