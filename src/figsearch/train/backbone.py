"""Training of the ``backbone`` drawing encoder (``figsearch train-encoder --arch backbone``).

The pretrained backbone stays frozen here (fine-tuning it on a few thousand drawings trained the
ImageNet semantics away, issue 13; ``train.finetune`` can still train its upper blocks afterwards, which
did not help on the GPU run of stop 15): its pooled features are computed once per drawing (cached
beside the output), and only a head is trained on them, in seconds per epoch:

- input: average-pooled last feature map, square roots, minus the training mean, L2-normalised; or
  with ``levels`` several maps of the same forward pass (``Pooled``), each level so normalised and
  weighted (``LevelNorm``), concatenated;
- head: a linear map to ``dim`` that starts as the PCA of the training features, optionally
  whitened (``whiten``: divided by the eigenvalues to that power) (an untrained head
  keeps the backbone's neighbourhoods), plus an optional zero-initialised residual MLP;
- loss: graded multi-positive InfoNCE over the batch — other sheets of the same patent weigh 1,
  drawings sharing a classification code weigh ``class_weights`` by the depth they share (USPC /
  Locarno class, subclass; CPC / IPC subclass, main group) — plus a text-alignment InfoNCE between
  each drawing and the MiniLM vector of its text (patent title and figure description) through a
  linear *text adapter*, which ships in the model so that words can search drawings;
- validation: held-out patents (seeded), scored by same-patent mAP@50 and same-class mAP@50
  relative to the untrained head; the best epoch is kept.

The result is exported as one ONNX file (backbone + pooling + head) with the settings, the text
adapter and the training record in its metadata, plus the record as a ``.json`` twin.
Imports torch: load it lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from figsearch.embed.encoders.backbone import FORMAT, FORMAT_VERSION, METADATA_KEY, pack_array, prepare_grey
from figsearch.embed.encoders.backbone_nets import BACKBONES, build_backbone, file_digest, normalise, weights_path
from figsearch.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class BackboneSettings:
    collections: list[str]
    out: str
    backbone: str = "mobilenetv2"
    image_size: int = 224
    dim: int = 256
    hidden: int = 0
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    temperature: float = 0.1
    text_weight: float = 1.0
    #: positive weight of drawings sharing a class at depth 1 and at depth 2 (same patent: 1)
    class_weights: tuple[float, float] = (0.5, 1.0)
    val_fraction: float = 0.2
    #: share of the training patents used (learning curves)
    train_fraction: float = 1.0
    seed: int = 0
    #: seed of the head's random start and of the batch order (None: ``seed``); the validation split stays
    #: ``seed``'s, so heads of several head seeds are validated on the same held-out patents
    head_seed: int | None = None
    #: heads trained with head seeds head_seed, head_seed + 1, ... on the same features and split, merged into one
    #: linear head of the same size (``merge_heads``); 1: one head
    heads: int = 1
    #: how several heads become one (``merge_heads``): ``pca`` or ``average``
    head_merge: str = "pca"
    threads: int | None = None
    strip_headers: bool = True
    #: patents (publication numbers, or numbers) left out entirely, e.g. an evaluation set
    exclude: list[str] = field(default_factory=list)
    text_model: str = "minilm"
    #: feature maps pooled in the one forward pass (``LEVELS``): ``f18`` the last 1,280-channel map
    #: (average-pooled), ``hN`` the expanded activations inside MobileNetV2 block N (GeM-pooled)
    levels: tuple[str, ...] = ("f18",)
    #: weight of each level after its own centring and L2 normalisation (1 for all when empty)
    level_weights: tuple[float, ...] = ()
    #: the head starts as the PCA divided by the eigenvalues to this power (0: plain PCA)
    whiten: float = 0.0
    #: patents (one a line) held out for class-level validation (e.g. a seeded half of a labelled set):
    #: never trained on, distractors for the same-patent validation, scored by same class at depth 1
    class_val: list[str] = field(default_factory=list)
    #: ``lines``: hold out the multi-drawing patents that ``--arch lines-head`` holds out (train.parts.split_groups);
    #: ``all``: a seeded share of all patents (the first backbone model's split)
    val_split: str = "all"
    #: distillation teacher: a visual encoder spec (e.g. ``drawing:lines-head.pt``) whose vectors of the
    #: training drawings the head's similarities are pulled towards (relational distillation); "" for none
    distill: str = ""
    #: weight of the distillation loss (the batch's similarity distributions, KL teacher -> head)
    distill_weight: float = 1.0
    #: temperature of both similarity distributions of the distillation loss
    distill_temperature: float = 0.05
    #: add the held-out patents' same-patent score among *all* drawings (training ones as distractors)
    #: to the best-epoch rule
    select_distractors: bool = False
    #: epochs of fine-tuning the backbone's upper blocks with the head on augmented drawings, after the head has been
    #: trained on the frozen features (0: the backbone stays frozen; ``train.finetune``)
    finetune_epochs: int = 0
    #: first layer trained when fine-tuning, the layers below it stay frozen: MobileNetV2's ``features`` 0-18;
    #: EfficientNet-Lite 0 the stem, N + 1 block N (level hN), the last index the head convolution
    #: (``train.finetune.finetune_layers``)
    finetune_from: int = 12
    #: re-estimate the backbone's BatchNorm statistics on the training drawings before anything else (AdaBN:
    #: the ImageNet statistics describe photographs, not line drawings); the weights stay as they are
    adapt_bn: bool = False
    #: learning rates of the backbone's blocks and of the head while fine-tuning (cosine decay)
    backbone_lr: float = 1e-5
    finetune_lr: float = 1e-4
    #: weight of the pull of the fine-tuned weights back to the pretrained ones (L2-SP; 0: none)
    anchor: float = 0.0
    #: random drawing-like distortions of every training drawing while fine-tuning (``train.augment``)
    augment: bool = True
    #: fine-tune on cached activations (``train.finetune.ActivationCache``): the frozen layers below ``finetune_from``
    #: run once per drawing and per augmented view, not in every epoch; None: on the CPU (where that is the cost),
    #: not on a GPU (which affords a fresh augmented view of every drawing in every epoch)
    cached_activations: bool | None = None
    #: augmented views of every training drawing in the cache (each epoch draws one of them per drawing)
    augment_views: int = 3
    #: a folder where cached activations are kept and found again by later runs from the same bundle and weights
    #: ("": in memory only)
    activation_cache: str = ""
    #: cache the activations at this layer (at most ``finetune_from``; None: ``finetune_from``) so that runs from
    #: several layers share one cache folder; the layers between run once, frozen, at the start of a run
    cache_layer: int | None = None
    #: a training bundle (prepared drawings, texts, labels; ``train.finetune``) used instead of the collections
    bundle: str = ""
    #: torch device of the fine-tuning ("" : cuda when present, else cpu)
    device: str = ""
    #: seconds after the run's start at which fine-tuning stops (the best epoch so far is kept); None: no limit
    time_budget: float | None = None
    command: str = ""


# -- data ------------------------------------------------------------------------------------


@dataclass
class Item:
    figure_id: str
    patent: str
    path: str
    text: str
    levels: tuple[str, ...]
    source: str = ""


def _class_levels(patent) -> tuple[str, ...]:
    """Classification levels that mean 'the same kind of thing': USPC/Locarno class and subclass,
    CPC/IPC subclass and main group (their sections and classes are too broad)."""
    from figsearch.evaluate.classes import levels

    for scheme in ("USPC", "Locarno", "CPC", "IPC"):
        for c in patent.classifications:
            if c.scheme != scheme:
                continue
            try:
                cut = levels(scheme, c.code)
            except Exception:  # an unreadable code is no class
                cut = ()
            if scheme in ("CPC", "IPC"):
                cut = cut[2:4]
            if cut:
                return tuple(f"{scheme}:{x}" for x in cut)
    return ()


def source_folders(items: Sequence[Item]) -> dict[str, int]:
    """Drawings trained on per source folder (the first folder below the sources' common parent)."""
    from figsearch.train.trainset import count_by_folder

    return count_by_folder([i.source for i in items if i.source])


def _excluded(patent: str, exclude: set[str]) -> bool:
    if not exclude:
        return False
    stripped = patent.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    candidates = {patent, patent[:-2] if len(patent) > 2 else patent, stripped}
    return bool(candidates & exclude) or any(patent.startswith(e) for e in exclude)


def collection_items(paths: Sequence[str | os.PathLike], exclude: Sequence[str] = ()) -> list[Item]:
    """Every drawing of the collections (deduplicated by image) with its patent, text and class levels."""
    from figsearch.records import FigureRole
    from figsearch.store import Collection

    skip = {e.strip() for e in exclude if e.strip()}
    items, seen = [], set()
    for path in paths:
        with Collection.open(path) as collection:
            patents: dict = {}
            for figure in collection.figures(roles=(FigureRole.DRAWING,)):
                if figure.parent_id is not None or not figure.image_path or _excluded(figure.patent, skip):
                    continue
                key = figure.image_sha256 or figure.image_path
                if key in seen:
                    continue
                seen.add(key)
                if figure.patent not in patents:
                    patents[figure.patent] = collection.patent(figure.patent)
                patent = patents[figure.patent]
                text = ". ".join(t.strip() for t in (patent.title, figure.description) if t and t.strip())
                items.append(Item(figure.figure_id, figure.patent, str(collection.path(figure.image_path)), text,
                                  _class_levels(patent), figure.source_file or ""))
    if not items:
        raise InputError(f"no drawings to train on in {', '.join(map(str, paths))}; ingest patents with drawings first")
    return items


# -- features --------------------------------------------------------------------------------


#: levels that can be pooled: the last map and the expanded activations of MobileNetV2's blocks 2-17
LEVELS = tuple(f"h{i}" for i in range(2, 18)) + ("f18",)
#: EfficientNet-Lite backbones: their number of blocks (levels ``h0`` ... ``h{n-1}``, then ``f18``, the last map)
LITE_BLOCKS = {"efficientnet-lite0": 16, "efficientnet-lite1": 21}


def backbone_levels(name: str) -> tuple[str, ...]:
    """The levels of a backbone in network order: ``hN`` the expanded activations of block N after its depthwise
    convolution, ``f18`` the last 1,280-channel map (named after MobileNetV2's layer 18 for every backbone)."""
    if name in LITE_BLOCKS:
        return tuple(f"h{i}" for i in range(LITE_BLOCKS[name])) + ("f18",)
    return LEVELS


def level_channels(name: str, levels: Sequence[str]) -> list[int]:
    """Channels of each level, in network order."""
    if tuple(levels) == ("f18",):
        return [BACKBONES[name][3]]
    if name in LITE_BLOCKS:
        net = build_backbone(name, pretrained=False).net
        channels = {f"h{i}": int(block._bn1.num_features) for i, block in enumerate(net._blocks)}
    elif name == "mobilenetv2":
        from figsearch.embed.encoders.backbone_nets import MobileNetV2Features

        channels, inp, index = {}, 32, 1
        for t, c, n, _ in MobileNetV2Features.SETTINGS:
            for _ in range(n):
                channels[f"h{index}"] = inp * t
                inp, index = c, index + 1
    else:
        raise InputError(f"--levels other than f18 need the mobilenetv2 or an efficientnet-lite backbone (not {name})")
    channels["f18"] = 1280
    return [channels[level] for level in ordered_levels(levels, name)]


def ordered_levels(levels: Sequence[str], name: str = "mobilenetv2") -> list[str]:
    known = backbone_levels(name)
    unknown = [level for level in levels if level not in known]
    if unknown or not levels:
        raise InputError(f"unknown {name} levels {unknown or levels}; choose from {', '.join(known)}")
    return sorted(set(levels), key=known.index)


class Pooled(nn.Module):
    """grey (B, 1, S, S) in [0, 255] -> the backbone's pooled features, square-rooted (B, C).

    Levels ``("f18",)``: the last map average-pooled (the first backbone model). Otherwise every
    level of ``levels`` from the same forward pass, concatenated in network order: ``hN`` the
    expanded activations of block N after its depthwise convolution (ReLU6, GeM p = 3), ``f18``
    the last map (average)."""

    def __init__(self, name: str, backbone: nn.Module, levels: Sequence[str] = ("f18",)) -> None:
        super().__init__()
        self.name = name
        self.backbone = backbone
        self.levels = tuple(ordered_levels(levels, name))
        if self.levels != ("f18",):
            level_channels(name, self.levels)  # mobilenetv2 or efficientnet-lite only

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        x = normalise(self.name, grey)
        if self.levels == ("f18",):
            return torch.sqrt(self.backbone(x).mean(dim=(2, 3)).clamp_min(0) + 1e-12)
        return pooled_features(self.run_layers(x, 0, self.layer_count())[1])

    def layer_count(self) -> int:
        """Layers as ``--finetune-from`` counts them (``train.finetune.finetune_layers``): MobileNetV2's ``features``
        0-18; EfficientNet-Lite 0 the stem, N + 1 its block N, the last the head convolution."""
        return LITE_BLOCKS[self.name] + 2 if self.name in LITE_BLOCKS else len(self.backbone.features)

    def run_layers(self, x: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Layers ``start`` to ``stop - 1`` from ``x``, the input of layer ``start`` (for 0 the normalised drawing):
        the activation after them and the pooled levels they produce, in network order, before the square root
        (``pooled_features``). ``forward`` is every layer; fine-tuning on cached activations splits it in two."""
        if self.name in LITE_BLOCKS:
            return self._lite(x, start, stop)
        outs, last = [], len(self.backbone.features) - 1
        for index in range(start, stop):
            layer = self.backbone.features[index]
            if f"h{index}" in self.levels:
                split = 2 if len(layer.conv) == 4 else 1
                hidden = layer.conv[:split](x)
                outs.append(hidden.clamp_min(0).pow(3).mean(dim=(2, 3)).add(1e-12).pow(1.0 / 3.0))
                y = layer.conv[split:](hidden)
                x = x + y if layer.use_res else y
            else:
                x = layer(x)
            if index == last and "f18" in self.levels:
                outs.append(x.mean(dim=(2, 3)))
        return x, outs

    def _lite(self, x: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """EfficientNet-Lite levels: block N's expanded activation after its depthwise convolution, BN and ReLU6
        (GeM p = 3), the last map averaged; the package's own ``extract_features`` computation otherwise."""
        net, outs, blocks = self.backbone.net, [], len(self.backbone.net._blocks)
        for layer in range(start, stop):
            if layer == 0:
                x = net._swish(net._bn0(net._conv_stem(x)))
            elif layer <= blocks:
                index = layer - 1
                block = net._blocks[index]
                args = block._block_args
                hidden = block._swish(block._bn0(block._expand_conv(x))) if args.expand_ratio != 1 else x
                hidden = block._swish(block._bn1(block._depthwise_conv(hidden)))
                if f"h{index}" in self.levels:
                    outs.append(hidden.clamp_min(0).pow(3).mean(dim=(2, 3)).add(1e-12).pow(1.0 / 3.0))
                y = block._bn2(block._project_conv(hidden))  # Lite blocks have no squeeze-excitation
                x = y + x if args.id_skip and args.stride == 1 and args.input_filters == args.output_filters else y
            elif "f18" in self.levels:  # the head convolution: only the last map's level needs it
                x = net._swish(net._bn1(net._conv_head(x)))
                outs.append(x.mean(dim=(2, 3)))
        return x, outs


def pooled_features(outs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``Pooled``'s output from the pooled levels of ``Pooled.run_layers`` (network order)."""
    return torch.sqrt(torch.cat(list(outs), dim=1).clamp_min(0) + 1e-12)


class LevelNorm(nn.Module):
    """Pooled features -> each level minus its training mean, L2-normalised, weighted; concatenated.
    One level of weight 1 is exactly the first model's ``normalize(pooled - mean)``."""

    def __init__(self, mean: np.ndarray, channels: Sequence[int], weights: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, np.float32)).clone())
        self.bounds = [int(b) for b in np.cumsum([0, *channels])]
        self.weights = [float(w) for w in weights]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - self.mean
        if len(self.weights) == 1 and self.weights[0] == 1.0:
            return F.normalize(x, dim=1)
        parts = [w * F.normalize(x[:, a:b], dim=1) for a, b, w in zip(self.bounds[:-1], self.bounds[1:], self.weights)]
        return torch.cat(parts, dim=1)


def level_norm_numpy(features: np.ndarray, mean: np.ndarray, channels: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    """``LevelNorm`` in numpy (training on cached features)."""
    with torch.no_grad():
        return LevelNorm(mean, channels, weights)(torch.from_numpy(np.asarray(features, np.float32))).numpy()


def level_weights(settings: "BackboneSettings") -> list[float]:
    levels = ordered_levels(settings.levels, settings.backbone)
    if not settings.level_weights:
        return [1.0] * len(levels)
    if len(settings.level_weights) != len(levels):
        raise InputError(f"--level-weights needs one weight per level ({len(levels)}: {', '.join(levels)})")
    return [float(w) for w in settings.level_weights]


def _load_grey(path: str, size: int, strip_headers: bool) -> np.ndarray:
    from PIL import Image

    from figsearch.embed.preprocess import prepare_drawing

    with Image.open(path) as image:
        grey = image.convert("L")
    if strip_headers:
        return prepare_grey(grey, size)
    return np.asarray(prepare_drawing(grey, size), dtype=np.uint8)


def _runner(module: nn.Module, size: int, threads: int | None):
    """A function (B, S, S) uint8 -> (B, C) float32: onnxruntime when installed (much faster on CPU), else torch."""
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        handle, name = tempfile.mkstemp(suffix=".onnx")
        os.close(handle)
        try:
            _export(module, Path(name), size, {})
            options = ort.SessionOptions()
            options.intra_op_num_threads = int(threads or min(2, os.cpu_count() or 1))
            options.log_severity_level = 3
            session = ort.InferenceSession(name, options, providers=["CPUExecutionProvider"])
        finally:
            os.unlink(name)
        return lambda grey: session.run(None, {"grey": grey[:, None].astype(np.float32)})[0]

    def run(grey: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(grey[:, None].astype(np.float32))).numpy()

    return run


def extract_features(
    items: Sequence[Item], settings: BackboneSettings, cache: Path | None = None, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """(N, C) pooled backbone features of the items, cached in ``cache`` keyed by images and settings."""
    digest = hashlib.sha256()
    levels = ordered_levels(settings.levels, settings.backbone)
    tag = "" if levels == ["f18"] else "|" + ",".join(levels)
    digest.update(f"{settings.backbone}|{settings.image_size}|{settings.strip_headers}|v1{tag}\n".encode())
    for item in items:
        digest.update(f"{item.figure_id}|{item.path}\n".encode())
    key = digest.hexdigest()[:16]
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return stored["features"]
    module = Pooled(settings.backbone, build_backbone(settings.backbone), levels)
    run = _runner(module, settings.image_size, settings.threads)
    parts = []
    for start in range(0, len(items), 32):
        chunk = items[start : start + 32]
        grey = np.stack([_load_grey(i.path, settings.image_size, settings.strip_headers) for i in chunk])
        parts.append(run(grey))
        if progress:
            progress(len(chunk))
    features = np.concatenate(parts).astype(np.float32)
    if cache is not None:
        np.savez(cache, key=key, features=features)
    return features


def _teacher_encoder(spec: str):
    from figsearch.embed.catalog import create_visual

    try:
        return create_visual(spec)
    except Exception as exc:  # a missing or unreadable teacher model: one clear error naming it
        raise InputError(f"cannot load the distillation teacher {spec!r}: {exc}") from exc


def teacher_key(items: Sequence[Item], spec: str) -> str:
    """The key of a teacher-vector cache: the teacher's spec and the drawings, in order."""
    digest = hashlib.sha256(f"teacher|{spec}|v1\n".encode())
    for item in items:
        digest.update(f"{item.figure_id}|{item.path}\n".encode())
    return digest.hexdigest()[:16]


def teacher_vectors(items: Sequence[Item], spec: str, cache: Path | None = None,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
    """(N, D) unit vectors of the items by the visual encoder ``spec`` (the distillation teacher), cached in
    ``cache`` keyed by the spec and the images."""
    from PIL import Image

    key = teacher_key(items, spec)
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return stored["vectors"]
    encoder = _teacher_encoder(spec)
    parts = []
    for start in range(0, len(items), 16):
        chunk = items[start : start + 16]
        images = []
        for item in chunk:
            with Image.open(item.path) as image:
                images.append(image.convert("L"))
        parts.append(np.asarray(encoder.encode(images), np.float32))
        if progress:
            progress(len(chunk))
    vectors = np.concatenate(parts)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if cache is not None:
        np.savez(cache, key=np.asarray(key), vectors=vectors)
    return vectors


# -- head and loss ---------------------------------------------------------------------------


class Head(nn.Module):
    """Centred, normalised features -> unit vectors (linear map + optional residual MLP); text adapter beside."""

    def __init__(self, d_in: int, dim: int, hidden: int, text_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, dim)) if hidden else None
        if self.mlp is not None:
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)
        self.text = nn.Linear(text_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        if self.mlp is not None:
            y = y + self.mlp(x)
        return F.normalize(y, dim=1)

    def text_vectors(self, t: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(t), dim=1)


class Encoder(nn.Module):
    """What the ONNX file holds: grey drawing -> unit vector."""

    def __init__(self, pooled: Pooled, norm: LevelNorm, head: Head) -> None:
        super().__init__()
        self.pooled = pooled
        self.norm = norm
        self.head = head

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.pooled(grey)))


def positive_weights(patents: np.ndarray, levels: list[tuple[str, ...]], class_weights: Sequence[float]) -> torch.Tensor:
    """(B, B) weights of each pair as positives: 1 same patent, else class_weights[d-1] for the deepest shared level d."""
    n = len(patents)
    weights = (patents[:, None] == patents[None, :]).astype(np.float32)
    for depth in range(min(len(class_weights), max((len(lv) for lv in levels), default=0)), 0, -1):
        codes = np.array([lv[depth - 1] if len(lv) >= depth else f"\0{i}" for i, lv in enumerate(levels)])
        shared = (codes[:, None] == codes[None, :]) & (weights == 0)
        weights[shared] = float(class_weights[depth - 1])
    np.fill_diagonal(weights, 0.0)
    return torch.from_numpy(weights[:n, :n])


def graded_infonce(z: torch.Tensor, weights: torch.Tensor, temperature: float) -> torch.Tensor:
    has = weights.sum(1) > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    logits = (z @ z.T / temperature).masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), -1e9)
    logp = torch.log_softmax(logits, dim=1)
    return -((weights * logp).sum(1)[has] / weights.sum(1)[has]).mean()


