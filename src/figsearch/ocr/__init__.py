"""figsearch.ocr: reading reference signs and figure labels in drawings.

``OCR_ENGINES.create(name)`` builds an engine (``tesseract``, ``craft``); ``read_signs``
runs one on an image and parses what it read into ``ReferenceSign`` records.
"""

from __future__ import annotations

from figsearch.ocr.base import DEFAULT_ENGINE, OCR_ENGINES, OcrEngine, TextBox
from figsearch.ocr.signs import FIGURE_LABEL, NUMERAL, parse_signs, sign_texts

# built-in engines register themselves exactly like plugins would; their heavy imports are lazy
from figsearch.ocr import craft as _craft, tesseract as _tesseract  # noqa: E402,F401

__all__ = [
    "DEFAULT_ENGINE", "FIGURE_LABEL", "NUMERAL", "OCR_ENGINES", "OcrEngine", "TextBox",
    "create_engine", "parse_signs", "read_signs", "sign_texts",
]


def create_engine(name: str | None = None, **options) -> OcrEngine:
    return OCR_ENGINES.create(name or DEFAULT_ENGINE, **options)


def read_signs(engine: OcrEngine, image):
    """Reference signs (numerals and figure labels) read in ``image`` by ``engine``."""
    return parse_signs(engine.read(image))
