"""The network of the learned drawing encoder: a compact residual CNN with GeM pooling.

Kept apart from training and inference so that both build the very same module from
the architecture settings stored in a model file. Imports torch: load it lazily.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class NetConfig:
    """Architecture settings; stored in every model file so the file alone rebuilds the net."""

    #: channels of the four stages
    widths: tuple[int, ...] = (32, 64, 128, 256)
    #: residual blocks per stage
    depths: tuple[int, ...] = (1, 1, 2, 1)
    #: output vector dimension
    dim: int = 256
    #: stem: "patch4" (4×4 stride-4 conv, cheap on CPU) or "conv2" (3×3 stride 2)
    stem: str = "patch4"
    #: initial GeM exponent (learned)
    gem_p: float = 3.0
    #: stages whose pooled features feed the head (1: the last; 2-3 add earlier, finer ones: line style, shading)
    pool_levels: int = 1
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"], d["depths"] = list(self.widths), list(self.depths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NetConfig:
        d = dict(d)
        d["widths"], d["depths"] = tuple(d["widths"]), tuple(d["depths"])
        return cls(**d)


class GeM(nn.Module):
    """Generalised-mean pooling: between average (p=1) and max pooling, learned; strong for retrieval."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.clamp(1.0, 8.0)
        return F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(p), 1).pow(1.0 / p).flatten(1)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.skip is None else self.skip(x)), inplace=True)


class DrawingNet(nn.Module):
    """(B, 1, S, S) ink maps (1 = ink, 0 = paper) in, (B, dim) L2-normalised vectors out."""

    def __init__(self, config: NetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or NetConfig()
        w0 = config.widths[0]
        if config.stem == "patch4":
            self.stem = nn.Sequential(nn.Conv2d(1, w0, 4, 4, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True))
            first_stride = 1
        elif config.stem == "conv2":
            self.stem = nn.Sequential(nn.Conv2d(1, w0, 3, 2, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True))
            first_stride = 2
        else:
            raise ValueError(f"unknown stem {config.stem!r}; choose patch4 or conv2")
        stages, cin = [], w0
        for i, (width, depth) in enumerate(zip(config.widths, config.depths)):
            blocks = [_Block(cin, width, first_stride if i == 0 else 2)]
            blocks += [_Block(width, width, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.ModuleList(stages)
        levels = max(1, min(config.pool_levels, len(stages)))
        self.pooled = list(range(len(stages) - levels, len(stages)))
        self.pools = nn.ModuleList(GeM(config.gem_p) for _ in self.pooled)
        self.head = nn.Linear(sum(config.widths[i] for i in self.pooled), config.dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the head."""
        x = self.stem(x)
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.pooled:
                features.append(self.pools[self.pooled.index(i)](x))
        return torch.cat(features, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.features(x)), dim=1)


class StyleNet(nn.Module):
    """Orderless style descriptor: a small CNN on each stroke-scale patch, features averaged per drawing.

    Averaging local features over the patches of a drawing is a learned version of the texture
    histograms (binary patterns, run lengths) that describe drafting style.
    """

    #: patches per forward pass at inference (bounds memory: a drawing brings up to ~200 patches)
    chunk = 512

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.body = DrawingNet(config)

    def forward(self, patches: torch.Tensor, segments: torch.Tensor, n: int) -> torch.Tensor:
        """``patches`` (M, 1, P, P); ``segments`` (M,) the drawing (0..n-1) each patch belongs to."""
        if self.training or len(patches) <= self.chunk:
            features = self.body.features(patches)
        else:
            features = torch.cat([self.body.features(part) for part in torch.split(patches, self.chunk)])
        sums = features.new_zeros((n, features.shape[1])).index_add_(0, segments, features)
        counts = torch.bincount(segments, minlength=n).clamp(min=1).to(features.dtype)
        return F.normalize(self.body.head(sums / counts[:, None]), dim=1)
