"""A trainable drawing encoder and its model file: the networks plus the one way to feed them.

A ``DrawingModel`` holds the network together with its input settings, so that training and
inference prepare drawings the same way (``prepare``) and a model file alone rebuilds both.
Two kinds:

- ``cnn``: two branches, each optional. *Layout*: the whole drawing via ``prepare_drawing`` at
  ``image_size × input_scale`` px (margins trimmed, padded, not stretched), as an ink map (1 = ink)
  max-pooled by ``input_scale`` so thin lines stay visible at the small size. *Style*: patches at a
  fixed stroke width (``strokes.style_patches``), described one by one and averaged. The vector is
  the weighted concatenation of the two normalised branch vectors.
- ``clip``: a CLIP vision tower (transformers) on the layout input, for fine-tuning.
- ``lines-head``: a metric head on the handcrafted ``lines`` descriptor (``embed.lines_head``),
  started from the ``lines`` projection and trained with the same-patent positives.

Imports torch: load it lazily.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from figsearch.embed.drawing_net import DrawingNet, NetConfig, StyleNet
from figsearch.embed.preprocess import prepare_drawing
from figsearch.embed.strokes import style_patches
from figsearch.errors import InputError

log = logging.getLogger(__name__)

FORMAT = "figsearch-drawing-encoder"
FORMAT_VERSION = 1
KINDS = ("cnn", "clip", "lines-head")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: style branch defaults: stroke width (px), patch side, patches per drawing at inference / per view in training
STYLE_DEFAULTS = {"stroke": 2.0, "patch": 64, "max_patches": 192, "train_patches": 4}
STYLE_NET = NetConfig(widths=(24, 48, 96, 192), depths=(1, 1, 1, 1), dim=256, stem="conv2")


def ink_map(image, image_size: int, input_scale: int = 1) -> np.ndarray:
    """(image_size, image_size) uint8 ink map (255 = ink) of a PIL drawing."""
    grey = np.asarray(prepare_drawing(image, image_size * input_scale), dtype=np.uint8)
    ink = 255 - grey
    if input_scale > 1:
        s = input_scale
        ink = ink.reshape(image_size, s, image_size, s).max(axis=(1, 3))
    return np.ascontiguousarray(ink)


def ink_tensor(maps, device="cpu") -> torch.Tensor:
    """Stack uint8 ink maps into a float (B, 1, S, S) tensor in [0, 1]."""
    array = np.stack(list(maps)) if not isinstance(maps, np.ndarray) else maps
    return torch.from_numpy(np.ascontiguousarray(array)).to(device).float().div_(255.0).unsqueeze(1)


@dataclass
class Prepared:
    """One drawing ready for the network: its layout ink map, its style patches, its lines features
    (each None when the model has no use for it; features (F,), or (views, F) when prepared for training)."""

    map: np.ndarray | None
    patches: np.ndarray | None
    features: np.ndarray | None = None


@dataclass
class Inputs:
    """A batch on the device: layout maps (B, 1, S, S), style patches (M, 1, P, P) with their drawing
    index, lines features (B, F)."""

    n: int
    maps: torch.Tensor | None = None
    patches: torch.Tensor | None = None
    segments: torch.Tensor | None = None
    features: torch.Tensor | None = None

    def flipped(self) -> Inputs:
        # lines features come from the unflipped sheet: they stay as they are
        flip = (lambda t: None if t is None else torch.flip(t, dims=[3]))
        return Inputs(self.n, flip(self.maps), flip(self.patches), self.segments, self.features)


def batch_inputs(prepared: list[Prepared], device="cpu") -> Inputs:
    maps = patches = segments = None
    if prepared and prepared[0].map is not None:
        maps = ink_tensor(np.stack([p.map for p in prepared]), device)
    if prepared and prepared[0].patches is not None:
        patches = ink_tensor(np.concatenate([p.patches for p in prepared]), device)
        counts = [len(p.patches) for p in prepared]
        segments = torch.repeat_interleave(torch.arange(len(prepared)), torch.tensor(counts)).to(device)
    features = None
    if prepared and prepared[0].features is not None:
        features = torch.from_numpy(np.stack([p.features for p in prepared]).astype(np.float32)).to(device)
    return Inputs(len(prepared), maps, patches, segments, features)


class DrawingNets(nn.Module):
    """The ``cnn`` kind: layout and/or style branch; forward gives each branch's normalised vectors."""

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


