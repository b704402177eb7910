"""Letters printed touching stay in the glyph layer; only pinholed (grey) words are read closed."""

from __future__ import annotations

import numpy as np
import pytest

from figsearch.ocr.preprocess import glyph_layer, touching_letters
from figsearch.ocr.tesseract import _pinholes


def _glyph(ink, x, y, w=11, h=20):
    """An upright letter-like ring (a "0")."""
    ink[y:y + h, x:x + w] = True
    ink[y + 3:y + h - 3, x + 3:x + w - 3] = False


def _sheet():
    from PIL import Image

    ink = np.zeros((300, 900), dtype=bool)
    for i in range(10):  # a line of separate letters: the sheet's lettering is 20 px tall
        _glyph(ink, 40 + 16 * i, 40)
    # a word whose middle letters touch: three rings joined into one 60 px component (over the
    # 45 px glyph limit), with separate letters on both sides
    _glyph(ink, 40, 120)
    for i in range(3):
        _glyph(ink, 60 + 19 * i, 120, w=22)
    ink[128:132, 60:117] = True
    _glyph(ink, 122, 120)
    # a slanting stroke as tall as the lettering, beside a letter: a leader line, not letters
    for x in range(300, 420):
        y = 220 + (x - 300) // 6
        ink[y:y + 2, x] = True
    _glyph(ink, 425, 225)
    # a wide ring alone, far from any letter
    _glyph(ink, 700, 200, w=70)
    return Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)), ink


def test_touching_letters_beside_a_word_are_kept_strokes_and_lone_shapes_are_not():
    from scipy import ndimage

    image, ink = _sheet()
    labels, count = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    boxes = np.array([(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(labels)])
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (w <= 45) & (h <= 45)
    found = touching_letters(labels, boxes, keep, text_height=20.0, limit=45.0)
    merged = int(labels[130, 100]) - 1
    assert found[merged]
    assert not found[int(labels[221, 301]) - 1]  # the slanting stroke
    assert not found[int(labels[201, 740]) - 1]  # the lone wide ring
    assert found.sum() == 1
    layer = np.asarray(glyph_layer(image).image) < 128
    assert layer[130, 100] and not layer[221, 301] and not layer[201, 740]


def test_pinholes_tell_grey_print_from_a_small_clean_digit():
    clean = np.zeros((24, 16), dtype=bool)
    _glyph(clean, 2, 2, w=11, h=20)  # a thin "0": its counter is a hole, but no pinhole
    assert not _pinholes(clean)
    grey = np.zeros((24, 16), dtype=bool)
    grey[2:22, 3:12] = True
    grey[4:20:3, 5:11:3] = False  # a solid stroke printed as a screen of dots: pinholes
    assert _pinholes(grey)
    assert not _pinholes(np.zeros((10, 10), dtype=bool))


def _underlined_sheet():
    from PIL import Image

    ink = np.zeros((300, 900), dtype=bool)
    for i in range(10):  # the sheet's lettering: 20 px tall
        _glyph(ink, 40 + 16 * i, 40)
    # three letters standing on their underline: one 64 px component, over the 45 px glyph limit
    for i in range(3):
        _glyph(ink, 300 + 20 * i, 120)
    ink[140:143, 296:360] = True
    ink[139, 305] = ink[139, 325] = ink[139, 345] = True  # each letter touches the bar
    # a small frame of the same size: its top is a full row too, so no letters on a bar
    ink[200:222, 300:364] = True
    ink[203:219, 303:361] = False
    # a hatched strip on a base line: its slanting strokes are no letters (each row is filled far across)
    for x in range(500, 580, 3):
        for y in range(120, 140):
            ink[y, min(899, x + (y - 120) // 2)] = True
    ink[139:142, 500:590] = True
    return Image.fromarray(np.where(ink, 0, 255).astype(np.uint8))


def test_underlined_digits_joined_to_their_bar_stay_glyphs_frames_and_hatching_do_not():
    layer = glyph_layer(_underlined_sheet())
    kept = np.asarray(layer.image) < 128
    assert kept[125, 300] and kept[125, 340]  # the underlined letters
    assert not kept[141, 330]  # their bar
    assert not kept[201, 330] and not kept[140, 550]  # the frame and the hatched strip
    # the layer's components are no longer the sheet's: ``kept`` is the layer's own labelling
    labels, lookup, count, _ = layer.kept
    assert np.array_equal(lookup, np.arange(count + 1)) and count > 10
    assert np.array_equal(labels > 0, kept)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_words_of_an_underlined_layer_in_every_turn_equal_labelling_the_turned_layer(rotation):
    """The underlined glyphs' layer is labelled once (``GlyphLayer.kept``); each turn's words from it
    (turned, renumbered) equal those of the turned layer labelled again, as word detection did before."""
    from figsearch.ocr.preprocess import detect_words, turned_components, turned_pixels

    layer = glyph_layer(_underlined_sheet())
    expected = detect_words(np.asarray(layer.image.rotate(rotation, expand=True)) < 128)
    assert expected or rotation in (90, 270)  # sideways, its lettering makes no words
    shape = (layer.image.height, layer.image.width)
    words = detect_words(None, labelled=turned_components(layer.kept, rotation), renumber=bool(rotation),
                         pixels=turned_pixels(layer.pixels, rotation, shape))
    assert words == expected


def test_an_underlined_numeral_is_read():
    from PIL import Image, ImageDraw, ImageFont

    from figsearch.ocr import create_engine
    from figsearch.ocr.drawing import read_drawing

    # a block-diagram box "Processor 202" with "202" underlined, on a sheet large enough that the
    # working scale (1800 px) closes the gap between the digits and the underline
    image = Image.new("L", (1400, 2800), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=46)
    for y, name, number in ((400, "Processor", "202"), (700, "Memory", "204"), (1000, "Receiver", "206")):
        draw.rectangle((300, y - 60, 1100, y + 110), outline=0, width=4)
        draw.text((380, y), name, fill=0, font=font)
        x0, _, x1, y1 = draw.textbbox((700, y), number, font=font)
        draw.text((700, y), number, fill=0, font=font)
        draw.rectangle((x0 - 6, y1 + 1, x1 + 6, y1 + 5), fill=0)
    numerals = {s.text for s in read_drawing(create_engine("tesseract"), image).signs if s.kind == "numeral"}
    assert numerals == {"202", "204", "206"}
