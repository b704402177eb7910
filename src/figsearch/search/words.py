"""The words printed in an uploaded drawing: read like a collection's drawings, they become its text.

A block diagram or a flowchart says what it is about in its own words ("IMAGE PROCESSING UNIT",
"RECEIVE REQUEST"). A drawing uploaded as a query has no other text, so the service reads it with
the same reader the sign stage uses (``figsearch.ocr.read_drawing``, the default engine) and,
when the mode uses text, searches the text index with what it read (``words_text``, the same text
a stored figure's words make). Reading costs one OCR pass of the drawing (see docs/ocr.md for the
milliseconds it adds per upload).
"""

from __future__ import annotations

import logging
import threading

from PIL import Image

from figsearch.errors import FigsearchError
from figsearch.records import DrawingWord

log = logging.getLogger(__name__)


class DrawingReader:
    """Reads the words of query drawings; the engine is made on first use and shared by threads
    (the engine serialises its own calls)."""

    def __init__(self, engine: str | None = None) -> None:
        self.engine_name = engine
        self._engine = None
        self._failed: str | None = None
        self._lock = threading.Lock()

    def _get(self):
        with self._lock:
            if self._engine is None and self._failed is None:
                try:
                    from figsearch.ocr import create_engine

                    self._engine = create_engine(self.engine_name)
                except (FigsearchError, ImportError, OSError, RuntimeError) as exc:
                    self._failed = str(exc)
                    log.warning("drawing words of query images will not be read: %s", exc)
            return self._engine

    def warm(self) -> bool:
        """Makes the engine and loads its model now rather than on the first read; whether there is one."""
        engine = self._get()
        if engine is None:
            return False
        try:
            engine.load()  # tesseract loads its language model at the first reading otherwise (~0.1 s)
        except (FigsearchError, OSError, RuntimeError) as exc:
            with self._lock:
                self._engine, self._failed = None, str(exc)
            log.warning("drawing words of query images will not be read: %s", exc)
            return False
        return True

    @property
    def unavailable(self) -> str | None:
        """Why words cannot be read (no OCR engine installed), or None."""
        return self._failed

    def read(self, image: Image.Image) -> list[DrawingWord]:
        """The words printed in ``image`` in reading order; [] when none, or when no engine is there
        (``unavailable`` then says why)."""
        engine = self._get()
        if engine is None:
            return []
        from figsearch.ocr import read_drawing

        found = read_drawing(engine, image).words
        return [DrawingWord(w.text, tuple(int(v) for v in w.box), w.confidence, w.line) for w in found]
