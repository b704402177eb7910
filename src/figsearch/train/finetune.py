"""Fine-tuning the ``backbone`` encoder's upper blocks on the drawings themselves (issue 13, item 9).

``figsearch train-encoder --arch backbone --finetune-epochs N`` first trains the head on the frozen
backbone's features exactly as the frozen recipe does (``train.backbone.train_head``), then trains the
backbone's blocks from ``--finetune-from`` upwards together with the head, on a freshly augmented view
of every drawing each epoch (``train.augment``: framing, rotation and quarter turns, line weight, scan
noise, hidden parts), with the same losses (graded same-patent / same-class InfoNCE and the text
alignment). BatchNorm keeps its ImageNet statistics (small batches of line drawings would move them
far from what the pretrained filters expect), and an optional L2-SP pull (``--anchor``) keeps the
weights near the pretrained ones: naive fine-tuning on a few thousand drawings trained ImageNet's
semantics away in an early probe. Every epoch is validated on the held-out patents with the frozen
recipe's rule; the best epoch is kept, and epoch 0 (the head on the frozen backbone) competes too.

The drawings are read once into a **training bundle** (``OUT.bundle.npz``: prepared grey drawings,
their patents, class levels and text embeddings), so that a run can be moved to a machine with a GPU
that holds no collection (``--bundle FILE``). Runs on CUDA when present, else on the CPU (slowly:
docs/encoder.md gives the time per epoch). Imports torch: load it lazily.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from figsearch.errors import InputError
from figsearch.train.backbone import (
    LITE_BLOCKS, BackboneSettings, Head, Item, LevelNorm, Pooled, Validation, _excluded, _load_grey, batch_loss,
    collection_items, epoch_order, epoch_stats, level_channels, ordered_levels, pooled_features, selection_score,
    set_torch_threads, split_masks, training_hardware, train_head, write_model,
)

BUNDLE_VERSION = 1
_SEP = "\x1f"


@dataclass
class Bundle:
    """What training needs of a collection's drawings, in one file."""

    images: np.ndarray  # (N, S, S) uint8 prepared grey drawings (paper 255)
    items: list[Item]
    texts: np.ndarray | None  # (N, T) text embeddings, or None
    has_text: np.ndarray  # (N,) bool
    info: dict = field(default_factory=dict)


def bundle_key(items: Sequence[Item], settings: BackboneSettings) -> str:
    digest = hashlib.sha256(f"bundle|v{BUNDLE_VERSION}|{settings.image_size}|{settings.strip_headers}|"
                            f"{settings.text_model}\n".encode())
    for item in items:
        digest.update(f"{item.figure_id}|{item.path}|{item.text}\n".encode())
    return digest.hexdigest()[:16]


