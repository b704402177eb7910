"""A learned drawing encoder and its model file: the network plus the one way to feed it.

A ``DrawingModel`` holds the network together with its input settings, so that training and
inference prepare drawings the same way (``prepare``) and a model file alone rebuilds both.
Each kind of network is one subclass, registered by its name in ``DRAWING_KINDS``; the name is
what a model file stores under ``"kind"``, and ``DrawingModel.load`` picks the class by it:

- ``cnn`` (``cnn.py``): a compact CNN on the whole drawing (layout) and/or on stroke-scale patches (style),
- ``clip`` (``clip.py``): a CLIP vision tower (transformers) on the layout input,
- ``lines-head`` (``lines_head.py``): a metric head on the handcrafted ``lines`` descriptor,
- ``lines-backbone`` (``lines_backbone.py``): a lines-head beside whitened frozen ImageNet CNN features.

A new kind is one subclass of ``DrawingModel`` (``build_module``, ``branches``, ``dim``, ``prepare``)
decorated with ``@DRAWING_KINDS.register("name")`` in a module listed in ``BUILTIN_KINDS`` (or
imported by a plugin before the model file is loaded). Building and training a *fresh* model
lives in ``figsearch.train`` (to make a kind trainable, register an ``Architecture`` in
``figsearch.train.architectures``); this module only loads, runs and saves.

Imports torch: load it lazily.
"""

from __future__ import annotations

import abc
import importlib
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

from figsearch.embed.preprocess import prepare_drawing
from figsearch.errors import InputError
from figsearch.registry import Registry

log = logging.getLogger(__name__)

FORMAT = "figsearch-drawing-encoder"
FORMAT_VERSION = 1


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


class DrawingModel(abc.ABC):
    """The network plus its input settings; ``encode`` maps prepared drawings to normalised vectors.

    A subclass is one kind: it rebuilds its network from the settings a model file stores
    (``build_module``), names the branches the network returns, and prepares a drawing.
    """

    #: the name a model file stores under "kind" (set by ``DRAWING_KINDS.register``)
    kind: str = ""

    def __init__(self, settings: dict, image_size: int, input_scale: int, module: nn.Module | None = None) -> None:
        #: architecture and input settings, stored in the model file; always holds "weights": {branch: weight}
        self.settings = settings
        self.image_size = image_size
        self.input_scale = input_scale
        self.module = module if module is not None else self.build_module(settings)
        self.metadata: dict = {}

    @classmethod
    @abc.abstractmethod
    def build_module(cls, settings: dict) -> nn.Module:
        """The network described by ``settings`` (weights not loaded); forward(Inputs) -> {branch: vectors}."""

    @property
    @abc.abstractmethod
    def branches(self) -> list[str]:
        """Branches the network returns, in the order their vectors are concatenated."""

    @property
    @abc.abstractmethod
    def dim(self) -> int: ...

    @abc.abstractmethod
    def prepare(self, image) -> Prepared:
        """The network input of one PIL drawing; identical in training and inference."""

    @property
    def style_options(self) -> dict:
        return {}

    # -- running ----------------------------------------------------------------------------

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

    @staticmethod
    def from_state(state: dict, source: str = "model") -> DrawingModel:
        """The model a saved state describes, as the class registered for its kind."""
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise InputError(f"{source} is not a figsearch drawing-encoder model file")
        if state.get("format_version", 0) > FORMAT_VERSION:
            raise InputError(f"{source} was written by a newer figsearch (format {state['format_version']}); upgrade")
        kind_class = kind_class_of(state.get("kind"), source)
        try:
            model = kind_class(state["settings"], int(state["image_size"]), int(state["input_scale"]))
            model.module.load_state_dict(state["state_dict"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise InputError(f"{source}: weights or settings do not fit a drawing encoder ({exc})") from exc
        model.metadata = state.get("metadata") or {}
        model.module.eval()
        return model

    @staticmethod
    def load(path: str | os.PathLike, device="cpu") -> DrawingModel:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"drawing-encoder model file {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise InputError(f"cannot read drawing-encoder model file {path}: {exc}") from exc
        return DrawingModel.from_state(state, str(path)).to(device)


class _KindRegistry(Registry[type[DrawingModel]]):
    """Drawing-model classes by the kind name their files store; registering sets the class's ``kind``."""

    def register(self, name: str, help: str = ""):
        def decorate(cls):
            cls.kind = name
            return Registry.register(self, name, help)(cls)

        return decorate

    def get(self, name: str) -> type[DrawingModel]:
        load_builtin_kinds()
        if name not in self:
            self.create(name)  # raises the InputError that lists the valid kinds
        return self._factories[name]


DRAWING_KINDS = _KindRegistry("drawing-encoder kind")

#: modules whose classes register the built-in kinds, exactly as a plugin would
BUILTIN_KINDS = (
    "figsearch.embed.encoders.drawing.cnn",
    "figsearch.embed.encoders.drawing.clip",
    "figsearch.embed.encoders.drawing.lines_head",
    "figsearch.embed.encoders.drawing.lines_backbone",
)
_kinds_loaded = False


def load_builtin_kinds() -> None:
    global _kinds_loaded
    if not _kinds_loaded:
        for module in BUILTIN_KINDS:
            importlib.import_module(module)
        _kinds_loaded = True


def kind_class_of(kind, source: str = "model") -> type[DrawingModel]:
    try:
        return DRAWING_KINDS.get(str(kind))
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
