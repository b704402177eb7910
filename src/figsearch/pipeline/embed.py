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
from figsearch.embed.sheet_context import context_digest, mix, sheet_context_of
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
    #: figures cut from a sheet whose stored vector was mixed with their sheet's (``mix_sheet_context``)
    mixed: int = 0
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
    """(figures to embed with their image digests, number already up to date).

    With a sheet context (``embed.sheet_context``) a cut figure is up to date with its plain vector
    (``mix_sheet_context`` mixes it next) or its mixed one; a drawing whose vector the same encoder without
    the sheet context stored for the same pixels gets that vector copied, not encoded again (uncut drawings'
    vectors are the same either way; the cut figures' are mixed next)."""
    key = encoder_key(encoder)
    stored = collection.vectors.inputs("visual", key)
    beta = sheet_context_of(encoder)
    sheets = _sheet_digests(collection) if beta else {}
    todo, unchanged = [], 0
    for figure in drawings(collection):
        if not figure.image_path:
            continue
        digest = _image_digest(collection, figure)
        have = stored.get(figure.figure_id)
        if digest is not None and (have == digest or (
                have is not None and sheets.get(figure.parent_id) is not None
                and have == context_digest(digest, sheets[figure.parent_id], beta))):
            unchanged += 1
        else:
            todo.append((figure, digest))
    if beta and todo:
        left = _copy_plain_vectors(collection, encoder, key, todo)
        unchanged += len(todo) - len(left)
        todo = left
    return todo, unchanged


def _sheet_digests(collection: Collection) -> dict[str, str | None]:
    """Image digest of every sheet that was cut into figures, by its id."""
    return {f.figure_id: _image_digest(collection, f) for f in collection.figures(roles=(FigureRole.SPLIT_SHEET,))}


def _copy_plain_vectors(collection: Collection, encoder, key: str,
                        todo: list[tuple[Figure, str]]) -> list[tuple[Figure, str]]:
    """Store, under ``key``, the vectors the encoder without its sheet context stored for the same pixels
    (a collection switched to ``@sheet=``: only its sheets are encoded); returns what is left to encode."""
    identity = dict(encoder.identity)
    identity.pop("sheet_context", None)
    plain_key = encoder_key(identity)
    plain = collection.vectors.inputs("visual", plain_key)
    same = [(f, d) for f, d in todo if d is not None and plain.get(f.figure_id) == d]
    if not same:
        return todo
    vectors = collection.vectors.fetch("visual", plain_key, [f.figure_id for f, _ in same])
    rows = [(f.figure_id, vectors[f.figure_id], d) for f, d in same if f.figure_id in vectors]
    collection.vectors.save("visual", key, rows)
    copied = {fid for fid, _, _ in rows}
    return [(f, d) for f, d in todo if f.figure_id not in copied]


def mix_sheet_context(collection: Collection, encoder, load_encoder: Callable[[], VisualEncoder] | None = None,
                      *, batch_size: int = 16, fresh_encoder_above: int | None = None) -> int:
    """Mix the stored plain vector of every figure cut from a sheet with its sheet's vector
    (``embed.sheet_context.mix``), when ``encoder`` asks for a sheet context; returns how many were mixed.

    Runs after the drawings are embedded, whichever path embedded them (this module, a Ray build's workers):
    each stores a cut figure's plain vector under its image digest, and this step replaces it by the mixed one
    under ``context_digest``. The sheets (not indexed, their vectors not stored) are encoded here, each once.
    The overlapped build's stream stores the mixed vectors itself (``overlapped._Writer._mixed_rows``, from
    the sheet it decoded to cut it), so after it this step finds only what the stream left (an interrupted
    build's figures, a sheet that failed there). ``load_encoder`` gives an encoder that can encode when ``encoder``
    is a Ray build's stand-in, or, with ``fresh_encoder_above``, when more sheets than that are to be encoded
    (``encoder`` is then the overlapped build's one-thread encoder, and this step has the cores to itself)."""
    beta = sheet_context_of(encoder)
    if not beta:
        return 0
    sheets = {f.figure_id: f for f in collection.figures(roles=(FigureRole.SPLIT_SHEET,))}
    if not sheets:  # nothing was cut: no need to read every stored vector's digest
        return 0
    key = encoder_key(encoder)
    stored = collection.vectors.inputs("visual", key)
    by_sheet: dict[str, list[tuple[Figure, str]]] = {}
    for figure in drawings(collection):
        sheet = sheets.get(figure.parent_id) if figure.parent_id else None
        if sheet is None or not sheet.image_path or stored.get(figure.figure_id) is None:
            continue
        digest = _image_digest(collection, figure)
        if digest is not None and stored[figure.figure_id] == digest:  # a plain vector: not mixed yet
            by_sheet.setdefault(sheet.figure_id, []).append((figure, digest))
    if not by_sheet:
        return 0
    if not hasattr(encoder, "encode") or (fresh_encoder_above is not None and load_encoder is not None
                                          and len(by_sheet) > fresh_encoder_above):
        encoder = load_encoder()
    mixed = 0
    order = list(by_sheet)
    for start in range(0, len(order), batch_size):
        batch, images = [], []
        for sheet_id in order[start : start + batch_size]:
            sheet = sheets[sheet_id]
            try:
                images.append(_load(collection, sheet))
                batch.append(sheet_id)
            except Exception as exc:  # its figures keep their plain vectors (and are tried again next time)
                log.warning("sheet %s: cannot read stored image %s: %s; its cut figures stay unmixed",
                            sheet_id, sheet.image_path, exc)
        if not batch:
            continue
        sheet_vectors = dict(zip(batch, encoder.encode(images)))
        rows = []
        for sheet_id in batch:
            sheet_digest = _image_digest(collection, sheets[sheet_id])
            figures = by_sheet[sheet_id]
            plain = collection.vectors.fetch("visual", key, [f.figure_id for f, _ in figures])
            figures = [(f, d) for f, d in figures if f.figure_id in plain]
            if not figures or sheet_digest is None:
                continue
            vectors = mix(np.stack([plain[f.figure_id] for f, _ in figures]),
                          np.repeat(sheet_vectors[sheet_id][None, :], len(figures), axis=0), beta)
            rows += [(f.figure_id, v, context_digest(d, sheet_digest, beta)) for (f, d), v in zip(figures, vectors)]
        collection.vectors.save("visual", key, rows)
        mixed += len(rows)
    return mixed


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
