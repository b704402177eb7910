"""Embed what is new: the drawings of a collection whose stored vector is missing or stale.

Images are decoded in a background thread while the encoder works on the previous batch, and
each batch is committed on its own, so an interrupted run keeps what it finished. Progress goes
to an optional callback (the CLI draws a bar with it); library code only logs.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from figsearch.embed.base import TextEncoder, VisualEncoder, l2_normalise
from figsearch.embed.catalog import encoder_key
from figsearch.fsutil import sha256_file
from figsearch.link.text import WORDS_SHARE, FigureText, figure_text
from figsearch.records import Figure, FigureRole
from figsearch.store import Collection

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class EmbedReport:
    modality: str
    encoder: str
    embedded: int = 0
    unchanged: int = 0
    #: figures whose text vector was dropped because they have no text any more
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def text_digest(sentences: Iterable[str]) -> str:
    """Digest of the sentences a text vector is computed from: the vector is redone when it changes."""
    return hashlib.sha256("\x1f".join(sentences).encode("utf-8")).hexdigest()


def drawings(collection: Collection) -> list[Figure]:
    return collection.figures(roles=(FigureRole.DRAWING,))


def _image_digest(collection: Collection, figure: Figure) -> str | None:
    if figure.image_sha256:
        return figure.image_sha256
    try:
        return sha256_file(collection.path(figure.image_path))
    except OSError:
        return None


def plan_visual(collection: Collection, encoder: VisualEncoder) -> tuple[list[tuple[Figure, str]], int]:
    """(figures to embed with their image digests, number already up to date)."""
    stored = collection.vectors.inputs("visual", encoder_key(encoder))
    todo, unchanged = [], 0
    for figure in drawings(collection):
        if not figure.image_path:
            continue
        digest = _image_digest(collection, figure)
        if digest is not None and stored.get(figure.figure_id) == digest:
            unchanged += 1
        else:
            todo.append((figure, digest))
    return todo, unchanged


def _load(collection: Collection, figure: Figure) -> Image.Image:
    return decode_stored(collection.path(figure.image_path))


def encoder_input(image: Image.Image) -> Image.Image:
    """A decoded stored image as the visual stage hands it to an encoder: grey or RGB as stored, else grey."""
    return image.convert("L") if image.mode not in ("L", "RGB") else image


def decode_stored(source) -> Image.Image:
    """A stored figure image (a path or a file object) as the encoders take it."""
    from figsearch.imaging import load_stored

    return encoder_input(load_stored(source))


def _prefetch(collection: Collection, items: Sequence, batch_size: int) -> Iterator[list]:
    """Batches of (figure, digest, image or exception), decoded one batch ahead in a thread."""
    batches: queue.Queue = queue.Queue(maxsize=2)

    def work() -> None:
        for start in range(0, len(items), batch_size):
            batch = []
            for figure, digest in items[start : start + batch_size]:
                try:
                    batch.append((figure, digest, _load(collection, figure)))
                except Exception as exc:  # a missing or corrupt stored image: report it, go on
                    batch.append((figure, digest, exc))
            batches.put(batch)
        batches.put(None)

    thread = threading.Thread(target=work, name="figsearch-image-loader", daemon=True)
    thread.start()
    while (batch := batches.get()) is not None:
        yield batch
    thread.join()


def embed_visual(
    collection: Collection,
    encoder: VisualEncoder,
    todo: list[tuple[Figure, str]] | None = None,
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> EmbedReport:
    key = encoder_key(encoder)
    unchanged = 0
    if todo is None:
        todo, unchanged = plan_visual(collection, encoder)
    report = EmbedReport("visual", key, unchanged=unchanged)
    for batch in _prefetch(collection, todo, batch_size):
        good = [(f, d, img) for f, d, img in batch if not isinstance(img, Exception)]
        for figure, _, exc in (item for item in batch if isinstance(item[2], Exception)):
            reason = f"cannot read stored image {figure.image_path}: {exc}"
            log.warning("figure %s: %s", figure.figure_id, reason)
            report.failed.append((figure.figure_id, reason))
        if good:
            vectors = encoder.encode([img for _, _, img in good])
            collection.vectors.save("visual", key, [(f.figure_id, v, d) for (f, d, _), v in zip(good, vectors)])
            report.embedded += len(good)
        if progress:
            progress(len(batch))
    return report


def text_inputs_digest(text: FigureText, share: float = WORDS_SHARE) -> str:
    """Digest of what a text vector is made of; a figure without drawing words keeps the digest of
    its sentences alone (its vector does not change), one with words is redone when they or their
    share change."""
    if text.words is None:
        return text_digest(text.sentences)
    return text_digest([*text.sentences, f"\x1edrawing words {share:g}: {text.words}"])


def text_vector(sentences: np.ndarray | None, words: np.ndarray | None, share: float = WORDS_SHARE) -> np.ndarray:
    """A figure's text vector from its sentences' embeddings (rows) and its words' embedding:
    ``(1 - share) * mean(sentences) + share * words``, each part normalised first (so that ``share``
    is the words' share of the direction however many sentences there are), then the sum; either
    part alone when the other is missing."""
    if sentences is None or not len(sentences):
        return l2_normalise(np.asarray(words)[None, :])[0]
    mean = l2_normalise(np.mean(sentences, axis=0, keepdims=True))[0]
    if words is None:
        return mean
    return l2_normalise(((1.0 - share) * mean + share * l2_normalise(np.asarray(words)[None, :])[0])[None, :])[0]


def texts_to_encode(text: FigureText) -> list[str]:
    """The texts whose embeddings make ``text``'s vector: its sentences, then its drawing words."""
    return [*text.sentences, *([text.words] if text.words else [])]


def text_row(figure: Figure, text: FigureText, digest: str, encoded: dict[str, np.ndarray]) -> tuple:
    """The stored row (figure id, vector, digest) of a figure's text, from ``encoded`` (text -> embedding)."""
    sentences = np.array([encoded[s] for s in text.sentences]) if text.sentences else None
    return figure.figure_id, text_vector(sentences, encoded[text.words] if text.words else None), digest


def plan_text(collection: Collection, encoder: TextEncoder) -> tuple[list[tuple[Figure, FigureText, str]], list[str], int]:
    """(figures to embed with their text and digest, figures whose text vector must go, unchanged)."""
    stored = collection.vectors.inputs("text", encoder_key(encoder))
    todo, drop, unchanged = [], [], 0
    for figure in drawings(collection):
        text = figure_text(collection, figure)
        if not text:
            # no text, no text vector: a zero vector would match everything equally
            if figure.figure_id in stored:
                drop.append(figure.figure_id)
            continue
        digest = text_inputs_digest(text)
        if stored.get(figure.figure_id) == digest:
            unchanged += 1
        else:
            todo.append((figure, text, digest))
    return todo, drop, unchanged


def embed_text(
    collection: Collection,
    encoder: TextEncoder,
    plan: tuple | None = None,
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> EmbedReport:
    """Text vector of a figure = mean of its sentences' embeddings, mixed with its drawing's words
    (``text_vector``), normalised again."""
    key = encoder_key(encoder)
    todo, drop, unchanged = plan if plan is not None else plan_text(collection, encoder)
    report = EmbedReport("text", key, unchanged=unchanged)
    report.removed = collection.vectors.delete("text", key, drop)
    cache: dict[str, np.ndarray] = {}  # titles and shared sentences are embedded once
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        if len(cache) > 200_000:  # bound memory on huge collections; only reuse is lost
            cache.clear()
        wanted = (s for _, text, _ in batch for s in texts_to_encode(text))
        new = list(dict.fromkeys(s for s in wanted if s not in cache))
        if new:
            cache.update(zip(new, encoder.encode(new)))
        collection.vectors.save("text", key, [text_row(f, text, digest, cache) for f, text, digest in batch])
        report.embedded += len(batch)
        if progress:
            progress(len(batch))
    return report
