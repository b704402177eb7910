"""The ``lines-backbone`` kind of the drawing encoder: the ``lines-head`` vector beside pretrained CNN features.

Two branches, each L2-normalised, concatenated with the weights in ``settings["weights"]``:

- ``lines``: a trained ``lines-head`` (``lines_head.py``) on the handcrafted ``lines`` descriptor —
  shape and stroke statistics, strong at finding the other sheets of the same design;
- ``backbone``: a frozen ImageNet backbone (``embed.encoders.backbone_nets``: MobileNetV2 or
  EfficientNet-Lite) on the drawing prepared as for the ``backbone`` encoder; its last feature map
  pooled (``avg`` or generalised-mean ``gem``), square-rooted, centred by the mean of the training
  drawings, projected by their whitened PCA (both fitted on training data only, never trained by
  gradient: fine-tuning on a few thousand drawings trained the ImageNet semantics away, issue 13).

Both branches read the same preprocessed sheet (``prepare_sheet``: grey, the running header of PDF
sheets whitened), identical for ingest, queries and training. The backbone's weights are stored in
the model file, so a file alone rebuilds the encoder (no weight package needed at inference).

Imports torch: load it lazily.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from figsearch.embed.encoders.backbone_nets import MobileNetV2Features, normalise
from figsearch.embed.encoders.drawing.lines_head import LinesHead, lines_features
from figsearch.embed.encoders.drawing.model import DRAWING_KINDS, DrawingModel, Inputs, Prepared
from figsearch.embed.preprocess import prepare_drawing, strip_running_header
from figsearch.errors import InputError

POOLS = ("avg", "gem")


def prepare_sheet(image: Image.Image) -> Image.Image:
    """The sheet both branches describe: grey, a PDF sheet's running header whitened."""
    return strip_running_header(image.convert("L"))


def build_features(name: str) -> nn.Module:
    """The backbone network (no weights loaded: they come from the model file)."""
    if name == "mobilenetv2":
        return MobileNetV2Features()
    from figsearch.embed.encoders.backbone_nets import build_backbone

    return build_backbone(name, pretrained=False)


def pool_features(feature_map: torch.Tensor, pool: str) -> torch.Tensor:
    """(B, C, H, W) -> (B, C): average, or generalised mean with p = 3 (GeM), of the rectified map."""
    x = feature_map.clamp_min(0)
    if pool == "gem":
        return x.pow(3).mean(dim=(2, 3)).add(1e-12).pow(1.0 / 3.0)
    return x.mean(dim=(2, 3))


class BackboneBranch(nn.Module):
    """grey (B, 1, S, S) in [0, 1] -> centred, whitened, normalised (B, dim)."""

    def __init__(self, settings: dict) -> None:
        super().__init__()
        self.name = str(settings["name"])
        self.pool = str(settings["pool"])
        if self.pool not in POOLS:
            raise InputError(f"lines-backbone: unknown pooling {self.pool!r}; choose one of {', '.join(POOLS)}")
        channels, dim = int(settings["channels"]), int(settings["dim"])
        self.features = build_features(self.name)
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("projection", torch.zeros(channels, dim))
        for parameter in self.features.parameters():
            parameter.requires_grad_(False)

    def pooled(self, maps: torch.Tensor) -> torch.Tensor:
        """Square roots of the pooled features (before centring): what the statistics are fitted on."""
        return torch.sqrt(pool_features(self.features(normalise(self.name, maps * 255.0)), self.pool) + 1e-12)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.pooled(maps) - self.mean, dim=1)
        return F.normalize(x @ self.projection, dim=1)


class LinesBackbone(nn.Module):
    def __init__(self, settings: dict) -> None:
        super().__init__()
        self.lines = LinesHead(settings["lines"])
        self.backbone = BackboneBranch(settings["backbone"])

    def forward(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        return {"lines": self.lines(inputs)["lines"], "backbone": self.backbone(inputs.maps)}


@DRAWING_KINDS.register("lines-backbone", help="lines-head vector beside whitened pretrained CNN features")
class LinesBackboneModel(DrawingModel):
    """settings: {"lines": lines-head settings, "backbone": {"name", "pool", "channels", "dim", "image_size",
    "weights_file", "weights_sha256", "licence"}, "weights": {"lines": 1, "backbone": w}}; ``image_size``
    is the backbone's input side."""

    @classmethod
    def build_module(cls, settings: dict) -> nn.Module:
        return LinesBackbone(settings)

    @property
    def branches(self) -> list[str]:
        return ["lines", "backbone"]

    @property
    def dim(self) -> int:
        return int(self.settings["lines"]["dim"]) + int(self.settings["backbone"]["dim"])

    def prepare(self, image) -> Prepared:
        sheet = prepare_sheet(image)
        grey = np.asarray(prepare_drawing(sheet, self.image_size), dtype=np.uint8)
        return Prepared(grey, None, lines_features(sheet))
