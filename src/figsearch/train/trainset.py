"""Training samples for the drawing encoder, read from collections: the thin layer above ``trainer``.

Only drawings count (front pages, abstract images and non-drawings are left out), one per stored
image (figures cut from a sheet by OCR repeat it and are skipped), grouped by patent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial

from PIL import Image

from figsearch.errors import CorruptInput, InputError
from figsearch.embed.preprocess import strip_running_header  # noqa: F401  (also this module's name for it)

log = logging.getLogger(__name__)


def _load(path: str, strip_header: bool) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            out = image.convert("L")
    except (OSError, ValueError) as exc:
        raise CorruptInput(f"cannot read training image {path}: {exc}") from exc
    return strip_running_header(out) if strip_header else out


def collection_items(
    paths: Sequence[str | os.PathLike], strip_header: bool = True
) -> list[tuple[str, str, Callable[[], Image.Image], str]]:
    """(figure id, patent, image loader, image digest) for every drawing of the collections, deduplicated by image."""
    from figsearch.records import FigureRole
    from figsearch.store import Collection

    items, seen = [], set()
    for path in paths:
        with Collection.open(path) as collection:
            figures = collection.figures(roles=(FigureRole.DRAWING,))
            for figure in figures:
                if figure.parent_id is not None or not figure.image_path:
                    continue
                if figure.image_sha256 and figure.image_sha256 in seen:
                    continue
                seen.add(figure.image_sha256)
                image_path = str(collection.path(figure.image_path))
                loader = partial(_load, image_path, strip_header)
                items.append((figure.figure_id, figure.patent, loader, figure.image_sha256 or image_path))
        log.info("collection %s: %d drawings so far", path, len(items))
    if not items:
        raise InputError(
            f"no drawings to train on in {', '.join(map(str, paths))}; ingest patents with drawings first"
        )
    return items


def source_folders(paths: Sequence[str | os.PathLike]) -> dict[str, int]:
    """Drawings per source folder of the collections (the first folder below the sources' common
    parent, e.g. ``us-design-pdfs``), so that a model's record names the data it learned from."""
    from figsearch.records import FigureRole
    from figsearch.store import Collection

    sources = []
    for path in paths:
        with Collection.open(path) as collection:
            sources += [f.source_file for f in collection.figures(roles=(FigureRole.DRAWING,)) if f.source_file]
    return count_by_folder(sources)


def count_by_folder(sources: Sequence[str]) -> dict[str, int]:
    """Source files per top folder below their common parent (``us-design-pdfs``: 709, ...)."""
    if not sources:
        return {}
    parents = [os.path.dirname(s) for s in sources]
    root = os.path.commonpath(parents) if len(set(parents)) > 1 else os.path.dirname(parents[0])
    counts: dict[str, int] = {}
    for source in sources:
        top = os.path.relpath(source, root).split(os.sep)[0]
        counts[top] = counts.get(top, 0) + 1
    return dict(sorted(counts.items()))
