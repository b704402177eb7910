"""Batch augmentations of prepared drawings for encoder training, in torch (CPU or GPU).

They imitate how the same drawing differs between two publications or two scans: framing
(crop, zoom, shift), small rotations and the odd quarter turn of a landscape sheet, mirror
views, line weight, scan noise and blur, and partly hidden views. Every draw comes from an
explicit ``torch.Generator`` so that a training run is reproducible batch by batch.
Images are ink maps: float (B, 1, S, S), 1 = ink, 0 = paper, so zero padding is paper.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch.nn import functional as F


@dataclass
class AugmentConfig:
    rotate_deg: float = 8.0
    p_quarter_turn: float = 0.1
    p_hflip: float = 0.5
    p_vflip: float = 0.2
    scale: tuple[float, float] = (0.75, 1.15)
    aspect: float = 0.1
    shift: float = 0.08
    p_dilate: float = 0.25
    p_erode: float = 0.15
    p_blur: float = 0.2
    p_noise: float = 0.3
    noise_density: float = 0.02
    p_binarise: float = 0.15
    p_gamma: float = 0.3
    p_erase: float = 0.25
    erase_area: tuple[float, float] = (0.05, 0.25)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        d = dict(d)
        for key in ("scale", "erase_area"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (hi - lo) + lo


def _chance(n: int, p: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


def _pick(mask: torch.Tensor, changed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), changed, x)


def geometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n, device = x.shape[0], x.device
    angle = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, gen, device) * (math.pi / 180)
    quarter = _chance(n, cfg.p_quarter_turn, gen, device)
    angle = angle + quarter.float() * torch.where(_chance(n, 0.5, gen, device), 1.0, -1.0) * (math.pi / 2)
    # scale > 1 zooms in (crops), < 1 zooms out (adds paper)
    scale = torch.exp(_uniform(n, math.log(cfg.scale[0]), math.log(cfg.scale[1]), gen, device))
    aspect = torch.exp(_uniform(n, -cfg.aspect, cfg.aspect, gen, device))
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    fx = torch.where(_chance(n, cfg.p_hflip, gen, device), -1.0, 1.0)
    fy = torch.where(_chance(n, cfg.p_vflip, gen, device), -1.0, 1.0)
    tx, ty = _uniform(n, -cfg.shift, cfg.shift, gen, device), _uniform(n, -cfg.shift, cfg.shift, gen, device)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output grid -> input coordinates (affine_grid convention)
    theta = torch.stack(
        [
            torch.stack([cos * fx / sx, -sin * fy / sx, tx], dim=1),
            torch.stack([sin * fx / sy, cos * fy / sy, ty], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def line_weight(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n, device = x.shape[0], x.device
    x = _pick(_chance(n, cfg.p_dilate, gen, device), F.max_pool2d(x, 3, 1, 1), x)
    return _pick(_chance(n, cfg.p_erode, gen, device), -F.max_pool2d(-x, 3, 1, 1), x)


def scan(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n, device = x.shape[0], x.device
    kernel = torch.tensor([1.0, 2.0, 1.0], device=device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3)
    x = _pick(_chance(n, cfg.p_blur, gen, device), F.conv2d(x, kernel, padding=1), x)
    gamma = torch.exp(_uniform(n, math.log(0.6), math.log(1.6), gen, device)).view(-1, 1, 1, 1)
    x = _pick(_chance(n, cfg.p_gamma, gen, device), x.clamp(0, 1).pow(gamma), x)
    threshold = _uniform(n, 0.3, 0.6, gen, device).view(-1, 1, 1, 1)
    x = _pick(_chance(n, cfg.p_binarise, gen, device), (x > threshold).float(), x)
    # speckle: dust on the paper and drop-outs in the lines
    density = _uniform(n, 0.0, cfg.noise_density, gen, device).view(-1, 1, 1, 1)
    r = torch.rand(x.shape, generator=gen, device=device)
    specks = torch.where(r < density, 1.0 - x, x)
    return _pick(_chance(n, cfg.p_noise, gen, device), specks, x)


def erase(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n, device = x.shape[0], x.device
    size = x.shape[-1]
    area = _uniform(n, cfg.erase_area[0], cfg.erase_area[1], gen, device)
    ratio = torch.exp(_uniform(n, -0.7, 0.7, gen, device))
    h = (area * ratio).sqrt().clamp(max=1.0)
    w = (area / ratio).sqrt().clamp(max=1.0)
    y0 = torch.rand(n, generator=gen, device=device) * (1 - h)
    x0 = torch.rand(n, generator=gen, device=device) * (1 - w)
    coords = (torch.arange(size, device=device).float() + 0.5) / size
    inside_y = (coords[None, :] >= y0[:, None]) & (coords[None, :] < (y0 + h)[:, None])
    inside_x = (coords[None, :] >= x0[:, None]) & (coords[None, :] < (x0 + w)[:, None])
    box = (inside_y[:, :, None] & inside_x[:, None, :]).unsqueeze(1)
    keep = ~(box & _chance(n, cfg.p_erase, gen, device).view(-1, 1, 1, 1))
    return x * keep


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """One random view of each ink map in ``x`` (B, 1, S, S)."""
    x = line_weight(x, cfg, gen)
    x = geometric(x, cfg, gen)
    x = erase(x, cfg, gen)
    return scan(x, cfg, gen).clamp(0.0, 1.0)
