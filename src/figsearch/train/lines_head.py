"""Training-only parts of the ``lines-head`` kind: its initial projection and augmented copies.

Augmented copies (``copies`` > 0) can join the positives: made on the sheet itself (crop, small
rotation, rescaling, thicker lines, scan specks) and described once before training, because the
descriptor is too slow to compute per batch, each seeded by the drawing's index. They are off by
default: on held-out patents they lowered mAP@50 (the descriptor is built to ignore those changes,
so they teach the head little, and the easy positives crowd out the same-patent ones).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageFilter

from figsearch.embed.encoders.drawing.lines_head import LinesHead, lines_features
from figsearch.embed.encoders.lines import BLOCK_WEIGHTS, load_projection, raw_blocks
from figsearch.errors import InputError


def block_sizes() -> list[int]:
    blocks = raw_blocks(Image.new("L", (64, 64), 255))
    return [int(blocks[name].size) for name in BLOCK_WEIGHTS]


@torch.no_grad()
def init_from_projection(head: LinesHead, projection: str, dim: int) -> None:
    """Set the head's centring and linear map to the ``lines`` encoder's fitted projection."""
    arrays, _ = load_projection(projection)
    matrix = arrays["projection"].astype(np.float32)
    if matrix.shape[1] < dim:
        raise InputError(f"projection {projection} has {matrix.shape[1]} dimensions; the head asks for {dim}")
    matrix = matrix[:, :dim]
    head.block_means.copy_(torch.from_numpy(np.concatenate([arrays[f"mean_{n}"] for n in BLOCK_WEIGHTS])))
    head.linear.weight.copy_(torch.from_numpy(matrix.T.copy()))
    head.linear.bias.copy_(torch.from_numpy(-(arrays["mean"] @ matrix)))


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
