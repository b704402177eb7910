"""The ``drawing`` visual encoder: a network trained on patent drawings (``figsearch train-encoder``).

Without options it loads the model shipped in the package (``figsearch/models/drawing-encoder.pt``);
``model=PATH`` loads another model file, e.g. one trained on your own collections or a fine-tuned
CLIP. torch is imported when an encoder is built, not when this module is imported.

The model file says which kind of network it holds (``cnn``, ``clip``, ``lines-head``, ...); the
class registered for that kind in ``model.DRAWING_KINDS`` rebuilds and runs it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from figsearch.embed.base import VISUAL_ENCODERS, VisualEncoder
from figsearch.errors import ModelUnavailable
from figsearch.fsutil import sha256_file

log = logging.getLogger(__name__)

DEFAULT_MODEL = "drawing-encoder.pt"


def default_model_path() -> Path:
    return Path(str(resources.files("figsearch") / "models" / DEFAULT_MODEL))


class DrawingEncoder(VisualEncoder):
    """Learned drawing encoder; vectors of mirrored inputs averaged when ``flip_average``."""

    name = "drawing"

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        device: str | None = None,
        batch_size: int = 16,
        flip_average: bool | None = None,
        threads: int | None = None,
    ) -> None:
        from figsearch.extras import require

        torch = require("torch", "the drawing encoder")
        from figsearch.embed.encoders.drawing.model import DrawingModel

        path = Path(model) if model else default_model_path()
        if not path.is_file():
            raise ModelUnavailable(
                f"drawing-encoder model {path} not found; train one with "
                "`figsearch train-encoder --collection DIR --out MODEL` and pass it as model=MODEL"
                + ("" if model else " (this installation lacks the shipped default model)")
            )
        if threads:
            torch.set_num_threads(threads)
        self.path = path
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = DrawingModel.load(path, self.device)
        self.dim = self.model.dim
        self.batch_size = batch_size
        # a model file says whether it was evaluated with flip averaging; the caller may override
        self.flip_average = bool(self.model.metadata.get("flip_average", False) if flip_average is None else flip_average)
        self._digest = sha256_file(path)[:16]

    @property
    def identity(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "model_sha256": self._digest,
            "kind": self.model.kind,
            "branches": self.model.branches,
            "image_size": self.model.image_size,
            "input_scale": self.model.input_scale,
            "flip_average": self.flip_average,
        }

    def _encode_batch(self, images: Sequence) -> np.ndarray:
        return self.model.encode([self.model.prepare(image) for image in images], flip_average=self.flip_average)


@VISUAL_ENCODERS.register("drawing", help="CNN trained on patent drawings (offline; model=PATH for your own)")
def create_drawing_encoder(**options) -> DrawingEncoder:
    return DrawingEncoder(**options)
