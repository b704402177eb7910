"""Pieces of encoder training that need no model: the split, the batches, the loss (the metric is
``figsearch.train.metric``).

Every random choice is derived from (seed, epoch, batch), never from a running generator, so a
run resumed from a checkpoint takes exactly the path the uninterrupted run would have taken.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def split_groups(groups: list[str], val_fraction: float, seed: int, min_val: int = 2) -> set[str]:
    """Patents held out for validation: a seeded share of those with two drawings or more."""
    counts: dict[str, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    multi = sorted(g for g, n in counts.items() if n >= 2)
    if val_fraction <= 0 or len(multi) < 2 * min_val:
        return set()
    n_val = max(min_val, int(round(val_fraction * len(multi))))
    rng = np.random.default_rng([seed, 7919])
    return set(rng.choice(multi, size=n_val, replace=False).tolist())


def epoch_batches(
    group_ids: np.ndarray, batch_size: int, per_group: int, seed: int, epoch: int, min_batch: int = 8
) -> list[np.ndarray]:
    """Indices of one epoch's batches: each image once, sheets of a patent in chunks of ``per_group``
    so that most batches hold several sheets of the same patents (the positives)."""
    rng = np.random.default_rng([seed, epoch, 104729])
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group_ids.tolist()):
        members.setdefault(g, []).append(i)
    chunks = []
    for g in sorted(members):
        idx = rng.permutation(members[g])
        chunks += [idx[i : i + per_group] for i in range(0, len(idx), per_group)]
    order = rng.permutation(len(chunks))
    flat = np.concatenate([chunks[i] for i in order]) if chunks else np.zeros(0, dtype=np.int64)
    batches = [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
    if batches and len(batches[-1]) < min_batch and len(batches) > 1:
        batches.pop()  # a tiny last batch gives BatchNorm and the loss almost nothing to compare
    return batches


def batch_generator(seed: int, epoch: int, batch: int, device="cpu") -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(np.random.default_rng([seed, epoch, batch, 15485863]).integers(2**62)))
    return gen


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Multi-positive InfoNCE (SupCon, Khosla et al. 2020): every other item with the same label is a
    positive of the anchor, the rest of the batch are its negatives. Anchors without a positive are skipped."""
    z = F.normalize(embeddings, dim=1)
    logits = z @ z.T / temperature
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = positives.sum(dim=1)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        return embeddings.sum() * 0.0
    pos_log_prob = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    return -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()


def lr_at(step: int, total: int, warmup: int, base: float, floor: float = 0.02) -> float:
    """Linear warm-up, then cosine decay to ``floor × base``."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return float(base * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t))))
