"""The ``lines-head`` kind of the drawing encoder: a metric learned on top of the ``lines`` descriptor.

Its input is the four raw histogram blocks of ``figsearch.embed.lines`` (2,395 values per drawing).
The network first does what the ``lines`` encoder does (square roots, centring by the block means
of ``lines_v1``, per-block L2 normalisation and weights), then a linear map to ``dim`` dimensions
that starts as the shipped half-whitening PCA of ``lines_v1``: an untrained head *is* the ``lines``
encoder. Training with same-patent positives (the other sheets of the patent, batch negatives)
turns that unsupervised projection into one that keeps what the sheets of a design share. An
optional residual MLP (``hidden`` > 0, its output layer zero-initialised) adds a non-linear part.

Augmented copies (``copies`` > 0) can join the positives: made on the sheet itself (crop, small
rotation, rescaling, thicker lines, scan specks) and described once before training, because the
descriptor is too slow to compute per batch, each seeded by the drawing's index. They are off by
default: on held-out patents they lowered mAP@50 (the descriptor is built to ignore those changes,
so they teach the head little, and the easy positives crowd out the same-patent ones).

Imports torch: load it lazily.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch import nn
from torch.nn import functional as F

from figsearch.embed.lines import BLOCK_WEIGHTS, DEFAULT_PROJECTION, _load_projection, raw_blocks

#: lines-head defaults: output dims, hidden width of the residual MLP (0: linear), augmented copies per drawing
LINES_HEAD_DEFAULTS = {"dim": 256, "hidden": 0, "copies": 0, "projection": DEFAULT_PROJECTION}


def lines_features(image: Image.Image) -> np.ndarray:
    """The raw lines blocks of one drawing, concatenated in ``BLOCK_WEIGHTS`` order (float32)."""
    blocks = raw_blocks(image)
    return np.concatenate([blocks[name] for name in BLOCK_WEIGHTS]).astype(np.float32)


def block_sizes() -> list[int]:
    blocks = raw_blocks(Image.new("L", (64, 64), 255))
    return [int(blocks[name].size) for name in BLOCK_WEIGHTS]


def augmented_sheet(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Another scan of the same sheet: cropped, slightly rotated, rescaled, sometimes bolder or specked."""
    grey = image.convert("L")
    w, h = grey.size
    left, top, right, bottom = (rng.uniform(0, 0.08, 4) * [w, h, w, h]).astype(int)
    grey = grey.crop((left, top, max(left + 8, w - right), max(top + 8, h - bottom)))
    grey = grey.rotate(float(rng.uniform(-4, 4)), resample=Image.Resampling.BILINEAR, expand=True, fillcolor=255)
    scale = float(rng.uniform(0.55, 1.0))
    grey = grey.resize((max(16, int(grey.width * scale)), max(16, int(grey.height * scale))), Image.Resampling.BOX)
    if rng.random() < 0.3:
        grey = grey.filter(ImageFilter.MinFilter(3))  # bolder lines
    if rng.random() < 0.4:
        pixels = np.array(grey)
        pixels[rng.random(pixels.shape) < 0.003] = 0  # scan specks
        grey = Image.fromarray(pixels)
    return grey


def training_features(image: Image.Image, copies: int, key: int) -> np.ndarray:
    """(1 + copies, F): the drawing's features, then those of ``copies`` augmented sheets seeded by ``key``."""
    views = [lines_features(image)]
    for c in range(copies):
        views.append(lines_features(augmented_sheet(image, np.random.default_rng([key, c, 11]))))
    return np.stack(views)


class LinesHead(nn.Module):
    """lines blocks (B, F) -> {"lines": normalised (B, dim)}; see the module docstring."""

    def __init__(self, settings: dict, init_from_projection: bool = False) -> None:
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
        if init_from_projection:
            self._init_from_projection(settings["projection"], dim)

    @torch.no_grad()
    def _init_from_projection(self, projection: str, dim: int) -> None:
        from figsearch.errors import InputError

        arrays, _ = _load_projection(projection)
        matrix = arrays["projection"].astype(np.float32)
        if matrix.shape[1] < dim:
            raise InputError(f"projection {projection} has {matrix.shape[1]} dimensions; the head asks for {dim}")
        matrix = matrix[:, :dim]
        self.block_means.copy_(torch.from_numpy(np.concatenate([arrays[f"mean_{n}"] for n in BLOCK_WEIGHTS])))
        self.linear.weight.copy_(torch.from_numpy(matrix.T.copy()))
        self.linear.bias.copy_(torch.from_numpy(-(arrays["mean"] @ matrix)))

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
