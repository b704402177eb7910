"""figsearch.ocr: reading reference signs and figure labels in drawings.

``OCR_ENGINES.create(name)`` builds an engine (``tesseract``, ``craft``); ``read_signs``
runs one on an image and parses what it read into ``ReferenceSign`` records; ``read_drawing``
gives everything read in a sheet (signs, the drawing's words, header, content box, unlinked
numerals).
"""

from __future__ import annotations

from figsearch.ocr.base import DEFAULT_ENGINE, OCR_ENGINES, OcrEngine, TextBox
from figsearch.ocr.drawing import DrawingText, read_drawing
from figsearch.ocr.sheet import content_box, content_mask
from figsearch.ocr.signs import FIGURE_LABEL, NUMERAL, parse_signs, plausible_signs, sign_texts

# built-in engines register themselves exactly like plugins would; their heavy imports are lazy
from figsearch.ocr import craft as _craft, tesseract as _tesseract  # noqa: E402,F401

__all__ = [
    "DEFAULT_ENGINE", "FIGURE_LABEL", "NUMERAL", "OCR_ENGINES", "DrawingText", "OcrEngine", "TextBox",
    "content_box", "content_mask", "create_engine", "parse_signs", "plausible_signs", "read_drawing",
    "read_signs", "sign_texts",
]


def create_engine(name: str | None = None, **options) -> OcrEngine:
    return OCR_ENGINES.create(name or DEFAULT_ENGINE, **options)


def read_signs(engine: OcrEngine, image):
    """Reference signs (numerals and figure labels) read in ``image`` by ``engine``."""
    return parse_signs(engine.read(image))
