"""The ``cnn`` kind of the drawing encoder: a compact CNN with two branches, each optional.

*Layout*: the whole drawing via ``prepare_drawing`` at ``image_size × input_scale`` px (margins
trimmed, padded, not stretched), as an ink map (1 = ink) max-pooled by ``input_scale`` so thin
lines stay visible at the small size. *Style*: patches at a fixed stroke width
(``strokes.style_patches``), described one by one and averaged. The vector is the weighted
concatenation of the two normalised branch vectors.

Imports torch: load it lazily.
"""

from __future__ import annotations

import torch
from torch import nn

from figsearch.embed.encoders.drawing.model import DRAWING_KINDS, DrawingModel, Inputs, Prepared, ink_map
from figsearch.embed.encoders.drawing.net import DrawingNet, NetConfig, StyleNet
from figsearch.embed.encoders.drawing.strokes import style_patches

#: style branch defaults: stroke width (px), patch side, patches per drawing at inference / per view in training
STYLE_DEFAULTS = {"stroke": 2.0, "patch": 64, "max_patches": 192, "train_patches": 4}
STYLE_NET = NetConfig(widths=(24, 48, 96, 192), depths=(1, 1, 1, 1), dim=256, stem="conv2")


class DrawingNets(nn.Module):
    """Layout and/or style branch; forward gives each branch's normalised vectors."""

    def __init__(self, layout: NetConfig | None, style: NetConfig | None) -> None:
        super().__init__()
        self.layout = DrawingNet(layout) if layout else None
        self.style = StyleNet(style) if style else None

    def forward(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        out = {}
        if self.layout is not None:
            out["layout"] = self.layout(inputs.maps)
        if self.style is not None:
            out["style"] = self.style(inputs.patches, inputs.segments, inputs.n)
        return out


@DRAWING_KINDS.register("cnn", help="compact CNN: layout branch (whole drawing) and/or style branch (stroke-scale patches)")
class CnnModel(DrawingModel):
    """settings: {"layout": NetConfig dict | None, "style": {**STYLE_DEFAULTS, "net": NetConfig dict} | None,
    "weights": {branch: weight}}."""

    @classmethod
    def build_module(cls, settings: dict) -> nn.Module:
        layout = NetConfig.from_dict(settings["layout"]) if settings.get("layout") else None
        style = NetConfig.from_dict(settings["style"]["net"]) if settings.get("style") else None
        return DrawingNets(layout, style)

    @property
    def branches(self) -> list[str]:
        return [b for b in ("layout", "style") if self.settings.get(b)]

    @property
    def style_options(self) -> dict:
        return self.settings.get("style") or {}

    @property
    def dim(self) -> int:
        return sum(int((self.settings[b] if b == "layout" else self.settings[b]["net"])["dim"]) for b in self.branches)

    def prepare(self, image) -> Prepared:
        layout = ink_map(image, self.image_size, self.input_scale) if "layout" in self.branches else None
        patches = None
        if "style" in self.branches:
            o = self.style_options
            patches = style_patches(image, stroke=o["stroke"], size=o["patch"], max_patches=o["max_patches"])
        return Prepared(layout, patches)
