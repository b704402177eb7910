"""The ``lines-head`` kind of the drawing encoder: a metric learned on top of the ``lines`` descriptor.

Its input is the four raw histogram blocks of ``figsearch.embed.encoders.lines`` (2,395 values per
drawing). The network first does what the ``lines`` encoder does (square roots, centring by the
block means of ``lines_v1``, per-block L2 normalisation and weights), then a linear map to ``dim``
dimensions that starts as the shipped half-whitening PCA of ``lines_v1``: an untrained head *is*
the ``lines`` encoder. Training with same-patent positives (``figsearch.train``) turns that
unsupervised projection into one that keeps what the sheets of a design share. An optional
residual MLP (``hidden`` > 0, its output layer zero-initialised) adds a non-linear part.

Imports torch: load it lazily.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from figsearch.embed.encoders.drawing.model import DRAWING_KINDS, DrawingModel, Prepared
from figsearch.embed.encoders.lines import BLOCK_WEIGHTS, raw_blocks


def lines_features(image: Image.Image) -> np.ndarray:
    """The raw lines blocks of one drawing, concatenated in ``BLOCK_WEIGHTS`` order (float32)."""
    blocks = raw_blocks(image)
    return np.concatenate([blocks[name] for name in BLOCK_WEIGHTS]).astype(np.float32)


class LinesHead(nn.Module):
    """lines blocks (B, F) -> {"lines": normalised (B, dim)}; see the module docstring."""

    def __init__(self, settings: dict) -> None:
        super().__init__()
        self.sizes = [int(s) for s in settings["sizes"]]
        weights = [float(settings["block_weights"][name]) for name in BLOCK_WEIGHTS]
        total, dim, hidden = sum(self.sizes), int(settings["dim"]), int(settings["hidden"])
        self.register_buffer("block_means", torch.zeros(total))
        self.register_buffer("block_weights", torch.tensor(weights))
        self.linear = nn.Linear(total, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)) if hidden else None
        if self.mlp is not None:
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    def descriptor(self, features: torch.Tensor) -> torch.Tensor:
        """The weighted, normalised lines blocks (``lines.combine``) of raw features."""
        x = torch.sqrt(features.clamp_min(0)) - self.block_means
        parts = torch.split(x, self.sizes, dim=1)
        return torch.cat([w * F.normalize(p, dim=1, eps=1e-9) for w, p in zip(self.block_weights, parts)], dim=1)

    def forward(self, inputs) -> dict[str, torch.Tensor]:
        y = self.linear(self.descriptor(inputs.features))
        if self.mlp is not None:
            y = y + self.mlp(y)
        return {"lines": F.normalize(y, dim=1)}


@DRAWING_KINDS.register("lines-head", help="metric head on the handcrafted lines descriptor")
class LinesHeadModel(DrawingModel):
    """settings: {"lines": {"dim", "hidden", "sizes", "block_weights", ...}, "weights": {"lines": 1}};
    no image size (the descriptor takes the sheet as it is)."""

    @classmethod
    def build_module(cls, settings: dict) -> nn.Module:
        return LinesHead(settings["lines"])

    @property
    def branches(self) -> list[str]:
        return ["lines"]

    @property
    def dim(self) -> int:
        return int(self.settings["lines"]["dim"])

    def prepare(self, image) -> Prepared:
        return Prepared(None, None, lines_features(image))
