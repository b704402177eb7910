"""``clip``: the image tower of CLIP (transformers), ViT-B/32 with OpenAI weights by default.

The model argument is a Hugging Face model name (``openai/clip-vit-base-patch32``), an
open_clip-style architecture name with OpenAI weights (``ViT-B-32``, ``ViT-B-16``, ``ViT-L-14``),
or a local directory holding a transformers CLIP checkpoint. ``random`` builds the real ViT-B/32
architecture with random weights, which tests the code path and nothing else.
Drawings are trimmed and padded to a square (never stretched) before CLIP's own normalisation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from figsearch.embed.base import VISUAL_ENCODERS, VisualEncoder
from figsearch.embed.preprocess import prepare_drawing
from figsearch.errors import ModelUnavailable
from figsearch.extras import require

log = logging.getLogger(__name__)

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
OPENAI_WEIGHTS = {
    "ViT-B-32": "openai/clip-vit-base-patch32",
    "ViT-B/32": "openai/clip-vit-base-patch32",
    "ViT-B-16": "openai/clip-vit-base-patch16",
    "ViT-B/16": "openai/clip-vit-base-patch16",
    "ViT-L-14": "openai/clip-vit-large-patch14",
    "ViT-L/14": "openai/clip-vit-large-patch14",
    "ViT-L-14-336": "openai/clip-vit-large-patch14-336",
}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
RANDOM = "random"


def _random_vit_b32(transformers):
    """The ViT-B/32 image tower and projection, randomly initialised: no download."""
    config = transformers.CLIPVisionConfig(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        patch_size=32,
        image_size=224,
        projection_dim=512,
        hidden_act="quick_gelu",
    )
    return transformers.CLIPVisionModelWithProjection(config)


@VISUAL_ENCODERS.register("clip", help="CLIP image tower (default ViT-B/32, OpenAI weights; needs the weights)")
class ClipEncoder(VisualEncoder):
    name = "clip"
    batch_size = 32

    def __init__(self, model: str = DEFAULT_CLIP, device: str = "cpu", seed: int = 0) -> None:
        torch = require("torch", "the CLIP encoder")
        transformers = require("transformers", "the CLIP encoder")
        self._torch = torch
        self.device = device
        self.model_name = OPENAI_WEIGHTS.get(model, model)
        transformers.utils.logging.disable_progress_bar()  # library code draws no bars
        mean, std, size = OPENAI_MEAN, OPENAI_STD, 224
        if self.model_name == RANDOM:
            torch.manual_seed(seed)
            network = _random_vit_b32(transformers)
            self._weights = f"random-seed{seed}"
        else:
            network = self._load(transformers, self.model_name)
            self._weights = getattr(network.config, "_commit_hash", None) or "local"
            try:
                processor = transformers.CLIPImageProcessor.from_pretrained(self.model_name)
                mean, std = tuple(processor.image_mean), tuple(processor.image_std)
                crop = processor.crop_size
                size = int(crop["height"] if isinstance(crop, dict) else crop)
            except Exception:  # a checkpoint without its processor file: CLIP's published values
                log.info("no image processor config with %s; using OpenAI CLIP normalisation", self.model_name)
        self._network = network.eval().to(device)
        self.size = size
        self._mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        self.dim = int(network.config.projection_dim)

    @staticmethod
    def _load(transformers, model: str):
        try:
            return transformers.CLIPVisionModelWithProjection.from_pretrained(model)
        except Exception as exc:  # missing files, no network, offline mode: all "not available here"
            offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")
            local = Path(model).exists()
            reason = (
                "is not a readable CLIP checkpoint directory"
                if local
                else "is not in the local Hugging Face cache" + (" (HF_HUB_OFFLINE is set)" if offline else " and could not be downloaded")
            )
            raise ModelUnavailable(
                f"CLIP weights {model!r} {reason} ({type(exc).__name__}). Get them on a machine with internet: "
                f"huggingface-cli download {model if not local else DEFAULT_CLIP} (then copy ~/.cache/huggingface here), "
                f"or pass a local checkpoint directory: --visual-model clip:/path/to/checkpoint. "
                f"Without weights, use the offline encoder: --visual-model lines"
            ) from exc

    @property
    def identity(self) -> dict:
        return {"name": self.name, "model": self.model_name, "weights": self._weights, "dim": self.dim, "size": self.size}

    def _pixels(self, images: Sequence) -> np.ndarray:
        batch = np.stack([np.asarray(prepare_drawing(image, self.size), np.float32) / 255.0 for image in images])
        batch = np.repeat(batch[:, None, :, :], 3, axis=1)  # grey drawing -> RGB
        return (batch - self._mean) / self._std

    def _encode_batch(self, images: Sequence) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            pixels = torch.from_numpy(self._pixels(images)).to(self.device)
            embeds = self._network(pixel_values=pixels).image_embeds
        return embeds.float().cpu().numpy()
