"""Deterministic fake encoders and tiny collections for the embed/index/search tests.

``fake-angle`` (visual): the grey value of pixel (0, 0) is an angle in degrees; the vector is
(cos, sin) of it, so the cosine of two drawings is cos(difference of their angles).
``fake-words`` (text): counts of the words rotor, blade, hub (and 1 in an "other" slot for a
sentence with none of them), so text cosines can be worked out by hand.
Both count their calls, so tests can prove that a rebuild ran no model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
from PIL import Image

from figsearch.embed.base import TEXT_ENCODERS, VISUAL_ENCODERS, TextEncoder, VisualEncoder
from figsearch.records import Classification, Figure, FigureRole, Patent
from figsearch.store import Collection

VOCABULARY = ("rotor", "blade", "hub")
CALLS = {"visual": 0, "text": 0}


class AngleEncoder(VisualEncoder):
    name = "fake-angle"
    dim = 2

    def __init__(self, model: str | None = None) -> None:
        self.version = model or "1"

    @property
    def identity(self) -> dict:
        return {"name": self.name, "dim": self.dim, "version": self.version}

    def _encode_batch(self, images: Sequence) -> np.ndarray:
        CALLS["visual"] += len(images)
        angles = [math.radians(image.convert("L").getpixel((0, 0))) for image in images]
        return np.array([[math.cos(a), math.sin(a)] for a in angles], np.float32)


class WordsEncoder(TextEncoder):
    name = "fake-words"
    dim = len(VOCABULARY) + 1

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        CALLS["text"] += len(texts)
        rows = []
        for text in texts:
            words = text.lower().split()
            counts = [float(words.count(w)) for w in VOCABULARY]
            rows.append(counts + [0.0 if any(counts) else 1.0])
        return np.array(rows, np.float32)


if "fake-angle" not in VISUAL_ENCODERS:
    VISUAL_ENCODERS.register("fake-angle", help="test encoder")(AngleEncoder)
    TEXT_ENCODERS.register("fake-words", help="test encoder")(WordsEncoder)


def angle_image(degrees: int, size: int = 16) -> Image.Image:
    image = Image.new("L", (size, size), 255)
    image.putpixel((0, 0), degrees)
    return image


def add_patent(
    collection: Collection,
    publication: str,
    figures: list[tuple[str, int, str | None]],
    *,
    title: str | None = None,
    date: str = "2021-01-05",
    office: str = "US",
    classes: tuple[str, ...] = (),
    front_page_angle: int | None = None,
) -> None:
    """Figures as (key, angle, description); a front page (never indexed) when an angle is given."""
    records = []
    entries = list(figures)
    if front_page_angle is not None:
        entries.insert(0, ("F0", front_page_angle, None))
    for sequence, (key, angle, description) in enumerate(entries):
        path, digest = collection.save_png("images", publication, key, angle_image(angle))
        role = FigureRole.FRONT_PAGE if key == "F0" else FigureRole.DRAWING
        records.append(
            Figure(f"{publication}-{key}", publication, label=f"FIG. {sequence}", role=role, sequence=sequence,
                   image_path=path, image_sha256=digest, description=description, width=16, height=16)
        )
    patent = Patent(publication, office, publication[2:], "S1", title=title, publication_date=date,
                    classifications=[Classification("CPC", c) for c in classes])
    collection.upsert_patent(patent, records)


def hand_collection(root) -> None:
    """The collection the fusion tests compute by hand (see test_search_service.py)."""
    with Collection.open(root, create=True) as c:
        add_patent(c, "US1", [("A", 0, "rotor blade"), ("B", 30, "hub")], date="2021-01-05",
                   classes=("F03D 1/06",), front_page_angle=0)
        add_patent(c, "US2", [("C", 60, "rotor"), ("D", 90, "rotor blade hub")], date="2021-06-01",
                   classes=("F03D 7/00",))
        add_patent(c, "EP3", [("E", 10, None)], date="2022-03-01", office="EP", classes=("B64C 11/00",))



@contextmanager
def hand_service(root):
    """A SearchService over ``hand_collection(root)``, indexed with the fake encoders."""
    from figsearch.pipeline.index import update_collection
    from figsearch.search.service import SearchService

    hand_collection(root)
    with Collection.open(root, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    with SearchService.open(root) as s:
        yield s


def indexed_hand_collection(root):
    """``hand_collection`` indexed with the fake encoders (``fake-angle``, ``fake-words``); returns ``root``."""
    from figsearch.pipeline.index import update_collection

    hand_collection(root)
    with Collection.open(root, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    return root
