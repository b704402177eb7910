"""Query images: a PIL image, a path, or the bytes of a TIFF, PNG, JPEG or PDF (first page), any size.

Decoded and normalised by ``figsearch.imaging`` exactly as ingest stores a figure, so that a file
searched with and the same file ingested give the same pixels, hence the same vector. Then the tone is
normalised (``figsearch.tone``): a photographed drawing's grey paper and grey ink become white and black;
an image whose paper is white already (any scan, PDF page or stored drawing) is left exactly as it is.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from figsearch import imaging, tone
from figsearch.errors import InputError, NotFound

#: a drawing smaller than this (either side) holds too little to search with
MIN_SIDE = 8


def load_query_image(image: object, name: str = "query image", *, page: int = 1) -> Image.Image:
    """The grey, bounded image ingest would store for ``image`` (page ``page`` of a TIFF or PDF), its
    tone normalised (``tone.normalise_tone``: unchanged unless its paper is grey).

    NotFound for a missing path; CorruptInput/UnsupportedFormat/InputError for what cannot be used
    (InputError for a page the file does not have, naming how many it has).
    """
    return load_query_page(image, name, page=page)[0]


def load_query_page(image: object, name: str = "query image", *, page: int = 1) -> tuple[Image.Image, int]:
    """``load_query_image``, and how many pages the file has (1 for a PIL image)."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise NotFound(f"query image {path} does not exist")
        name, image = str(path), path.read_bytes()
    if not isinstance(image, (Image.Image, bytes, bytearray, memoryview)):
        raise InputError(f"{name} must be an image or the bytes of an image file, not {type(image).__name__}")
    picture, pages = imaging.load_drawing(image, page=page, name=name)
    if picture.width < MIN_SIDE or picture.height < MIN_SIDE:
        raise InputError(f"{name} is {picture.width}×{picture.height} pixels; a drawing needs at least "
                         f"{MIN_SIDE}×{MIN_SIDE}")
    # load_drawing bounds without imaging.normalise: the same tone step here
    return tone.normalise_tone(picture), pages


def page_note(page: int, pages: int, choose: str) -> str | None:
    """What a search tells of the page it used from a file of several pages (None for a file of one):
    "the file has 7 pages: page 1 was searched (``choose`` picks another)"."""
    if pages <= 1:
        return None
    return f"the file has {pages} pages: page {page} was searched ({choose} picks another)"
