"""Masking what is not the drawing (issue 13 item 2): figure labels, reference signs, leader lines.

Tiny drawings built here: a box and a circle, a "FIG. 3" label under them, a reference sign "12"
with a free-standing leader line. The masked image loses the label's (and sign's) pixels and keeps
the drawing's; the encoder made by ``SPEC@mask=...`` cleans every image it encodes, so a drawing
ingested and the same drawing uploaded as a query get the same vector; without a mask nothing
changes (same vectors, same index key); with one, the key changes so an index is rebuilt.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

pytest.importorskip("scipy")

from figsearch.embed.catalog import create_visual, encoder_key  # noqa: E402
from figsearch.embed.masked import MaskedEncoder, mask_spec, split_mask  # noqa: E402
from figsearch.embed.preprocess import Clutter, find_clutter, mask_boxes, mask_drawing, parse_mask  # noqa: E402
from figsearch.errors import InputError  # noqa: E402

LABEL_BOX = (220, 700, 420, 760)  # where the label is drawn (with room around the glyphs)
SIGN_BOX = (538, 155, 600, 186)  # the glyphs of "12", not the start of its leader line


def font(size: int):
    return ImageFont.load_default(size=size)


def sheet(label: str | None = "FIG. 3", sign: bool = False, leader: bool = False) -> Image.Image:
    """A 640x800 sheet: a box with a circle inside, optionally a label below and a sign to the right."""
    image = Image.new("L", (640, 800), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((120, 120, 480, 560), outline=0, width=4)
    draw.ellipse((200, 220, 400, 420), outline=0, width=4)
    draw.line((120, 560, 480, 120), fill=0, width=3)
    if label:
        draw.text((240, 705), label, fill=0, font=font(36))
    if sign:
        draw.text((540, 155), "12", fill=0, font=font(26))
    if leader:
        draw.line((535, 190, 500, 230), fill=0, width=2)  # stops short of the box: free-standing
    return image


def ink(image: Image.Image, box) -> int:
    return int((np.asarray(image.convert("L").crop(box)) < 128).sum())


def test_the_label_is_found_and_its_pixels_are_gone():
    image = sheet()
    clutter = find_clutter(image)
    assert len(clutter.labels) == 1 and not clutter.signs
    x0, y0, x1, y1 = clutter.labels[0]
    assert LABEL_BOX[0] <= x0 and y0 >= LABEL_BOX[1] - 10 and x1 <= LABEL_BOX[2] and y1 <= LABEL_BOX[3]
    masked = mask_drawing(image, ("labels",))
    assert ink(image, LABEL_BOX) > 100 and ink(masked, LABEL_BOX) == 0
    # the drawing itself is untouched
    drawing = (100, 100, 500, 600)
    assert np.array_equal(np.asarray(masked.crop(drawing)), np.asarray(image.convert("L").crop(drawing)))


def test_a_label_printed_sideways_is_found_too():
    turned = sheet().rotate(90, expand=True, fillcolor=255)
    masked = mask_drawing(turned, ("labels",))
    blank = mask_drawing(sheet(label=None).rotate(90, expand=True, fillcolor=255), ())
    assert np.array_equal(np.asarray(masked), np.asarray(blank.convert("L")))


def test_signs_and_leader_lines():
    image = sheet(sign=True, leader=True)
    clutter = find_clutter(image)
    assert len(clutter.labels) == 1 and len(clutter.signs) == 1 and clutter.leaders
    labels_only = mask_drawing(image, ("labels",))
    assert ink(labels_only, SIGN_BOX) > 50  # signs stay unless asked for
    signs = mask_drawing(image, ("labels", "signs"))
    assert ink(signs, SIGN_BOX) == 0 and ink(signs, (500, 188, 540, 235)) > 0  # the leader line is still there
    leaders = mask_drawing(image, ("labels", "leaders"))  # leaders imply signs
    assert ink(leaders, SIGN_BOX) == 0 and ink(leaders, (500, 188, 540, 235)) == 0
    # all that is left is the drawing of a sheet without label, sign or leader line
    assert np.array_equal(np.asarray(leaders), np.asarray(sheet(label=None).convert("L")))


def test_a_drawing_without_text_loses_nothing():
    plain = sheet(label=None)
    assert find_clutter(plain) == Clutter()
    assert np.array_equal(np.asarray(mask_drawing(plain, ("labels", "signs", "leaders"))), np.asarray(plain))


def test_given_boxes_are_masked_as_found_ones_are():
    image = sheet()
    found = find_clutter(image)
    assert np.array_equal(np.asarray(mask_drawing(image, ("labels",), found)), np.asarray(mask_drawing(image, ("labels",))))
    assert np.array_equal(np.asarray(mask_drawing(image, ("labels",), Clutter(labels=(LABEL_BOX,)))),
                          np.asarray(mask_boxes(image, [LABEL_BOX])))


def test_mask_specifications():
    assert parse_mask("signs+labels") == ("labels", "signs")
    assert parse_mask("leaders") == ("signs", "leaders")
    assert parse_mask("none") == () and parse_mask("") == ()
    with pytest.raises(InputError, match="unknown mask part.*hatching.*choose from labels, signs, leaders"):
        parse_mask("labels,hatching")
    assert split_mask("backbone:m.onnx@mask=labels") == ("backbone:m.onnx", ("labels",))
    assert split_mask("backbone:m.onnx") == ("backbone:m.onnx", ())
    assert mask_spec("hog@mask=labels", ["signs"]) == "hog@mask=signs"
    assert mask_spec("hog@mask=labels", []) == "hog"


def test_masking_off_gives_the_previous_vectors_and_key():
    images = [sheet(), sheet(sign=True)]
    plain, off = create_visual("hog"), create_visual("hog@mask=none")
    assert not isinstance(off, MaskedEncoder) and encoder_key(off) == encoder_key(plain)
    np.testing.assert_array_equal(off.encode(images), plain.encode(images))
    masked = create_visual("hog@mask=labels")
    assert isinstance(masked, MaskedEncoder) and masked.identity["mask"] == ["labels"]
    assert encoder_key(masked) != encoder_key(plain)  # an index of the plain vectors is never searched with these
    assert encoder_key(create_visual("hog@mask=labels,signs")) != encoder_key(masked)
    # masking the label makes a labelled sheet and the bare drawing one vector; unmasked they differ
    bare = sheet(label=None)
    np.testing.assert_allclose(masked.encode([images[0]]), masked.encode([bare]), atol=1e-6)
    assert np.abs(plain.encode([images[0]]) - plain.encode([bare])).max() > 1e-3


def _png(image: Image.Image) -> bytes:
    data = io.BytesIO()
    image.save(data, format="PNG")
    return data.getvalue()


def test_ingest_and_query_paths_give_the_same_vector(collection_dir):
    """A sheet indexed with SPEC@mask=labels and the same drawing uploaded with another label: score 1."""
    from figsearch.pipeline.index import update_collection
    from figsearch.records import Figure, FigureRole, Patent
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService
    from figsearch.store import Collection

    with Collection.open(collection_dir, create=True) as c:
        figures = []
        for n, image in enumerate([sheet("FIG. 1"), sheet(label=None).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]):
            path, digest = c.save_png("images", "US1", f"D{n}", image)
            figures.append(Figure(f"US1-D{n}", "US1", label=f"FIG. {n}", role=FigureRole.DRAWING, sequence=n,
                                  image_path=path, image_sha256=digest, width=640, height=800))
        c.upsert_patent(Patent("US1", "US", "1", "S1"), figures)
        update_collection(c, visual_model="hog@mask=labels", text_model="none")
        key = encoder_key(create_visual("hog@mask=labels"))
        stored = c.vectors.fetch("visual", key, ["US1-D0"])["US1-D0"]
    with SearchService.open(collection_dir) as service:
        assert service._encoder("visual").identity["mask"] == ["labels"]
        hits = service.search(Query(image=_png(sheet("FIG. 7")), mode="visual", rerank=False, k=2)).hits
        assert hits[0].figure_id == "US1-D0" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        query = service._encode("visual", [sheet("FIG. 7")])[0]
    np.testing.assert_allclose(query, stored, atol=1e-6)


def test_changing_the_mask_rebuilds_the_index_and_says_so(collection_dir):
    from figsearch.pipeline.index import update_collection
    from figsearch.records import Figure, FigureRole, Patent
    from figsearch.store import Collection

    with Collection.open(collection_dir, create=True) as c:
        path, digest = c.save_png("images", "US1", "D0", sheet())
        c.upsert_patent(Patent("US1", "US", "1", "S1"), [Figure("US1-D0", "US1", label="FIG. 3", role=FigureRole.DRAWING,
                                                                image_path=path, image_sha256=digest, width=640, height=800)])
        update_collection(c, visual_model="hog", text_model="none")
        report = update_collection(c, visual_model="hog@mask=labels", text_model="none")
        (visual,) = [r for r in report.indexes if r.modality == "visual"]
        assert visual.action == "rebuilt" and "encoder changed" in visual.reason
        assert c.get_setting("visual_encoder")["spec"] == "hog@mask=labels"  # recorded with the collection
        again = update_collection(c, text_model="none")  # a later run without options keeps the mask
        assert [r.action for r in again.indexes if r.modality == "visual"] == ["unchanged"]


def test_boxes_stored_by_the_ocr_stage_mask_the_same_way():
    from figsearch.records import DrawingWord, ReferenceSign

    image = sheet(sign=True)
    found = find_clutter(image)
    signs = [ReferenceSign("FIG. 3", "figure_label", found.labels[0]), ReferenceSign("12", "numeral", found.signs[0])]
    ocr = Clutter.from_ocr(signs, [DrawingWord("VALVE", None)])
    assert ocr == Clutter(found.labels, found.signs)
    for parts in [("labels",), ("labels", "signs")]:
        assert np.array_equal(np.asarray(mask_drawing(image, parts, ocr)), np.asarray(mask_drawing(image, parts)))


def test_the_masked_encoder_keeps_the_inner_encoders_other_abilities():
    """A text query searches drawings through the inner encoder's text adapter (search.service looks it up by name)."""

    class WithAdapter(type(create_visual("hog"))):
        text_model = "minilm"

        def encode_text_query(self, texts, text_encoder=None):
            return np.ones((len(texts), self.dim), np.float32)

    masked = MaskedEncoder(WithAdapter(), ("labels",))
    assert masked.text_model == "minilm" and callable(getattr(masked, "encode_text_query", None))
    assert masked.encode_text_query(["a shoe"]).shape == (1, masked.dim)
    assert masked.name == "hog" and masked.identity == {**WithAdapter().identity, "mask": ["labels"]}