def text_infonce(z: torch.Tensor, t: torch.Tensor, same: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between drawings and texts; texts of the same patent are all positives."""
    logits = z @ t.T / temperature
    a = -((same * torch.log_softmax(logits, 1)).sum(1) / same.sum(1)).mean()
    b = -((same * torch.log_softmax(logits.T, 1)).sum(1) / same.sum(1)).mean()
    return (a + b) / 2


def relational_kl(z: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || head) of each row's softmax over the batch's other items: the head learns the teacher's
    neighbourhoods (which drawings look alike to it), not its coordinates."""
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    target = torch.softmax((teacher @ teacher.T / temperature).masked_fill(eye, -1e9), dim=1)
    logp = torch.log_softmax((z @ z.T / temperature).masked_fill(eye, -1e9), dim=1)
    return (target * (torch.log(target.clamp_min(1e-12)) - logp)).sum(1).mean()


def per_query_ap(vectors: np.ndarray, labels: Sequence[str]) -> list[float | None]:
    """AP@50 (trec_eval's: divided by all relevant) of every item against the others, same label relevant;
    None for an item with nothing to find."""
    labels = np.asarray(labels)
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    aps: list[float | None] = []
    for q in range(len(labels)):
        relevant = labels == labels[q]
        relevant[q] = False
        if not relevant.any():
            aps.append(None)
            continue
        top = np.argsort(-scores[q], kind="stable")[:50]
        hits = relevant[top]
        aps.append(float((np.cumsum(hits) / np.arange(1, len(top) + 1) * hits).sum() / relevant.sum()))
    return aps


def map_at_50(vectors: np.ndarray, labels: Sequence[str]) -> float | None:
    """Mean AP@50 (trec_eval's: divided by all relevant) of every item against the others; None if nothing to find."""
    aps = [ap for ap in per_query_ap(vectors, labels) if ap is not None]
    return float(np.mean(aps)) if aps else None


def _query_map(queries: np.ndarray, vectors: np.ndarray, relevant: np.ndarray) -> float | None:
    """Mean AP@50 of query vectors against item vectors, ``relevant`` (Q, N) booleans."""
    return _ranked_map(queries @ vectors.T, relevant)


def _ranked_map(scores: np.ndarray, relevant: np.ndarray) -> float | None:
    """Mean AP@50 of each row of ``scores`` (Q, N) against ``relevant`` (Q, N) booleans."""
    aps = []
    for q in range(len(scores)):
        if not relevant[q].any():
            continue
        top = np.argsort(-scores[q], kind="stable")[:50]
        hits = relevant[q][top]
        aps.append(float((np.cumsum(hits) / np.arange(1, len(top) + 1) * hits).sum() / relevant[q].sum()))
    return float(np.mean(aps)) if aps else None


def _split(patents: list[str], fraction: float, seed: int) -> set[str]:
    unique = sorted(set(patents))
    order = np.random.default_rng([seed, 7]).permutation(len(unique))
    return {unique[i] for i in order[: int(round(fraction * len(unique)))]}


def split_masks(patents: np.ndarray, settings: BackboneSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, set[str]]:
    """Boolean masks (train, same-patent validation, class-level validation) and the held-out patents."""
    if settings.val_split == "lines":
        from figsearch.train.parts import split_groups

        val_patents = split_groups(list(patents), settings.val_fraction, settings.seed)
    elif settings.val_split == "all":
        val_patents = _split(list(patents), settings.val_fraction, settings.seed) if settings.val_fraction > 0 else set()
    else:
        raise InputError(f"unknown validation split {settings.val_split!r}: choose lines or all")
    val = np.array([p in val_patents for p in patents])
    class_set = {c.strip() for c in settings.class_val if c.strip()}
    class_val = np.array([_excluded(p, class_set) for p in patents]) & ~val
    train = ~val & ~class_val
    if settings.train_fraction < 1:
        keep = _split(list(patents[train]), settings.train_fraction, settings.seed + 13)
        train &= np.array([p in keep for p in patents])
    if train.sum() < 2:
        raise InputError("too few training drawings after the validation split")
    return train, val, class_val, val_patents


def initial_projection(x_train: np.ndarray, dim: int, whiten: float) -> np.ndarray:
    """(dim, D) start of the head: the PCA of the training features, divided by the eigenvalues to ``whiten``."""
    centred = x_train - x_train.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    dim = min(dim, vt.shape[0])
    start = vt[:dim]
    if whiten:
        eig = np.maximum(sv[:dim] ** 2 / max(len(x_train) - 1, 1), 1e-12)
        start = start / np.power(eig, whiten)[:, None]
        start = start / np.linalg.norm(start, axis=1).mean()  # scale-free for the optimiser
    return start.astype(np.float32)


class Validation:
    """Validation mAP@50 of drawing vectors: same patent (held-out patents; class-validation drawings as
    distractors), same class at depth 1 (class-validation drawings, else the held-out ones), words -> drawings
    (each held-out patent's text queries the held-out drawings; its own drawings and those of equal texts are
    relevant), and same patent among all drawings (the training ones as distractors too: a collection with
    many drawings like those trained on)."""

    def __init__(self, patents: np.ndarray, levels: Sequence[tuple[str, ...]], texts: np.ndarray | None,
                 has_text: np.ndarray | None, val: np.ndarray, class_val: np.ndarray) -> None:
        self.patents, self.texts, self.has_text = patents, texts, has_text
        self.vi = np.flatnonzero(val)
        self.ci = np.flatnonzero(class_val)
        self.si = np.flatnonzero(val | class_val)
        self.same_labels = [patents[i] if val[i] else f"\0c{i}" for i in self.si]
        self.all_relevant = patents[self.vi][:, None] == patents[None, :]
        self.all_relevant[np.arange(len(self.vi)), self.vi] = False
        self.class_labels = [lv[0] if lv else f"\0{i}" for i, lv in enumerate(levels)]

    def scores(self, every: np.ndarray, text_vectors: Callable[[np.ndarray], np.ndarray] | None = None
               ) -> tuple[float | None, float | None, float | None, float | None]:
        """(same patent, same class, words -> drawings, same patent among all) of the vectors of every drawing;
        ``text_vectors`` maps rows of the text embeddings into the drawing space."""
        vi, ci, si = self.vi, self.ci, self.si
        if vi.size == 0:
            return None, None, None, None
        scores = every[vi] @ every.T
        scores[np.arange(len(vi)), vi] = -np.inf
        many = _ranked_map(scores, self.all_relevant)
        sp = map_at_50(every[si], self.same_labels)
        cl_index = ci if ci.size else vi
        cl = map_at_50(every[cl_index], [self.class_labels[i] for i in cl_index])
        words = None
        texts, has_text, patents = self.texts, self.has_text, self.patents
        if text_vectors is not None and texts is not None and has_text is not None and has_text[vi].any():
            qi = vi[has_text[vi]]
            q = text_vectors(texts[qi])
            equal = (texts[qi] @ texts[vi].T) > 0.999
            relevant = equal | (patents[qi][:, None] == patents[vi][None, :])
            words = _query_map(q, every[vi], relevant)
        return sp, cl, words, many


def selection_score(settings: BackboneSettings, current: tuple, base: tuple, fallback: float) -> float:
    """The best-epoch rule: visual scores relative to the untrained head (keep what the backbone knew),
    plus words -> drawings; ``current`` and ``base`` are Validation.scores tuples."""
    sp, cl, words, many = current
    base_sp, base_cl, _, base_many = base
    pairs = [(sp, base_sp), (cl, base_cl)] + ([(many, base_many)] if settings.select_distractors else [])
    parts = [v / b for v, b in pairs if v is not None and b]
    if words is not None and settings.text_weight > 0:
        parts.append(words)
    return float(np.sum(parts)) if parts else fallback


def epoch_order(train_idx: np.ndarray, patents: np.ndarray, seed: int, epoch: int) -> list[int]:
    """The training drawings of one epoch in batch order: a patent's sheets in chunks of 4 (so that a batch
    holds positives), the chunks shuffled (seeded by epoch)."""
    rng = np.random.default_rng([seed, epoch])
    groups: dict[str, list[int]] = {}
    for i in train_idx:
        groups.setdefault(patents[i], []).append(int(i))
    chunks = []
    for ids in groups.values():
        ids = list(rng.permutation(ids))
        chunks += [ids[k : k + 4] for k in range(0, len(ids), 4)]
    return [i for c in rng.permutation(len(chunks)) for i in chunks[c]]


def batch_loss(z: torch.Tensor, head: "Head", idx: np.ndarray, patents: np.ndarray, levels: Sequence[tuple[str, ...]],
               tt: torch.Tensor | None, has_text: np.ndarray | None, settings: BackboneSettings) -> torch.Tensor:
    """Graded same-patent / same-class InfoNCE of the batch's vectors ``z``, plus the text alignment (``tt``: the
    text embeddings of every drawing, on z's device)."""
    device = z.device
    weights = positive_weights(patents[idx], [levels[i] for i in idx], settings.class_weights).to(device)
    loss = graded_infonce(z, weights, settings.temperature)
    if tt is not None and has_text is not None and settings.text_weight > 0:
        with_text = has_text[idx]
        if with_text.sum() > 1:
            p = patents[idx][with_text]
            t = tt[torch.as_tensor(idx[with_text], device=tt.device)]
            # texts of the same patent, and equal texts of other patents, are positives too
            same_patent = torch.from_numpy((p[:, None] == p[None, :]).astype(np.float32)).to(device)
            same = ((t @ t.T) > 0.999).float().clamp_min(same_patent)
            mask = torch.from_numpy(with_text).to(device)
            loss = loss + settings.text_weight * text_infonce(z[mask], head.text_vectors(t), same, settings.temperature)
    return loss


def epoch_stats(epoch: int, losses: Sequence[float], current: tuple) -> dict:
    sp, cl, words, many = current
    return {"epoch": epoch, "loss": round(float(np.mean(losses)), 4),
            "val_same_patent": None if sp is None else round(sp, 4), "val_same_class": None if cl is None else round(cl, 4),
            "val_words": None if words is None else round(words, 4),
            "val_same_patent_all": None if many is None else round(many, 4)}


def train_head(
    features: np.ndarray,
    patents: Sequence[str],
    levels: list[tuple[str, ...]],
    texts: np.ndarray | None,
    has_text: np.ndarray | None,
    settings: BackboneSettings,
    on_epoch: Callable[[dict], None] | None = None,
    teacher: np.ndarray | None = None,
    device: str = "cpu",
) -> dict:
    """Train the head on cached features; returns the best head, the mean, the curve and the split sizes.
    ``teacher``: (N, D) unit vectors of a teacher encoder for relational distillation (``settings.distill_weight``).
    ``device``: where the head trains (the returned head stays there)."""
    head_seed = settings.seed if settings.head_seed is None else settings.head_seed
    torch.manual_seed(head_seed)
    patents = np.asarray(patents)
    train, val, class_val, val_patents = split_masks(patents, settings)
    channels = level_channels(settings.backbone, settings.levels)
    if sum(channels) != features.shape[1]:
        raise InputError(f"features have {features.shape[1]} values, levels {settings.levels} give {sum(channels)}")
    weights = level_weights(settings)
    mean = features[train].mean(0)
    x = level_norm_numpy(features, mean, channels, weights)
    text_dim = texts.shape[1] if texts is not None else 1
    head = Head(x.shape[1], settings.dim, settings.hidden, text_dim)
    start = initial_projection(x[train], settings.dim, settings.whiten)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.weight[: len(start)].copy_(torch.from_numpy(start))
    head = head.to(device)
    xt = torch.from_numpy(x.astype(np.float32)).to(device)
    teacher_t = None
    if teacher is not None and settings.distill_weight > 0:
        if len(teacher) != len(x):
            raise InputError(f"teacher vectors for {len(teacher)} drawings, features for {len(x)}")
        teacher_t = F.normalize(torch.from_numpy(np.asarray(teacher, np.float32)), dim=1).to(device)
    tt = torch.from_numpy(texts.astype(np.float32)).to(device) if texts is not None else None
    validation = Validation(patents, levels, texts, has_text, val, class_val)

    def validate() -> tuple[float | None, float | None, float | None, float | None]:
        head.eval()
        with torch.no_grad():
            return validation.scores(head(xt).cpu().numpy(),
                                     lambda t: head.text_vectors(torch.from_numpy(t.astype(np.float32)).to(device)).cpu().numpy())

    base = validate()
    base_sp, base_cl, _, base_many = base
    optimiser = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    train_idx = np.flatnonzero(train)
    per_epoch = int(np.ceil(len(train_idx) / settings.batch_size))
    total, step = settings.epochs * per_epoch, 0
    best = {"score": -np.inf, "epoch": 0, "state": {k: v.clone() for k, v in head.state_dict().items()}}
    curve = []
    for epoch in range(1, settings.epochs + 1):
        head.train()
        flat = epoch_order(train_idx, patents, head_seed, epoch)
        losses = []
        for start in range(0, len(flat), settings.batch_size):
            idx = np.array(flat[start : start + settings.batch_size])
            lr = settings.lr * 0.5 * (1 + np.cos(np.pi * step / max(total, 1)))
            step += 1
            for group in optimiser.param_groups:
                group["lr"] = lr
            rows = torch.as_tensor(idx, device=xt.device)
            z = head(xt[rows])
            loss = batch_loss(z, head, idx, patents, levels, tt, has_text, settings)
            if teacher_t is not None:
                loss = loss + settings.distill_weight * relational_kl(z, teacher_t[rows], settings.distill_temperature)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        current = validate()
        score = selection_score(settings, current, base, -float(np.mean(losses)))
        stats = epoch_stats(epoch, losses, current)
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "state": {k: v.clone() for k, v in head.state_dict().items()}}
            stats["best"] = True
        curve.append(stats)
        if on_epoch:
            on_epoch(stats)
    head.load_state_dict(best["state"])
    head.eval()
    return {"head": head, "mean": mean, "channels": channels, "weights": weights, "curve": curve,
            "best_epoch": best["epoch"],
            "untrained": {"val_same_patent": base_sp, "val_same_class": base_cl, "val_same_patent_all": base_many},
            "n_train": int(train.sum()), "n_val": int(val.sum()), "n_class_val": int(class_val.sum()),
            "train_patents": int(len(set(patents[train]))), "val_patents": int(len(val_patents))}


