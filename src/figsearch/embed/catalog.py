"""Encoders by specification string, the defaults, and the keys their vectors are stored under.

A specification is a registered name, optionally followed by ``:`` and a model argument:
``lines``, ``hog``, ``clip``, ``clip:ViT-B-32``, ``clip:/models/my-clip``, ``minilm``,
``stsb-roberta-base``, ``sbert:/models/my-sbert``. For text, any other string is taken as a
sentence-transformers model name or path.
"""

from __future__ import annotations

import hashlib
import importlib
import json

from figsearch.errors import InputError
from figsearch.embed.base import TEXT_ENCODERS, VISUAL_ENCODERS, TextEncoder, VisualEncoder, _Encoder
from figsearch.embed.masked import MaskedEncoder, split_mask
from figsearch.embed.sheet_context import SHEET_MARK, split_sheet_context

#: The visual encoder a new collection is indexed with. It must work offline. Since stop 13 it is the
#: shipped multi-level ``backbone`` model (frozen ImageNet MobileNetV2, 17 pooled feature maps, a head
#: trained on drawings, their classes and their text; run by onnxruntime). Chosen over the ``lines-head``
#: ``drawing`` model on training-side validation and speed: class level (even-numbered 2007 designs)
#: 0.065 vs 0.048, same-patent (held-out training patents) 0.660 vs 0.698, 5-7x the drawings per
#: second (44-55/s vs 8/s, idle 2 cores); it also carries text (words -> drawings). Since stop 15 it is
#: ``drawing-backbone3`` (the same graph and speed, its head trained with batches of 256): better on every
#: training-side validation set (same-patent 0.677 vs 0.660, class 0.070 vs 0.065, among all drawings 0.491
#: vs 0.468) and with a fusion calibration of its own. ``drawing-backbone4-lite0`` (EfficientNet-Lite0 levels) was
#: tried as the default in stop 17 and not kept: after its fusion calibration the default fused mode fell below the
#: text at class level (odd 2007 designs: auto 0.231 vs text 0.249), which issue 13 item 4 forbids.
#: Since stop 20 it is ``drawing-backbone5-lite0-288`` (EfficientNet-Lite0 levels at 288 px): the best visual
#: channel measured on every benchmark, and with its stop-20 fusion calibration (the near switch needs the text's
#: agreement) the default fused mode is at least the best single channel on every one, class level included
#: (auto 0.2491 vs text 0.2486) and above drawing-backbone3's auto on each (docs/evaluation.md, stop 20).
#: docs/encoder.md has the numbers and the caveats.
#: Since stop 27 with a sheet context (``@sheet=1``, ``embed.sheet_context``): a figure cut from a sheet is stored
#: as normalise(v_figure + v_sheet), chosen on the training side's held-out patents (visual same-patent AP@50 of
#: a build with OCR 0.543 -> 0.596; docs/encoder.md, "Stop 27"). The same network and vectors for everything else.
DEFAULT_VISUAL_ENCODER = "backbone:drawing-backbone5-lite0-288.onnx@sheet=1"
DEFAULT_TEXT_ENCODER = "minilm"

# Built-in backends register on import, exactly like plugins; "drawing" lives in its own
# package that may be absent from a checkout.
_BUILTIN_MODULES = (
    "figsearch.embed.encoders.hog",
    "figsearch.embed.encoders.lines",
    "figsearch.embed.encoders.clip",
    "figsearch.embed.encoders.text",
    "figsearch.embed.encoders.multilingual",
    "figsearch.embed.encoders.drawing",
    "figsearch.embed.encoders.backbone",
)
_OPTIONAL = {"figsearch.embed.encoders.drawing", "figsearch.embed.encoders.backbone"}
_loaded = False


def load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if module not in _OPTIONAL or exc.name != module:
                raise
    _loaded = True


def parse_spec(spec: str) -> tuple[str, str | None]:
    name, _, argument = spec.partition(":")
    return name.strip(), (argument.strip() or None)


def _create(registry, name: str, spec: str, options: dict):
    try:
        return registry.create(name, **options)
    except TypeError as exc:  # e.g. "hog:something": that encoder takes no model argument
        if "unexpected keyword argument" not in str(exc):
            raise
        raise InputError(f"{registry.kind} {spec!r}: {name} does not take these options ({exc})") from None


def create_visual(spec: str | None = None, **options) -> VisualEncoder:
    load_builtins()
    given = spec or DEFAULT_VISUAL_ENCODER
    spec, sheet = split_sheet_context(given)  # "SPEC@sheet=1": cut figures stored mixed with their sheet
    spec, mask = split_mask(spec)  # "SPEC@mask=labels": cleaned before encoding
    name, argument = parse_spec(spec)
    if argument is not None:
        options["model"] = argument
    encoder = _create(VISUAL_ENCODERS, name, spec, options)
    if sheet:
        encoder.sheet_context = sheet
        if encoder.identity.get("sheet_context") != sheet:
            raise InputError(f"visual encoder {given!r}: {name} cannot take {SHEET_MARK}; its identity does not "
                             "record the sheet context (the backbone encoders' does)")
    return MaskedEncoder(encoder, mask) if mask else encoder


def create_text(spec: str | None = None, **options) -> TextEncoder:
    load_builtins()
    spec = spec or DEFAULT_TEXT_ENCODER
    name, argument = parse_spec(spec)
    if name not in TEXT_ENCODERS:
        # a sentence-transformers model name or path given directly
        return TEXT_ENCODERS.create("sbert", model=spec, **options)
    if argument is not None:
        options["model"] = argument
    return _create(TEXT_ENCODERS, name, spec, options)


def encoder_key(encoder: _Encoder | dict) -> str:
    """Short stable key of an encoder identity: its name and a digest of everything that shapes its vectors."""
    identity = encoder if isinstance(encoder, dict) else encoder.identity
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return f"{identity['name']}:{digest}"
