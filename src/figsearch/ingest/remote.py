"""Input documents given as URLs (``s3://``, ``gs://``, ``file://``, ``memory://``), read through fsspec.

A URL is listed and its files are copied into a scratch folder of the collection, where the
planner reads them exactly like local files; every file keeps its URL as its name (``sources``
rows, failures, a figure's ``source_file``), so a rerun recognises unchanged documents and
skips them as it does local ones. The copies are deleted when the ingest ends. The collection
itself is always a local directory.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import re
import shutil
import tempfile
from pathlib import Path

from figsearch.errors import InputError, MissingDependency
from figsearch.ingest.plan import Namer
from figsearch.store import TMP_DIR

log = logging.getLogger(__name__)

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(path, str) and bool(_URL.match(path))


def _filesystem(url: str):
    try:
        import fsspec
    except ImportError:
        raise MissingDependency(f"{url}: reading URLs needs fsspec: pip install 'figsearch[cloud]'") from None
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:  # s3fs, gcsfs, ... missing: fsspec says which
        raise MissingDependency(f"{url}: {exc} (pip install 'figsearch[cloud]')") from None
    except ValueError as exc:  # an unknown protocol
        raise InputError(f"{url}: {exc}") from None


def stage(urls: list[str], stack: contextlib.ExitStack, collection_root: Path) -> list[tuple[Path, Namer]]:
    """Copy each URL's files into the collection's scratch folder: (local folder, namer giving URL names)."""
    staged: list[tuple[Path, Namer]] = []
    for url in urls:
        fs, path = _filesystem(url)
        try:
            if not fs.exists(path):
                raise InputError(f"{url}: no such file or folder")
            is_dir = fs.isdir(path)
            files = sorted(fs.find(path)) if is_dir else [path]
        except OSError as exc:
            raise InputError(f"{url}: cannot list it ({exc})") from None
        scratch = Path(collection_root) / TMP_DIR
        scratch.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="remote-", dir=scratch))
        stack.callback(shutil.rmtree, root, True)
        base = path.rstrip("/") if is_dir else posixpath.dirname(path.rstrip("/"))
        logical = url.rstrip("/") if is_dir else url[: len(url) - len(posixpath.basename(path))].rstrip("/")
        for name in files:
            relative = posixpath.relpath(name, base)
            if relative.startswith("..") or any(part.startswith(".") for part in relative.split("/")[:-1]):
                continue  # hidden folders are not walked locally either
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                fs.get_file(name, str(target))
            except OSError as exc:
                raise InputError(f"{logical}/{relative}: cannot read it ({exc})") from None
        log.info("%s: %d file(s) copied for reading", url, len(files))
        staged.append((root, Namer(root, logical, "/")))
    return staged
