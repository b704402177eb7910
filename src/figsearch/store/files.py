"""The collection's files: normalised drawings and thumbnails as PNG, under the collection root."""

from __future__ import annotations

import io
from pathlib import Path

from figsearch.errors import NotFound
from figsearch.fsutil import atomic_write_bytes, sha256_bytes

#: scratch space of the writer; only the lock holder uses it, so it empties it on opening
TMP_DIR = ".tmp"


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, relative: str) -> Path:
        """Resolve a stored relative path, refusing anything that leaves the collection."""
        resolved = (self.root / relative).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise NotFound(f"path {relative!r} is outside the collection")
        return resolved

    def save_png(self, folder: str, patent: str, key: str, image) -> tuple[str, str]:
        """Store a PIL image as PNG under ``folder/PATENT/KEY.png``; returns (relative path, sha256)."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=False)
        data = buffer.getvalue()
        relative = png_relpath(folder, patent, key)
        atomic_write_bytes(self.root / relative, data, tmp_dir=self.root / TMP_DIR)
        return relative, sha256_bytes(data)

    def save_figure_images(self, patent: str, key: str, image, thumb_size: int = 256) -> tuple[str, str, str]:
        """The drawing under ``images/`` and its thumbnail under ``thumbs/``: (image path, thumb path, sha256)."""
        image_path, sha = self.save_png("images", patent, key, image)
        thumb = image.copy()
        thumb.thumbnail((thumb_size, thumb_size))
        thumb_path, _ = self.save_png("thumbs", patent, key, thumb)
        return image_path, thumb_path, sha


def png_relpath(folder: str, patent: str, key: str) -> str:
    """Where ``save_png`` puts an image, relative to the collection (ingest workers write there too)."""
    return f"{folder}/{_safe_name(patent)}/{_safe_name(key)}.png"


def _safe_name(name: str) -> str:
    """A file-name-safe form of a patent number or figure key (never a path separator)."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "_"