def merge_heads(heads: Sequence[Head], x_train: np.ndarray, texts_train: np.ndarray | None, how: str = "pca") -> Head:
    """One linear head of the same shape as each of ``heads``, made of their linear maps (the visual one and the text
    adapter), each map first divided by the mean length of its outputs on the training drawings (texts) so that
    every head counts alike. ``average``: the mean of the maps (a "model soup"; the heads share their start, the PCA
    of the training features, and differ by their random start and batch order). ``pca``: the maps stacked (the
    heads' outputs concatenated) and projected onto the top principal axes (uncentred) of the training drawings'
    concatenated outputs, back to one head's dimensions. Either way the result costs what one head costs."""
    if not heads:
        raise InputError("no heads to merge")
    if how not in ("pca", "average"):
        raise InputError(f"unknown way to merge heads {how!r}: choose pca or average")
    if any(h.mlp is not None for h in heads):
        raise InputError("heads with a hidden layer (--hidden) cannot be merged into one linear head")
    first = heads[0]
    dim = first.proj.out_features
    merged = Head(first.proj.in_features, dim, 0, first.text.in_features)
    x = torch.from_numpy(np.asarray(x_train, np.float32))
    t = None if texts_train is None or len(texts_train) == 0 else torch.from_numpy(np.asarray(texts_train, np.float32))
    with torch.no_grad():
        maps, text_maps, text_biases = [], [], []
        for head in heads:
            maps.append(head.proj.weight / head.proj(x).norm(dim=1).mean().clamp_min(1e-12))
            scale = head.text(t).norm(dim=1).mean().clamp_min(1e-12) if t is not None else torch.tensor(1.0)
            text_maps.append(head.text.weight / scale)
            text_biases.append(head.text.bias / scale)
        if how == "average":
            axes = torch.cat([torch.eye(dim)] * len(heads), dim=1) / len(heads)
        else:
            outputs = x @ torch.cat(maps).T
            found = torch.linalg.svd(outputs.double(), full_matrices=False)[2][:dim].float()
            axes = torch.zeros(dim, outputs.shape[1])
            axes[: len(found)] = found  # fewer training drawings than dimensions: zero rows, as initial_projection
        merged.proj.weight.copy_(axes @ torch.cat(maps))
        merged.text.weight.copy_(axes @ torch.cat(text_maps))
        merged.text.bias.copy_(axes @ torch.cat(text_biases))
    return merged.eval()