def _clip_classes():
    from figsearch.extras import require

    transformers = require("transformers", "CLIP fine-tuning")
    return transformers.CLIPVisionModelWithProjection, transformers.CLIPVisionConfig


class DrawingModel:
    """The network plus its input settings; ``encode`` maps prepared drawings to normalised vectors."""

    def __init__(self, kind: str, module: nn.Module, image_size: int, input_scale: int, settings: dict) -> None:
        if kind not in KINDS:
            raise InputError(f"unknown drawing-encoder kind {kind!r}; choose one of: {', '.join(KINDS)}")
        self.kind = kind
        self.module = module
        self.image_size = image_size
        self.input_scale = input_scale
        #: architecture and input settings: {"layout": NetConfig dict | None, "style": {...} | None,
        #: "weights": {branch: weight}} for cnn; the CLIP vision config dict under "clip" for clip;
        #: {"lines": head settings, "weights": {"lines": 1}} for lines-head
        self.settings = settings
        self.metadata: dict = {}

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def create_cnn(
        cls,
        layout: NetConfig | None = None,
        image_size: int = 64,
        input_scale: int = 4,
        style: NetConfig | None = None,
        style_options: dict | None = None,
        weights: dict | None = None,
    ) -> DrawingModel:
        """Layout branch ``layout`` and/or style branch ``style`` (None leaves a branch out)."""
        if layout is None and style is None:
            raise InputError("a drawing encoder needs a layout branch, a style branch or both")
        settings = {
            "layout": layout.to_dict() if layout else None,
            "style": ({**STYLE_DEFAULTS, **(style_options or {}), "net": style.to_dict()} if style else None),
            "weights": {"layout": 1.0, "style": 1.0, **(weights or {})},
        }
        return cls("cnn", DrawingNets(layout, style), image_size, input_scale, settings)

    @classmethod
    def create_clip(cls, source: str | os.PathLike | object, image_size: int | None = None) -> DrawingModel:
        """From a transformers CLIP checkpoint (hub name or local folder) or a ``CLIPVisionConfig`` (random weights)."""
        vision_cls, config_cls = _clip_classes()
        if isinstance(source, config_cls):
            clip = vision_cls(source)
        else:
            try:
                clip = vision_cls.from_pretrained(str(source))
            except OSError as exc:
                raise InputError(
                    f"cannot load CLIP weights from {source!r}: {exc}. Give a local folder holding a transformers "
                    "CLIP checkpoint (config.json + weights), or train the compact CNN instead (--arch cnn)"
                ) from exc
        size = image_size or clip.config.image_size
        settings = {"clip": clip.config.to_dict(), "weights": {"layout": 1.0}}
        return cls("clip", ClipOnInk(clip), size, 1, settings)

    @classmethod
    def create_lines_head(
        cls, dim: int | None = None, hidden: int | None = None, copies: int | None = None, projection: str | None = None
    ) -> DrawingModel:
        """A head on the lines descriptor, initialised as the lines encoder's projection (``projection``)."""
        from figsearch.embed.lines import BLOCK_WEIGHTS
        from figsearch.embed.lines_head import LINES_HEAD_DEFAULTS, LinesHead, block_sizes

        given = {"dim": dim, "hidden": hidden, "copies": copies, "projection": projection}
        head = {**LINES_HEAD_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
        head.update(sizes=block_sizes(), block_weights=dict(BLOCK_WEIGHTS))
        settings = {"lines": head, "weights": {"lines": 1.0}}
        return cls("lines-head", LinesHead(head, init_from_projection=True), 0, 1, settings)

    # -- inputs ------------------------------------------------------------------------------

    @property
    def branches(self) -> list[str]:
        if self.kind == "clip":
            return ["layout"]
        if self.kind == "lines-head":
            return ["lines"]
        return [b for b in ("layout", "style") if self.settings.get(b)]

    @property
    def style_options(self) -> dict:
        return self.settings.get("style") or {}

    @property
    def dim(self) -> int:
        if self.kind == "clip":
            return int(self.settings["clip"].get("projection_dim", 512))
        if self.kind == "lines-head":
            return int(self.settings["lines"]["dim"])
        return sum(int((self.settings[b] if b == "layout" else self.settings[b]["net"])["dim"]) for b in self.branches)

    def prepare(self, image) -> Prepared:
        """The network input of one PIL drawing; identical in training and inference."""
        if self.kind == "lines-head":
            from figsearch.embed.lines_head import lines_features

            return Prepared(None, None, lines_features(image))
        layout = ink_map(image, self.image_size, self.input_scale) if "layout" in self.branches else None
        patches = None
        if "style" in self.branches:
            o = self.style_options
            patches = style_patches(image, stroke=o["stroke"], size=o["patch"], max_patches=o["max_patches"])
        return Prepared(layout, patches)

    def prepare_for_training(self, image, key: int) -> Prepared:
        """``prepare``, plus for lines-head the features of augmented copies seeded by ``key`` (views, F)."""
        if self.kind != "lines-head":
            return self.prepare(image)
        from figsearch.embed.lines_head import training_features

        return Prepared(None, None, training_features(image, int(self.settings["lines"]["copies"]), key))

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device) -> DrawingModel:
        self.module.to(device)
        return self

    def combine(self, branch_vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = self.settings["weights"]
        parts = [branch_vectors[b] * float(weights.get(b, 1.0)) for b in self.branches]
        return F.normalize(torch.cat(parts, dim=1), dim=1)

    @torch.no_grad()
    def encode_inputs(self, inputs: Inputs, flip_average: bool = False) -> np.ndarray:
        self.module.eval()
        out = self.combine(self.module(inputs))
        if flip_average:
            out = F.normalize(out + self.combine(self.module(inputs.flipped())), dim=1)
        return out.float().cpu().numpy()

    def encode(self, prepared: list[Prepared], flip_average: bool = False) -> np.ndarray:
        """Prepared drawings to (B, dim) float32 normalised vectors."""
        return self.encode_inputs(batch_inputs(list(prepared), self.device), flip_average)

    # -- files -------------------------------------------------------------------------------

    def state(self, metadata: dict | None = None) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "image_size": self.image_size,
            "input_scale": self.input_scale,
            "settings": json.loads(json.dumps(self.settings)),
            # plain JSON types only, so that the file loads with torch.load(weights_only=True)
            "metadata": json.loads(json.dumps(metadata if metadata is not None else self.metadata)),
            "state_dict": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
        }

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        from figsearch.fsutil import atomic_write_bytes

        buffer = io.BytesIO()
        torch.save(self.state(metadata), buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def from_state(cls, state: dict, source: str = "model") -> DrawingModel:
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise InputError(f"{source} is not a figsearch drawing-encoder model file")
        if state.get("format_version", 0) > FORMAT_VERSION:
            raise InputError(f"{source} was written by a newer figsearch (format {state['format_version']}); upgrade")
        kind, settings = state["kind"], state["settings"]
        try:
            if kind == "cnn":
                layout = NetConfig.from_dict(settings["layout"]) if settings.get("layout") else None
                style = NetConfig.from_dict(settings["style"]["net"]) if settings.get("style") else None
                module: nn.Module = DrawingNets(layout, style)
            elif kind == "clip":
                vision_cls, config_cls = _clip_classes()
                module = ClipOnInk(vision_cls(config_cls.from_dict(settings["clip"])))
            elif kind == "lines-head":
                from figsearch.embed.lines_head import LinesHead

                module = LinesHead(settings["lines"])
            else:
                raise InputError(f"{source}: unknown drawing-encoder kind {kind!r}")
            module.load_state_dict(state["state_dict"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise InputError(f"{source}: weights or settings do not fit a drawing encoder ({exc})") from exc
        model = cls(kind, module, int(state["image_size"]), int(state["input_scale"]), settings)
        model.metadata = state.get("metadata") or {}
        module.eval()
        return model

    @classmethod
    def load(cls, path: str | os.PathLike, device="cpu") -> DrawingModel:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"drawing-encoder model file {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise InputError(f"cannot read drawing-encoder model file {path}: {exc}") from exc
        return cls.from_state(state, str(path)).to(device)
