"""Fresh drawing models to train, one ``Architecture`` per ``--arch`` name (the kind it makes).

Loading a model file needs only the kind's class in ``figsearch.embed.encoders.drawing``; making a
new, untrained one (random or pretrained starting weights, an initial projection), the training
defaults that suit it and, where they differ from ``model.prepare``, its training inputs live here.
A trainable kind is one ``Architecture`` registered under the kind's name; torch is imported when a
model is built, not when this module is imported.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from figsearch.errors import InputError
from figsearch.registry import Registry

if TYPE_CHECKING:
    from figsearch.embed.encoders.drawing.model import DrawingModel, Prepared
    from figsearch.embed.encoders.drawing.net import NetConfig
    from figsearch.train.run import RunSettings

#: lines-head defaults: output dims, hidden width of the residual MLP (0: linear), augmented copies
#: per drawing (``figsearch.train.lines_head``), the projection the head starts from
LINES_HEAD_DEFAULTS = {"dim": 256, "hidden": 0, "copies": 0, "projection": "lines_v1.npz"}


def create_cnn(
    layout: NetConfig | None = None,
    image_size: int = 64,
    input_scale: int = 4,
    style: NetConfig | None = None,
    style_options: dict | None = None,
    weights: dict | None = None,
) -> DrawingModel:
    """A randomly initialised ``cnn``: layout branch ``layout`` and/or style branch ``style`` (None leaves one out)."""
    from figsearch.embed.encoders.drawing.cnn import STYLE_DEFAULTS, CnnModel

    if layout is None and style is None:
        raise InputError("a drawing encoder needs a layout branch, a style branch or both")
    settings = {
        "layout": layout.to_dict() if layout else None,
        "style": ({**STYLE_DEFAULTS, **(style_options or {}), "net": style.to_dict()} if style else None),
        "weights": {"layout": 1.0, "style": 1.0, **(weights or {})},
    }
    return CnnModel(settings, image_size, input_scale)


def create_clip(source: str | os.PathLike | object, image_size: int | None = None) -> DrawingModel:
    """A ``clip`` model from a transformers CLIP checkpoint (hub name or local folder) or a ``CLIPVisionConfig`` (random weights)."""
    from figsearch.embed.encoders.drawing.clip import ClipModel, ClipOnInk, clip_classes

    vision_cls, config_cls = clip_classes()
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
    return ClipModel(settings, size, 1, module=ClipOnInk(clip))


def create_lines_head(
    dim: int | None = None, hidden: int | None = None, copies: int | None = None, projection: str | None = None
) -> DrawingModel:
    """A ``lines-head`` initialised as the lines encoder's projection (``projection``): untrained, it *is* ``lines``."""
    from figsearch.embed.encoders.drawing.lines_head import LinesHeadModel
    from figsearch.embed.encoders.lines import BLOCK_WEIGHTS
    from figsearch.train.lines_head import block_sizes, init_from_projection

    given = {"dim": dim, "hidden": hidden, "copies": copies, "projection": projection}
    head = {**LINES_HEAD_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    head.update(sizes=block_sizes(), block_weights=dict(BLOCK_WEIGHTS))
    model = LinesHeadModel({"lines": head, "weights": {"lines": 1.0}}, 0, 1)
    init_from_projection(model.module, head["projection"], int(head["dim"]))
    return model


class Architecture:
    """How to build a fresh model for ``--arch NAME`` and the training defaults that suit it."""

    name = ""
    #: peak learning rate when --lr is not given
    lr = 2e-3
    #: TrainConfig fields changed for this architecture
    train_defaults: dict = {}

    def build(self, settings: RunSettings) -> DrawingModel:
        raise NotImplementedError

    def prepare_for_training(self, model: DrawingModel, image, key: int) -> Prepared:
        """A drawing's training input; ``key`` (its index) seeds anything random. Default: ``model.prepare``."""
        return model.prepare(image)


ARCHITECTURES: Registry[Architecture] = Registry("encoder architecture")


@ARCHITECTURES.register("cnn", help="compact CNN trained from scratch")
class Cnn(Architecture):
    lr = 2e-3

    def build(self, settings: RunSettings) -> DrawingModel:
        from figsearch.embed.encoders.drawing.cnn import STYLE_NET
        from figsearch.embed.encoders.drawing.net import NetConfig

        unknown = set(settings.branches) - {"layout", "style"}
        if unknown or not settings.branches:
            raise InputError(f"--branches {','.join(settings.branches)}: choose layout, style or layout,style")
        layout = NetConfig(**settings.net_overrides) if "layout" in settings.branches else None
        style = replace(STYLE_NET, **settings.style_net_overrides) if "style" in settings.branches else None
        return create_cnn(layout, settings.image_size, settings.input_scale, style=style, style_options=settings.style_options)


@ARCHITECTURES.register("clip", help="CLIP vision tower fine-tuned")
class Clip(Architecture):
    lr = 1e-5
    train_defaults = {"weight_decay": 0.01, "warmup_epochs": 0.5}

    def build(self, settings: RunSettings) -> DrawingModel:
        if not settings.clip_model:
            raise InputError("--arch clip needs --clip-model: a local folder (or hub name) of a transformers CLIP")
        return create_clip(settings.clip_model, image_size=None)


@ARCHITECTURES.register("lines-head", help="metric head on the lines descriptor")
class LinesHeadArchitecture(Architecture):
    # the head starts from a good projection, so it learns gently (1e-3 wrecks the projection
    # within an epoch) and needs no warm-up
    lr = 1e-5
    train_defaults = {"warmup_epochs": 0.0}

    def build(self, settings: RunSettings) -> DrawingModel:
        return create_lines_head(**settings.head_options)

    def prepare_for_training(self, model: DrawingModel, image, key: int) -> Prepared:
        """(1 + copies, F): the drawing's lines features, then those of its augmented copies."""
        from figsearch.embed.encoders.drawing.model import Prepared
        from figsearch.train.lines_head import training_features

        return Prepared(None, None, training_features(image, int(model.settings["lines"]["copies"]), key))


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES.create(name)
    except InputError:
        raise InputError(f"unknown --arch {name!r}; choose one of: {', '.join(ARCHITECTURES.names())}") from None