def train_heads(features: np.ndarray, patents: Sequence[str], levels: list[tuple[str, ...]], texts: np.ndarray | None,
                has_text: np.ndarray | None, settings: BackboneSettings,
                on_epoch: Callable[[dict], None] | None = None, teacher: np.ndarray | None = None,
                on_message: Callable[[str], None] = lambda text: None) -> dict:
    """``train_head`` once (``settings.heads`` 1), or ``settings.heads`` times with consecutive head seeds on the same
    split, the heads merged (``merge_heads``): the result then holds the merged head, its validation scores
    (``merged``), and each head's seed, best epoch and scores (``heads``)."""
    if settings.heads < 1:
        raise InputError(f"--heads must be at least 1 (not {settings.heads})")
    if settings.head_merge not in ("pca", "average"):
        raise InputError(f"unknown way to merge heads {settings.head_merge!r}: choose pca or average")
    if settings.heads == 1:
        return train_head(features, patents, levels, texts, has_text, settings, on_epoch, teacher=teacher)
    first_seed = settings.seed if settings.head_seed is None else settings.head_seed
    results = []
    for k in range(settings.heads):
        on_message(f"head {k + 1}/{settings.heads} (head seed {first_seed + k})")
        results.append(train_head(features, patents, levels, texts, has_text,
                                  replace(settings, head_seed=first_seed + k), on_epoch, teacher=teacher))
    patents = np.asarray(patents)
    train, val, class_val, _ = split_masks(patents, settings)
    first = results[0]
    x = level_norm_numpy(features, first["mean"], first["channels"], first["weights"])
    with_text = train & has_text if texts is not None and has_text is not None else None
    head = merge_heads([r["head"] for r in results], x[train], texts[with_text] if with_text is not None else None,
                       settings.head_merge)
    validation = Validation(patents, levels, texts, has_text, val, class_val)
    with torch.no_grad():
        merged = validation.scores(head(torch.from_numpy(x.astype(np.float32))).numpy(),
                                   lambda t: head.text_vectors(torch.from_numpy(t.astype(np.float32))).numpy())
    summary = [{"head_seed": first_seed + k, "best_epoch": r["best_epoch"],
                **({k2: v for k2, v in r["curve"][r["best_epoch"] - 1].items() if k2.startswith("val_")}
                   if r["best_epoch"] else {})} for k, r in enumerate(results)]
    stats = epoch_stats(0, [0.0], merged)
    return {**first, "head": head, "curve": first["curve"], "best_epoch": first["best_epoch"],
            "heads": summary, "merged": {k: v for k, v in stats.items() if k.startswith("val_")}}


