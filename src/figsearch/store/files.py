"""The collection's files: normalised drawings and thumbnails as PNG, under the collection root."""

from __future__ import annotations

from pathlib import Path

from figsearch.errors import NotFound
from figsearch.fsutil import atomic_write_bytes, sha256_bytes
from figsearch.imaging import PNG_LEVEL, encode_png, stored_pixels_equal, thumbnail_of

#: zlib level of thumbnails, as of the drawings: a design grant's 256 px thumbnail deflated in 0.35 instead
#: of 1.0 CPU ms at level 6, for 8.6 instead of 7.7 kB (docs/performance.md, "Stop 26"); the pixels are the same
THUMB_PNG_LEVEL = 1

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
        """Store a PIL image as PNG under ``folder/PATENT/KEY.png``; returns (relative path, sha256).

        A drawing (``images/``) already stored there with the same pixels keeps its file and digest
        (``write_png``)."""
        relative = png_relpath(folder, patent, key)
        drawing = folder == "images"
        sha = write_png(self.root, relative, image, level=PNG_LEVEL if drawing else THUMB_PNG_LEVEL, keep_same=drawing)
        return relative, sha

    def save_figure_images(self, patent: str, key: str, image, thumb_size: int = 256) -> tuple[str, str, str]:
        """The drawing under ``images/`` and its thumbnail under ``thumbs/``: (image path, thumb path, sha256)."""
        image_path, sha = self.save_png("images", patent, key, image)
        thumb_path, _ = self.save_png("thumbs", patent, key, thumbnail_of(image, thumb_size))
        return image_path, thumb_path, sha

    def remove(self, relatives: list[str]) -> int:
        """Delete stored files (a removed patent's drawings and thumbnails) and the folders they leave empty;
        returns how many files were there. A file already gone is no error (a rerun after a kill)."""
        removed, folders = 0, set()
        for relative in relatives:
            path = self.path(relative)
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            folders.add(path.parent)
        for folder in folders:
            try:
                folder.rmdir()  # only when empty: another figure may still live there
            except OSError:
                pass
        return removed


def write_png(root: Path, relative: str, image, *, level: int = PNG_LEVEL, keep_same: bool = True) -> str:
    """Store ``image`` at ``root/relative`` as PNG (``figsearch.imaging.encode_png``), atomically; returns
    the sha256 of the stored bytes, which is the figure's ``image_sha256``. Raises OSError.

    ``keep_same``: a file already there that decodes to exactly these pixels is left as it is, and its
    digest returned. So a drawing ingested again (``--force``, a changed source file) or cut again
    keeps its digest, and with it its signs and vectors, even when an earlier version of figsearch
    encoded it differently: the digest names the stored file, but only the pixels matter.
    """
    path = root / relative
    if keep_same:
        try:
            old = path.read_bytes()
        except OSError:
            old = None
        if old is not None and stored_pixels_equal(old, image):
            return sha256_bytes(old)
    data = encode_png(image, level)
    atomic_write_bytes(path, data, tmp_dir=root / TMP_DIR)
    return sha256_bytes(data)


def png_relpath(folder: str, patent: str, key: str) -> str:
    """Where ``save_png`` puts an image, relative to the collection (ingest workers write there too)."""
    return f"{folder}/{_safe_name(patent)}/{_safe_name(key)}.png"


def _safe_name(name: str) -> str:
    """A file-name-safe form of a patent number or figure key (never a path separator)."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "_"
