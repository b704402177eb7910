"""The ``clip`` kind of the drawing encoder: a CLIP vision tower (transformers) on the layout ink map.

Made by fine-tuning a transformers CLIP checkpoint (``figsearch train-encoder --arch clip``); the model
file stores the vision config, so loading needs transformers but no download.

Imports torch: load it lazily.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from figsearch.embed.encoders.drawing.model import DRAWING_KINDS, DrawingModel, Inputs, Prepared, ink_map

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_classes():
    """transformers' (CLIPVisionModelWithProjection, CLIPVisionConfig)."""
    from figsearch.extras import require

    transformers = require("transformers", "CLIP fine-tuning")
    return transformers.CLIPVisionModelWithProjection, transformers.CLIPVisionConfig


class ClipOnInk(nn.Module):
    """A transformers CLIP vision tower fed with ink maps: paper turned white, three channels, CLIP's normalisation."""

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.clip = clip_model
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        rgb = (1.0 - inputs.maps).expand(-1, 3, -1, -1)
        return {"layout": F.normalize(self.clip(pixel_values=(rgb - self.mean) / self.std).image_embeds, dim=1)}


@DRAWING_KINDS.register("clip", help="CLIP vision tower (transformers) fine-tuned on drawings")
class ClipModel(DrawingModel):
    """settings: {"clip": CLIPVisionConfig dict, "weights": {"layout": 1}}; ``input_scale`` is always 1."""

    @classmethod
    def build_module(cls, settings: dict) -> nn.Module:
        vision_cls, config_cls = clip_classes()
        return ClipOnInk(vision_cls(config_cls.from_dict(settings["clip"])))

    @property
    def branches(self) -> list[str]:
        return ["layout"]

    @property
    def dim(self) -> int:
        return int(self.settings["clip"].get("projection_dim", 512))

    def prepare(self, image) -> Prepared:
        return Prepared(ink_map(image, self.image_size, self.input_scale), None)