# -- export ----------------------------------------------------------------------------------


def _export(module: nn.Module, path: Path, size: int, metadata: dict) -> None:
    import warnings

    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, torch.full((2, 1, size, size), 255.0), str(path), input_names=["grey"], output_names=["vector"],
            dynamic_axes={"grey": {0: "batch"}, "vector": {0: "batch"}}, opset_version=17, dynamo=False,
        )
    if metadata:
        import onnx

        model = onnx.load(str(path))
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
        onnx.save(model, str(path))


def store_weights_half(source: str | os.PathLike, target: str | os.PathLike, min_size: int = 1024) -> Path:
    """Writes ``source``'s ONNX model to ``target`` with its large float32 weights stored as float16,
    each cast back to float32 inside the graph (onnxruntime folds the casts when it opens the model,
    so it computes in float32 as before): about half the file, vectors within ~1e-3 of the original
    (an EfficientNet-Lite0 model: 24.6 MB -> 12.7 MB, cosine >= 0.99999 on 20 drawings). The
    model's record notes it, with the source file's sha256."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    source, target = Path(source), Path(target)
    model = onnx.load(str(source))
    graph = model.graph
    kept, casts = [], []
    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.dtype == np.float32 and array.size >= min_size:
            half = numpy_helper.from_array(array.astype(np.float16), f"{tensor.name}__half")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT, name=f"{tensor.name}__cast"))
        else:
            kept.append(tensor)
    nodes = casts + list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            metadata = json.loads(entry.value)
            record = metadata.setdefault("record", {})
            record["weights_stored_as"] = {
                "dtype": "float16", "by": "figsearch.train.backbone.store_weights_half", "min_size": min_size,
                "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            }
            entry.value = json.dumps(metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def run(
    settings: BackboneSettings,
    on_message: Callable[[str], None] = lambda text: None,
    on_prepare: Callable[[int], Callable[[int], None]] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict:
    """The whole ``train-encoder --arch backbone`` run: items, cached features, text vectors, head, ONNX file, record.
    Runs with ``finetune_epochs`` or a ``bundle`` go through ``train.finetune.run_finetune`` instead."""
    from figsearch.embed.catalog import create_text

    if settings.backbone not in BACKBONES:
        raise InputError(f"unknown backbone {settings.backbone!r}; choose one of: {', '.join(BACKBONES)}")
    if settings.threads:
        set_torch_threads(settings.threads)
    if settings.finetune_epochs > 0 or settings.bundle:
        raise InputError("fine-tuning and bundles are run by figsearch.train.finetune.run_finetune")
    out = Path(settings.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    items = collection_items(settings.collections, settings.exclude)
    if settings.distill:
        _teacher_encoder(settings.distill)  # a missing teacher model fails now, not after the features
    on_message(f"{len(items)} drawings of {len({i.patent for i in items})} patents")
    features = extract_features(items, settings, out.with_name(out.name + ".features.npz"),
                                on_prepare(len(items)) if on_prepare else None)
    feature_seconds = time.time() - started
    texts = has_text = None
    if settings.text_weight > 0:
        has_text = np.array([bool(i.text) for i in items])
        encoder = create_text(settings.text_model)
        texts = encoder.encode([i.text or "" for i in items])
    teacher = None
    if settings.distill:
        on_message(f"distillation teacher {settings.distill}")
        teacher = teacher_vectors(items, settings.distill, out.with_name(out.name + ".teacher.npz"),
                                  on_prepare(len(items)) if on_prepare else None)
    trained = train_heads(features, [i.patent for i in items], [i.levels for i in items], texts, has_text, settings,
                          on_epoch, teacher=teacher, on_message=on_message)
    head: Head = trained["head"]
    pooled = Pooled(settings.backbone, build_backbone(settings.backbone), settings.levels)
    return write_model(settings, items, trained, pooled, texts is not None, has_text, started, feature_seconds)


def set_torch_threads(threads: int) -> int:
    """torch's intra-op threads for a training run: ``threads``, but at most ``OMP_THREAD_LIMIT`` where that is set;
    returns the number set. torch accepts more than the limit, OpenMP then starts fewer threads than oneDNN divides a
    convolution's work among, and the backward pass of a 1x1 convolution waits in oneDNN's barrier for the missing
    threads forever (torch 2.13 on the CPU: ``--threads 2`` under ``OMP_THREAD_LIMIT=1`` hung the first fine-tuning
    batch; docs/encoder.md, stop 31)."""
    limit = os.environ.get("OMP_THREAD_LIMIT", "").strip()
    if limit.isdigit() and int(limit) > 0:
        threads = min(threads, int(limit))
    torch.set_num_threads(threads)
    return threads


def training_hardware(device: str) -> dict:
    """The machine a model is trained on, for its record."""
    hardware = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        hardware["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return hardware


def write_model(settings: BackboneSettings, items: Sequence[Item], trained: dict, pooled: Pooled, with_text: bool,
                has_text: np.ndarray | None, started: float, feature_seconds: float, finetune: dict | None = None,
                device: str = "cpu", hardware: dict | None = None, adapted_bn: dict | None = None) -> dict:
    """Export backbone + pooling + head as one ONNX file with its settings, text adapter and training record
    (also written as the file's .json twin)."""
    from figsearch import __version__
    from figsearch.fsutil import utcnow

    out = Path(settings.out)
    head: Head = trained["head"]
    pooled = pooled.cpu().eval()
    head = head.cpu().eval()
    encoder_module = Encoder(pooled, LevelNorm(trained["mean"], trained["channels"], trained["weights"]), head)
    weights = weights_path(settings.backbone)
    package, _, licence, _ = BACKBONES[settings.backbone]
    if hardware is None:  # given when a checkpoint trained elsewhere is exported (train.finetune.export_checkpoint)
        hardware = training_hardware(device)
    record = {
        "command": settings.command,
        "figsearch_version": __version__,
        "arch": "backbone",
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("command", "exclude", "class_val")},
        "class_val_patents": len(settings.class_val),
        "excluded_patents": len(settings.exclude),
        "data": {"collections": [str(c) for c in settings.collections], "drawings": len(items),
                 "patents": len({i.patent for i in items}), "source_folders": source_folders(items),
                 "drawings_with_text": int(has_text.sum()) if has_text is not None else 0,
                 "drawings_with_class": int(sum(bool(i.levels) for i in items)),
                 "train_drawings": trained["n_train"], "val_drawings": trained["n_val"],
                 "class_val_drawings": trained["n_class_val"],
                 "train_patents": trained["train_patents"], "val_patents": trained["val_patents"]},
        "seed": settings.seed,
        "starting_weights": {"backbone": settings.backbone, "package": package, "file": weights.name,
                             "sha256": file_digest(weights), "licence": licence,
                             "frozen": finetune is None and adapted_bn is None},
        "untrained_validation": trained["untrained"],
        "validation_curve": trained["curve"],
        "best_epoch": trained["best_epoch"],
        "seconds": {"features": round(feature_seconds, 1), "total": round(time.time() - started, 1)},
        "hardware": hardware,
        "date": utcnow(),
    }
    if adapted_bn is not None:
        record["adapted_batchnorm"] = adapted_bn
    if finetune is not None:
        record["finetune"] = finetune
    if trained.get("heads"):
        record["heads"] = {"merge": f"{settings.head_merge} (train.backbone.merge_heads)", "heads": trained["heads"],
                           "merged_validation": trained["merged"]}
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "backbone", "backbone": settings.backbone,
        "image_size": settings.image_size, "dim": settings.dim, "levels": ordered_levels(settings.levels, settings.backbone),
        "record": record,
        "text_adapter": None if not with_text else {
            "text_model": settings.text_model,
            "weight": pack_array(head.text.weight.detach().numpy()),
            "bias": pack_array(head.text.bias.detach().numpy()),
        },
    }
    tmp = out.with_name(out.name + ".tmp")
    _export(encoder_module, tmp, settings.image_size, metadata)
    os.replace(tmp, out)
    record_path = out.with_suffix(".json")
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    if finetune:
        best_epoch = finetune["best_epoch"]
        best = finetune["curve"][best_epoch - 1] if best_epoch else finetune["start"]
    elif trained.get("heads"):  # each head's best epoch, and the merged head's validation scores
        best_epoch, best = [h["best_epoch"] for h in trained["heads"]], trained["merged"]
    else:
        best_epoch = trained["best_epoch"]
        best = trained["curve"][best_epoch - 1] if trained["curve"] and best_epoch else {}
    return {"out": str(out), "record_path": str(record_path), "best_epoch": best_epoch, "best": best,
            "seconds": record["seconds"]}
