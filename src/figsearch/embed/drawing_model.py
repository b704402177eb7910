"""A trainable drawing encoder and its model file: one network plus the one way to feed it.

A ``DrawingModel`` holds the network (the compact CNN of ``drawing_net`` or a CLIP vision
tower) together with its input settings, so that training and inference prepare drawings the
same way (``prepare``) and a model file alone rebuilds both. Imports torch: load it lazily.

Input: ``prepare_drawing`` at ``image_size × input_scale`` px (margins trimmed, padded, not
stretched), turned into an ink map (1 = ink) and max-pooled by ``input_scale``: thin lines of a
large sheet stay visible at the network's small size instead of fading to grey.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from figsearch.embed.drawing_net import DrawingNet, NetConfig
from figsearch.embed.preprocess import prepare_drawing
from figsearch.errors import InputError

log = logging.getLogger(__name__)

FORMAT = "figsearch-drawing-encoder"
FORMAT_VERSION = 1
KINDS = ("cnn", "clip")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


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
    return torch.from_numpy(array).to(device).float().div_(255.0).unsqueeze(1)


class ClipOnInk(nn.Module):
    """A transformers CLIP vision tower fed with ink maps: paper turned white, three channels, CLIP's normalisation."""

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.clip = clip_model
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, ink: torch.Tensor) -> torch.Tensor:
        rgb = (1.0 - ink).expand(-1, 3, -1, -1)
        return F.normalize(self.clip(pixel_values=(rgb - self.mean) / self.std).image_embeds, dim=1)


def _clip_classes():
    from figsearch.extras import require

    transformers = require("transformers", "CLIP fine-tuning")
    return transformers.CLIPVisionModelWithProjection, transformers.CLIPVisionConfig


class DrawingModel:
    """The network plus its input settings; ``encode`` maps uint8 ink maps to normalised vectors."""

    def __init__(self, kind: str, module: nn.Module, image_size: int, input_scale: int, settings: dict) -> None:
        if kind not in KINDS:
            raise InputError(f"unknown drawing-encoder kind {kind!r}; choose one of: {', '.join(KINDS)}")
        self.kind = kind
        self.module = module
        self.image_size = image_size
        self.input_scale = input_scale
        #: architecture settings (NetConfig dict, or the CLIP vision config dict)
        self.settings = settings
        self.metadata: dict = {}

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def create_cnn(cls, net: NetConfig | None = None, image_size: int = 128, input_scale: int = 2) -> DrawingModel:
        net = net or NetConfig()
        return cls("cnn", DrawingNet(net), image_size, input_scale, net.to_dict())

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
        return cls("clip", ClipOnInk(clip), size, 1, clip.config.to_dict())

    # -- inference ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        if self.kind == "cnn":
            return int(self.settings["dim"])
        return int(self.settings.get("projection_dim", 512))

    def prepare(self, image) -> np.ndarray:
        return ink_map(image, self.image_size, self.input_scale)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device) -> DrawingModel:
        self.module.to(device)
        return self

    @torch.no_grad()
    def encode(self, maps, flip_average: bool = False) -> np.ndarray:
        """uint8 ink maps (B, S, S) to (B, dim) float32 normalised vectors."""
        self.module.eval()
        x = ink_tensor(maps, self.device)
        out = self.module(x)
        if flip_average:
            out = F.normalize(out + self.module(torch.flip(x, dims=[3])), dim=1)
        return out.float().cpu().numpy()

    # -- files -------------------------------------------------------------------------------

    def state(self, metadata: dict | None = None) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "image_size": self.image_size,
            "input_scale": self.input_scale,
            "settings": self.settings,
            # plain JSON types only, so that the file loads with torch.load(weights_only=True)
            "metadata": json.loads(json.dumps(metadata if metadata is not None else self.metadata)),
            "state_dict": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
        }

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        from figsearch.store import atomic_write_bytes

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
        if kind == "cnn":
            module: nn.Module = DrawingNet(NetConfig.from_dict(settings))
        elif kind == "clip":
            vision_cls, config_cls = _clip_classes()
            module = ClipOnInk(vision_cls(config_cls.from_dict(settings)))
        else:
            raise InputError(f"{source}: unknown drawing-encoder kind {kind!r}")
        try:
            module.load_state_dict(state["state_dict"])
        except RuntimeError as exc:
            raise InputError(f"{source}: weights do not fit the stored architecture ({exc})") from exc
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

    def describe(self) -> str:
        return json.dumps({"kind": self.kind, "image_size": self.image_size, "input_scale": self.input_scale})