def save_bundle(bundle: Bundle, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    items = bundle.items
    np.savez_compressed(
        tmp, images=bundle.images, figure_ids=np.array([i.figure_id for i in items]),
        patents=np.array([i.patent for i in items]), sources=np.array([i.source for i in items]),
        texts_raw=np.array([i.text for i in items]), levels=np.array([_SEP.join(i.levels) for i in items]),
        texts=bundle.texts if bundle.texts is not None else np.zeros((0, 0), np.float32),
        has_text=bundle.has_text, info=np.array(json.dumps(bundle.info)),
    )
    tmp.replace(path)


def load_bundle(path: str | Path) -> Bundle:
    """A bundle written by ``save_bundle``; InputError naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"training bundle {path} does not exist (it is written beside OUT as OUT.bundle.npz)")
    try:
        with np.load(path, allow_pickle=False) as stored:
            info = json.loads(str(stored["info"]))
            if info.get("version") != BUNDLE_VERSION:
                raise ValueError(f"bundle version {info.get('version')}, expected {BUNDLE_VERSION}")
            images = stored["images"]
            texts = stored["texts"]
            levels = [tuple(x for x in str(v).split(_SEP) if x) for v in stored["levels"]]
            items = [Item(str(f), str(p), "", str(t), lv, str(s)) for f, p, t, lv, s in
                     zip(stored["figure_ids"], stored["patents"], stored["texts_raw"], levels, stored["sources"])]
            has_text = stored["has_text"].astype(bool)
    except InputError:
        raise
    except Exception as exc:  # a damaged or foreign file: one clear error naming it
        raise InputError(f"cannot read the training bundle {path}: {exc}") from exc
    if images.ndim != 3 or len(images) != len(items):
        raise InputError(f"training bundle {path} is damaged: {images.shape} images for {len(items)} drawings")
    return Bundle(images, items, texts if texts.size else None, has_text, info)


def make_bundle(items: Sequence[Item], settings: BackboneSettings, progress: Callable[[int], None] | None = None) -> Bundle:
    """Prepare every drawing (the encoder's own preprocessing) and embed the texts."""
    from figsearch.embed.catalog import create_text

    images = np.zeros((len(items), settings.image_size, settings.image_size), np.uint8)
    for index, item in enumerate(items):
        images[index] = _load_grey(item.path, settings.image_size, settings.strip_headers)
        if progress and (index % 32 == 31 or index == len(items) - 1):
            progress(index % 32 + 1)
    has_text = np.array([bool(i.text) for i in items])
    texts = create_text(settings.text_model).encode([i.text or "" for i in items]).astype(np.float32)
    info = {"version": BUNDLE_VERSION, "key": bundle_key(items, settings), "image_size": settings.image_size,
            "strip_headers": settings.strip_headers, "text_model": settings.text_model,
            "collections": [str(c) for c in settings.collections], "excluded_patents": len(settings.exclude)}
    return Bundle(images, list(items), texts, has_text, info)


def cached_bundle(settings: BackboneSettings, out: Path, on_prepare=None, on_message=lambda text: None) -> Bundle:
    items = collection_items(settings.collections, settings.exclude)
    path = out.with_name(out.name + ".bundle.npz")
    if path.is_file():
        try:
            bundle = load_bundle(path)
        except InputError:
            bundle = None
        if bundle is not None and bundle.info.get("key") == bundle_key(items, settings):
            return bundle
    on_message(f"preparing {len(items)} drawings into {path}")
    bundle = make_bundle(items, settings, on_prepare(len(items)) if on_prepare else None)
    save_bundle(bundle, path)
    return bundle


def resolve_device(name: str) -> str:
    if not name:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: torch sees no CUDA GPU here (use --device cpu)")
    return name


def _vectors(module: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """Outputs of ``module`` for every drawing (no augmentation), as float32 numpy."""
    parts = []
    with torch.no_grad():
        for start in range(0, len(images), chunk):
            parts.append(module(images[start : start + chunk, None].float()).float().cpu().numpy())
    return np.concatenate(parts)


def finetune_layers(pooled: Pooled) -> list[torch.nn.Module]:
    """The backbone's layers in network order, as ``--finetune-from`` counts them: MobileNetV2's ``features`` 0-18;
    EfficientNet-Lite 0 the stem, N + 1 its block N (level ``hN``), the last index the head convolution."""
    if pooled.name in LITE_BLOCKS:
        net = pooled.backbone.net
        return [torch.nn.ModuleList([net._conv_stem, net._bn0]), *net._blocks,
                torch.nn.ModuleList([net._conv_head, net._bn1])]
    return list(pooled.backbone.features)


def adapt_batchnorm(pooled: Pooled, images: torch.Tensor, chunk: int = 64) -> dict:
    """AdaBN: every BatchNorm's running mean and variance re-estimated as the average over one pass of ``images``
    (grey drawings, (N, S, S)); no weight changes. ImageNet's statistics describe photographs: on line drawings
    (mostly white paper) many channels sit far from them. Returns what the record keeps."""
    norms = [m for m in pooled.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    with torch.no_grad():
        for start in range(0, len(images), chunk):
            pooled(images[start : start + chunk, None].float())
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    pooled.eval()
    return {"layers": len(norms), "drawings": int(len(images)), "by": "train.finetune.adapt_batchnorm"}



# -- cached activations (fine-tuning on the CPU) ---------------------------------------------------------------------

CACHE_VERSION = 1
#: the cached activations' type: float16 halves the memory (Lite0 at 288 px, layer 9: 52 KB a view); tests set float32
CACHE_DTYPE = torch.float16


@dataclass
class ActivationCache:
    """The frozen lower layers' work, done once: with BatchNorm in eval mode (as ``finetune`` keeps it) the layers
    below ``--finetune-from`` are a fixed function of the drawing, so each drawing (and each of ``K`` augmented views of
    every training drawing) goes through them once; training runs the layers from ``layer`` up on these activations.
    Activations in float16 (Lite0 at 288 px: 9 x 9 x 192 at layer 13, 18 x 18 x 80 at layer 9), the pooled lower
    levels in float32 (before ``pooled_features``' square root)."""

    layer: int
    plain: torch.Tensor  # (N, C, H, W) every drawing as it is
    plain_low: torch.Tensor  # (N, P)
    features: np.ndarray  # (N, D) exact float32 features of every drawing (the whole network, no float16 step)
    rows: np.ndarray  # (N,) each drawing's row in ``views`` (-1: not a training drawing)
    views: torch.Tensor | None  # (K, T, C, H, W) augmented views of the T training drawings
    views_low: torch.Tensor | None  # (K, T, P)
    record: dict = field(default_factory=dict)

    def batch(self, idx: np.ndarray, view: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Activations and lower levels of drawings ``idx``: view ``view[i]`` of each, or as they are (None)."""
        if view is None:
            index = torch.as_tensor(idx)
            return self.plain[index].float(), self.plain_low[index]
        rows = self.rows[idx]
        if (rows < 0).any():
            raise ValueError("augmented views exist for the training drawings only")
        which, rows = torch.as_tensor(view), torch.as_tensor(rows)
        return self.views[which, rows].float(), self.views_low[which, rows]


def upper_features(pooled: Pooled, activations: torch.Tensor, low: torch.Tensor, layer: int) -> torch.Tensor:
    """``pooled``'s features from the activations at ``layer`` and the pooled levels below it."""
    _, outs = pooled.run_layers(activations, layer, pooled.layer_count())
    return pooled_features([low, *outs])


def _lower_pass(pooled: Pooled, batches, layer: int, exact_features: bool) -> tuple:
    """Layers below ``layer`` for every batch of grey drawings: (activations float16, lower levels float32, the
    whole network's features from the float32 activations when ``exact_features``)."""
    from figsearch.embed.encoders.backbone_nets import normalise

    acts, lows, feats = [], [], []
    with torch.no_grad():
        for grey in batches:
            x, low = pooled.run_layers(normalise(pooled.name, grey), 0, layer)
            low = torch.cat(low, dim=1) if low else grey.new_zeros((len(grey), 0))
            acts.append(x.to(CACHE_DTYPE).cpu())
            lows.append(low.float().cpu())
            if exact_features:
                feats.append(upper_features(pooled, x, low, layer).float().cpu().numpy())
    return torch.cat(acts), torch.cat(lows), (np.concatenate(feats) if exact_features else None)


def _advance(pooled: Pooled, acts: torch.Tensor, low: torch.Tensor, start: int, stop: int, chunk: int = 128) -> tuple:
    """Cached activations at ``start`` moved up to ``stop`` through frozen layers."""
    moved, lows = [], []
    with torch.no_grad():
        for first in range(0, len(acts), chunk):
            x, outs = pooled.run_layers(acts[first : first + chunk].float(), start, stop)
            moved.append(x.to(CACHE_DTYPE))
            lows.append(torch.cat([low[first : first + chunk], *outs], dim=1))
    return torch.cat(moved), torch.cat(lows)


def _digest(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _stored(folder: str, name: str, compute: Callable[[], dict], on_message: Callable[[str], None]) -> tuple[dict, bool]:
    """``compute()``'s tensors, kept in ``folder``/``name`` when a folder is given (found there again next time)."""
    if not folder:
        return compute(), False
    path = Path(folder) / name
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=False)
            if stored.get("version") == CACHE_VERSION:
                on_message(f"cached activations read from {path}")
                return stored, True
        except Exception as exc:  # a damaged file is computed again
            on_message(f"cached activations in {path} unreadable ({exc}): computing them again")
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**result, "version": CACHE_VERSION}, tmp)
    tmp.replace(path)
    return result, False


def cache_support(pooled: Pooled, settings: BackboneSettings) -> str | None:
    """Why the activations cannot be cached for this run (None: they can)."""
    if pooled.levels == ("f18",):
        return "--levels f18 alone runs the backbone as one module (cache needs pooled levels, e.g. h2,...,f18)"
    if settings.finetune_from < 1:
        return "--finetune-from 0 trains every layer: nothing below it to cache"
    return None


def build_activation_cache(pooled: Pooled, images: torch.Tensor, train_idx: np.ndarray, settings: BackboneSettings,
                           on_message: Callable[[str], None] = lambda text: None, chunk: int = 32) -> ActivationCache:
    """The frozen layers below ``settings.finetune_from`` run once: on every drawing as it is, and (with
    ``settings.augment``) on ``settings.augment_views`` augmented views of every training drawing (view k seeded by
    the run's seed and k, so runs with the same seed share views)."""
    from figsearch.train.augment import AugmentConfig, augment

    started = time.time()
    layer = settings.finetune_from if settings.cache_layer is None else settings.cache_layer
    if not 1 <= layer <= settings.finetune_from:
        raise InputError(f"--cache-layer {layer}: must be between 1 and --finetune-from ({settings.finetune_from})")
    if settings.augment and settings.augment_views < 1:
        raise InputError(f"--augment-views {settings.augment_views}: at least 1 view is needed to augment (or --no-augment)")
    pooled.eval()
    weights = [(k, v.detach().cpu().float().numpy().tobytes()) for k, v in sorted(pooled.state_dict().items())]
    base = _digest(CACHE_VERSION, pooled.name, pooled.levels, list(images.shape),
                   images.cpu().numpy().tobytes(), *[part for pair in weights for part in (pair[0], pair[1])])
    folder = settings.activation_cache

    def grey_batches(idx: np.ndarray, view: int | None):
        generator = None if view is None else torch.Generator(device=images.device).manual_seed(settings.seed * 1009 + view)
        for first in range(0, len(idx), chunk):
            grey = images[torch.as_tensor(idx[first : first + chunk], device=images.device)].float()[:, None]
            if view is not None:  # augment works on ink maps (1 = ink)
                grey = 255.0 * (1.0 - augment(1.0 - grey / 255.0, config, generator))
            yield grey

    def plain() -> dict:
        acts, low, feats = _lower_pass(pooled, grey_batches(np.arange(len(images)), None), layer, True)
        return {"acts": acts, "low": low, "features": feats}

    config = AugmentConfig()
    views, views_low, disk_views = [], [], 0
    if settings.augment:
        train_key = _digest(base, settings.seed, config.to_dict(), train_idx.tolist())
        for view in range(1, settings.augment_views + 1):
            on_message(f"augmented view {view} of {len(train_idx)} training drawings")
            one, read = _stored(folder, f"{train_key}-L{layer}-view{view}.pt",
                                lambda: dict(zip(("acts", "low"), _lower_pass(pooled, grey_batches(train_idx, view),
                                                                               layer, False)[:2])), on_message)
            views.append(one["acts"])
            views_low.append(one["low"])
            disk_views += read
    # the views first: a run started beside one computing the same plain pass finds it in the folder afterwards
    stored, from_disk = _stored(folder, f"{base}-L{layer}-plain.pt", plain, on_message)
    acts, low = stored["acts"], stored["low"]
    if layer < settings.finetune_from:  # the frozen layers between the cache's layer and the first trained one
        acts, low = _advance(pooled, acts, low, layer, settings.finetune_from)
        moved = [_advance(pooled, a, lo, layer, settings.finetune_from) for a, lo in zip(views, views_low)]
        views, views_low = [m[0] for m in moved], [m[1] for m in moved]
    rows = np.full(len(images), -1)
    rows[train_idx] = np.arange(len(train_idx))
    cache = ActivationCache(settings.finetune_from, acts, low, stored["features"], rows,
                            torch.stack(views) if views else None, torch.stack(views_low) if views else None)
    size = acts.numel() * acts.element_size() + (cache.views.numel() * cache.views.element_size() if views else 0)
    cache.record = {"cached": True, "layer": layer, "first_trained": settings.finetune_from,
                    "dtype": str(acts.dtype).removeprefix("torch."),
                    "activation_shape": list(acts.shape[1:]), "views": len(views), "megabytes": round(size / 2**20, 1),
                    "plain_from_disk": from_disk, "views_from_disk": disk_views, "folder": folder or None,
                    "seconds": round(time.time() - started, 1)}
    moved = f", moved up to layer {settings.finetune_from}" if layer < settings.finetune_from else ""
    on_message(f"cached activations at layer {layer}{moved}: {tuple(acts.shape[1:])} x {len(acts)} drawings"
               f"{f' + {len(views)} augmented views of {len(train_idx)}' if views else ''}, {cache.record['megabytes']} MB, "
               f"{cache.record['seconds']} s")
    return cache


def use_cache(pooled: Pooled, settings: BackboneSettings, device: str) -> bool:
    """Whether this run fine-tunes on cached activations: ``--cached-activations`` (an error when it cannot), else
    on the CPU whenever it can."""
    if settings.finetune_epochs <= 0:
        return False
    why = cache_support(pooled, settings)
    if settings.cached_activations:
        if why:
            raise InputError(f"--cached-activations: {why}")
        return True
    return settings.cached_activations is None and device == "cpu" and why is None


def finetune(pooled: Pooled, trained: dict, images: torch.Tensor, patents: np.ndarray, levels: Sequence[tuple[str, ...]],
             texts: np.ndarray | None, has_text: np.ndarray | None, settings: BackboneSettings, device: str,
             on_epoch: Callable[[dict], None] | None = None, run_started: float | None = None,
             cache: ActivationCache | None = None) -> dict:
    """Train the backbone's upper blocks with the head (``trained`` by ``train_head``) on augmented drawings;
    ``pooled`` and the head are left at the best epoch. Returns the fine-tuning record. With
    ``settings.time_budget`` it stops after the epoch that crosses that many seconds since ``run_started``.
    With ``cache`` (``build_activation_cache``, same ``finetune_from``) the layers below ``finetune_from`` are not run:
    each epoch draws one of the cached augmented views of every training drawing (the drawing as it is without
    ``settings.augment``), and validation reads the drawings' cached activations."""
    from figsearch.train.augment import AugmentConfig, augment

    started = time.time()
    torch.manual_seed(settings.seed)
    head = trained["head"].to(device)
    norm = LevelNorm(trained["mean"], trained["channels"], trained["weights"]).to(device)
    pooled = pooled.to(device)
    train, val, class_val, _ = split_masks(patents, settings)
    validation = Validation(patents, levels, texts, has_text, val, class_val)
    tt = torch.from_numpy(texts.astype(np.float32)).to(device) if texts is not None and settings.text_weight > 0 else None
    layers = finetune_layers(pooled)
    if not 0 <= settings.finetune_from < len(layers):
        raise InputError(f"--finetune-from must be a layer between 0 and {len(layers) - 1} of {settings.backbone}")
    for index, layer in enumerate(layers):
        for parameter in layer.parameters():
            parameter.requires_grad_(index >= settings.finetune_from)
    pooled.eval()  # BatchNorm keeps the ImageNet statistics throughout
    backbone_params = [p for p in pooled.parameters() if p.requires_grad]
    anchors = [p.detach().clone() for p in backbone_params]
    optimiser = torch.optim.AdamW([
        {"params": backbone_params, "lr": settings.backbone_lr, "weight_decay": 0.0, "peak": settings.backbone_lr},
        {"params": list(head.parameters()), "lr": settings.finetune_lr, "weight_decay": settings.weight_decay,
         "peak": settings.finetune_lr},
    ])

    def encode(grey: torch.Tensor) -> torch.Tensor:
        return head(norm(pooled(grey)))

    def encode_cached(idx: np.ndarray, view: np.ndarray | None) -> torch.Tensor:
        activations, low = cache.batch(idx, view)
        return head(norm(upper_features(pooled, activations.to(device), low.to(device), cache.layer)))

    if cache is not None and cache.layer != settings.finetune_from:
        raise ValueError(f"activations cached at layer {cache.layer}, fine-tuning from {settings.finetune_from}")

    def validate() -> tuple:
        head.eval()
        if cache is None:
            every = _vectors(encode, images)
        else:
            with torch.no_grad():
                every = np.concatenate([encode_cached(np.arange(first, min(first + 256, len(images))), None).cpu().numpy()
                                        for first in range(0, len(images), 256)])
        with torch.no_grad():
            return validation.scores(every, lambda t: head.text_vectors(torch.from_numpy(t.astype(np.float32)).to(device)).cpu().numpy())

    untrained = trained["untrained"]
    base = (untrained["val_same_patent"], untrained["val_same_class"], None, untrained["val_same_patent_all"])
    start = validate()
    start_stats = epoch_stats(0, [0.0], start)

    def snapshot() -> tuple[dict, dict]:
        return ({k: v.detach().clone() for k, v in pooled.state_dict().items()},
                {k: v.detach().clone() for k, v in head.state_dict().items()})

    # with nothing to validate on, the lowest-loss epoch wins over the frozen start
    best = {"score": selection_score(settings, start, base, -np.inf), "epoch": 0, "state": snapshot()}
    train_idx = np.flatnonzero(train)
    per_epoch = int(np.ceil(len(train_idx) / settings.batch_size))
    total, step = settings.finetune_epochs * per_epoch, 0
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    config = AugmentConfig()
    curve = []
    stopped = False
    for epoch in range(1, settings.finetune_epochs + 1):
        if settings.time_budget and time.time() - (run_started or started) > settings.time_budget:
            stopped = True
            break
        head.train()
        flat = epoch_order(train_idx, patents, settings.seed, 1000 + epoch)
        views = None  # with a cache: the view each training drawing is seen in this epoch
        if cache is not None and settings.augment:
            views = np.random.default_rng([settings.seed, 2000 + epoch]).integers(len(cache.views), size=len(images))
        losses = []
        for first in range(0, len(flat), settings.batch_size):
            idx = np.array(flat[first : first + settings.batch_size])
            factor = 0.5 * (1 + np.cos(np.pi * step / max(total, 1)))
            step += 1
            for group in optimiser.param_groups:
                group["lr"] = group["peak"] * factor
            if cache is not None:
                z = encode_cached(idx, views[idx] if views is not None else None)
            else:
                grey = images[torch.as_tensor(idx, device=images.device)].float()[:, None]
                if settings.augment:  # augment works on ink maps (1 = ink)
                    grey = 255.0 * (1.0 - augment(1.0 - grey / 255.0, config, generator))
                z = encode(grey)
            loss = batch_loss(z, head, idx, patents, levels, tt, has_text, settings)
            if settings.anchor > 0:
                loss = loss + settings.anchor * sum(((p - a) ** 2).sum() for p, a in zip(backbone_params, anchors))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        current = validate()
        score = selection_score(settings, current, base, -float(np.mean(losses)))
        stats = epoch_stats(epoch, losses, current)
        stats["seconds"] = round(time.time() - started, 1)
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "state": snapshot()}
            stats["best"] = True
        curve.append(stats)
        if on_epoch:
            on_epoch({**stats, "phase": "finetune"})
    pooled.load_state_dict(best["state"][0])
    head.load_state_dict(best["state"][1])
    pooled.eval()
    head.eval()
    for parameter in pooled.parameters():
        parameter.requires_grad_(False)
    return {"epochs": settings.finetune_epochs, "from_block": settings.finetune_from, "backbone_lr": settings.backbone_lr,
            "head_lr": settings.finetune_lr, "anchor": settings.anchor, "augment": settings.augment,
            "augment_config": config.to_dict() if settings.augment else None,
            "activations": cache.record if cache is not None else {"cached": False}, "start": start_stats, "curve": curve,
            "best_epoch": best["epoch"], "stopped_by_time_budget": stopped, "seconds": round(time.time() - started, 1)}


def run_finetune(settings: BackboneSettings, on_message: Callable[[str], None] = lambda text: None,
                 on_prepare=None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """``train-encoder --arch backbone`` from a bundle (written now, or given): features on the device, the head on
    the frozen features, then ``finetune_epochs`` of fine-tuning, then the ONNX file and its record."""
    from figsearch.embed.encoders.backbone_nets import build_backbone

    if settings.heads > 1:
        raise InputError("--heads averages heads trained on frozen features: it does not combine with fine-tuning or "
                         "--bundle")
    device = resolve_device(settings.device)
    if settings.threads:
        set_torch_threads(settings.threads)
    out = Path(settings.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if settings.bundle:
        bundle = load_bundle(settings.bundle)
        for name in ("image_size", "strip_headers", "text_model"):
            if bundle.info.get(name) != getattr(settings, name):
                raise InputError(f"training bundle {settings.bundle} was prepared with {name}={bundle.info.get(name)!r}, "
                                 f"not {getattr(settings, name)!r}")
        skip = {e.strip() for e in settings.exclude if e.strip()}
        keep = np.array([not _excluded(i.patent, skip) for i in bundle.items])
        if not keep.all():
            bundle = Bundle(bundle.images[keep], [i for i, k in zip(bundle.items, keep) if k],
                            None if bundle.texts is None else bundle.texts[keep], bundle.has_text[keep], bundle.info)
    else:
        bundle = cached_bundle(settings, out, on_prepare, on_message)
    items = bundle.items
    on_message(f"{len(items)} drawings of {len({i.patent for i in items})} patents; device {device}")
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    images = torch.from_numpy(bundle.images).to(device)
    levels = ordered_levels(settings.levels, settings.backbone)
    level_channels(settings.backbone, levels)
    pooled = Pooled(settings.backbone, build_backbone(settings.backbone), levels).to(device)
    patents = np.array([i.patent for i in items])
    adapted = None
    if settings.adapt_bn:  # on the training drawings only: the held-out ones stay unseen
        train_mask = split_masks(patents, settings)[0]
        adapted = adapt_batchnorm(pooled, images[torch.as_tensor(np.flatnonzero(train_mask), device=images.device)])
        on_message(f"BatchNorm statistics of {adapted['layers']} layers re-estimated on {adapted['drawings']} drawings")
    cache = None
    if use_cache(pooled, settings, device):
        cache = build_activation_cache(pooled, images, np.flatnonzero(split_masks(patents, settings)[0]), settings,
                                       on_message)
        features = cache.features  # the whole network's, computed with the lower pass
    else:
        features = _vectors(pooled, images)
    feature_seconds = time.time() - started
    texts = bundle.texts if settings.text_weight > 0 else None
    has_text = bundle.has_text if texts is not None else None
    item_levels = [i.levels for i in items]
    trained = train_head(features, patents, item_levels, texts, has_text, settings,
                         (lambda stats: on_epoch({**stats, "phase": "head"})) if on_epoch else None, device=device)
    record = None
    if settings.finetune_epochs > 0:
        record = finetune(pooled, trained, images, patents, item_levels, texts, has_text, settings, device, on_epoch,
                          run_started=started, cache=cache)
        record["bundle"] = {k: bundle.info.get(k) for k in ("key", "collections", "excluded_patents")}
    # everything the model file is made of, in case the ONNX export fails on the training machine (another torch):
    # `figsearch train-encoder --from-checkpoint` writes the model from it elsewhere
    save_checkpoint(checkpoint_path(out), settings, items, trained, pooled, texts is not None, has_text,
                    time.time() - started, feature_seconds, record, adapted, device)
    return write_model(settings, items, trained, pooled, texts is not None, has_text, started, feature_seconds,
                       finetune=record, device=device, adapted_bn=adapted)


CHECKPOINT_VERSION = 1


def checkpoint_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".ckpt.pt")


def save_checkpoint(path: Path, settings: BackboneSettings, items: Sequence[Item], trained: dict, pooled: Pooled,
                    with_text: bool, has_text: np.ndarray | None, seconds: float, feature_seconds: float,
                    finetune_record: dict | None, adapted: dict | None, device: str) -> None:
    """A trained model as one torch file (tensors of 1,024 values or more in float16, as the shipped ONNX files store
    them; about half the float32 size, so that it travels back from a GPU machine)."""
    from dataclasses import asdict

    def half(state: dict) -> dict:
        return {k: v.detach().cpu().half() if v.is_floating_point() and v.numel() >= 1024 else v.detach().cpu()
                for k, v in state.items()}

    head: Head = trained["head"]
    shape = (head.proj.in_features, head.proj.out_features, head.mlp[0].out_features if head.mlp is not None else 0,
             head.text.in_features)
    torch.save({"version": CHECKPOINT_VERSION, "settings": asdict(settings), "items": [asdict(i) for i in items],
                "with_text": with_text, "has_text": has_text, "pooled": half(pooled.state_dict()),
                "head": half(head.state_dict()), "head_shape": shape,
                "trained": {k: v for k, v in trained.items() if k != "head"}, "finetune": finetune_record,
                "adapted_bn": adapted, "seconds": seconds, "feature_seconds": feature_seconds,
                "hardware": training_hardware(device), "device": device}, path)


def export_checkpoint(path: str | Path, out: str | Path) -> dict:
    """``figsearch train-encoder --from-checkpoint CKPT --out MODEL.onnx``: the ONNX model and record of a checkpoint
    written by a run on another machine (its record keeps that machine's hardware and times)."""
    from dataclasses import fields

    from figsearch.embed.encoders.backbone_nets import build_backbone

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"not a version-{CHECKPOINT_VERSION} checkpoint")
    except FileNotFoundError:
        raise InputError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # a damaged or foreign file
        raise InputError(f"{path} is not a figsearch training checkpoint ({exc})") from None
    names = {f.name for f in fields(BackboneSettings)}
    settings = BackboneSettings(**{k: v for k, v in ckpt["settings"].items() if k in names})
    settings.out = str(out)
    pooled = Pooled(settings.backbone, build_backbone(settings.backbone, pretrained=False),
                    ordered_levels(settings.levels, settings.backbone))
    pooled.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["pooled"].items()})
    head = Head(*ckpt["head_shape"])
    head.load_state_dict({k: v.float() for k, v in ckpt["head"].items()})
    trained = {**ckpt["trained"], "head": head}
    items = [Item(**i) for i in ckpt["items"]]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return write_model(settings, items, trained, pooled, ckpt["with_text"], ckpt["has_text"], time.time() - ckpt["seconds"],
                       ckpt["feature_seconds"], finetune=ckpt["finetune"], device=ckpt["device"],
                       hardware=ckpt["hardware"], adapted_bn=ckpt["adapted_bn"])
