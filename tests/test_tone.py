"""Tone normalisation (figsearch.tone): a photographed drawing's grey paper and ink become white and black;
a clean drawing passes through bit for bit (so that no stored vector of an existing collection changes)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from figsearch import imaging, tone
from figsearch.search.inputs import load_query_image


def drawing(size=(600, 450), scale: int = 1) -> Image.Image:
    """A line drawing, black on white: a box, a circle, a diagonal and a hatched corner; drawn ``scale``
    times larger and reduced, when ``scale`` > 1 (anti-aliased edges)."""
    w, h = size[0] * scale, size[1] * scale
    image = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((w // 10, h // 10, w // 2, h // 2), outline=0, width=3 * scale)
    draw.ellipse((w // 2, h // 3, 9 * w // 10, 9 * h // 10), outline=0, width=2 * scale)
    draw.line((w // 10, 9 * h // 10, w // 2, 6 * h // 10), fill=0, width=2 * scale)
    for x in range(w // 10, w // 3, 6 * scale):
        draw.line((x, h // 10, x + h // 8, h // 10 + h // 8), fill=0, width=scale)
    return image.reduce(scale) if scale > 1 else image


def grey_paper(image: Image.Image, paper: int = 225, ink: int = 60) -> Image.Image:
    return image.point(lambda v: round(ink + (paper - ink) * v / 255))


def photo(image: Image.Image) -> Image.Image:
    """Grey paper lit unevenly (225 at the left, 185 at the right), ink 60, turned, soft and JPEG."""
    turned = image.rotate(5, expand=True, fillcolor=255)
    pixels = np.asarray(turned, np.float32) / 255
    light = np.linspace(225, 185, pixels.shape[1])[None, :]
    shaded = Image.fromarray((60 + pixels * (light - 60)).round().astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))
    buffer = io.BytesIO()
    shaded.save(buffer, format="JPEG", quality=60)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_grey_paper_becomes_white_and_its_ink_black():
    clean = drawing()
    ink = np.asarray(clean) == 0
    out = np.asarray(tone.normalise_tone(grey_paper(clean)))
    assert out[~ink].min() >= 250
    assert out[ink].max() <= 10


def test_a_photo_lit_unevenly_has_white_paper_and_black_ink_everywhere():
    clean = drawing()
    shot = photo(clean)
    out = np.asarray(tone.normalise_tone(shot))
    ink = np.asarray(photo(clean).point(lambda v: 255 if v > 150 else 0)) == 0  # the strokes, from the photo
    paper = np.asarray(clean.rotate(5, expand=True, fillcolor=255).filter(ImageFilter.MinFilter(7))) == 255
    assert np.median(out[paper]) >= 250 and np.mean(out[paper] >= 240) > 0.97
    # both ends of the sheet (225 and 185 before): the paper is as white at the dark end as at the light end
    left, right = out[:, : out.shape[1] // 4], out[:, -out.shape[1] // 4 :]
    assert np.median(left[paper[:, : out.shape[1] // 4]]) >= 250
    assert np.median(right[paper[:, -out.shape[1] // 4 :]]) >= 250
    assert np.median(out[ink]) <= 40  # soft strokes: their cores black, their edges grey


@pytest.mark.parametrize("scale", [1, 4], ids=["binary", "anti-aliased"])
def test_a_clean_drawing_passes_through_bit_for_bit(scale):
    clean = drawing(scale=scale)
    if scale > 1:
        assert len(np.unique(np.asarray(clean))) > 10  # really anti-aliased: grey edges
    assert tone.normalise_tone(clean) is clean
    assert load_query_image(png(clean)).tobytes() == clean.tobytes()


def test_light_ink_on_white_paper_is_left_alone():
    """Only the paper decides: a pencil-light drawing on white paper is a clean scan."""
    light = drawing().point(lambda v: 170 + v * 85 // 255)
    assert tone.normalise_tone(light) is light


def test_normalising_twice_is_normalising_once():
    once = tone.normalise_tone(photo(drawing()))
    assert tone.normalise_tone(once) is once


def test_a_blank_grey_sheet_is_not_made_into_ink():
    rng = np.random.default_rng(0)
    blank = Image.fromarray(np.clip(rng.normal(200, 3, (300, 400)), 0, 255).astype(np.uint8))
    out = np.asarray(tone.normalise_tone(blank))
    assert out.min() > 100  # no stroke appears out of the paper's noise


def test_a_large_dark_area_is_not_taken_for_paper():
    """A drawing with a solid black block, on grey paper: the black stays dark, not paper (the light
    estimate has a floor, ``LIGHT_FLOOR``)."""
    pixels = np.array(drawing())
    h, w = pixels.shape
    pixels[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 0
    out = np.asarray(tone.normalise_tone(grey_paper(Image.fromarray(pixels))))
    assert out[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].max() <= 40
    assert np.median(out[:, -w // 8 :]) >= 250


def test_a_dark_part_cut_by_one_edge_stays_dark():
    """A black part of the drawing that a tight crop cut at the left edge is not a table around the sheet
    (it holds less than ``SURROUND_EDGE`` of the edge)."""
    pixels = np.array(drawing())
    pixels[:, : pixels.shape[1] // 4] = 0
    out = np.asarray(tone.normalise_tone(grey_paper(Image.fromarray(pixels))))
    assert out[:, : pixels.shape[1] // 4].max() <= 40


@pytest.mark.parametrize("where", ["around", "corner"])
def test_a_table_around_the_sheet_becomes_paper(where):
    """A photo that shows the (dark) table around the sheet, or on two sides of it: the table is whitened,
    the strokes stay."""
    sheet = grey_paper(drawing())
    table = Image.new("L", (int(sheet.width * 1.2), int(sheet.height * 1.2)), 90)
    x, y = ((table.width - sheet.width) // 2, (table.height - sheet.height) // 2) if where == "around" else (
        table.width - sheet.width, table.height - sheet.height)
    table.paste(sheet, (x, y))
    out = np.asarray(tone.normalise_tone(table))
    outside = np.ones(out.shape, bool)
    outside[y : y + sheet.height, x : x + sheet.width] = False
    assert out[outside].min() >= 250
    ink = np.asarray(drawing()) == 0
    assert out[y : y + sheet.height, x : x + sheet.width][ink].max() <= 10


def test_it_takes_grey_images_only():
    with pytest.raises(ValueError, match="mode L"):
        tone.normalise_tone(drawing().convert("RGB"))


def test_the_query_path_normalises_a_photographed_drawing():
    clean = drawing()
    loaded = np.asarray(load_query_image(png(grey_paper(clean)), "grey.png"))
    ink = np.asarray(clean) == 0
    assert loaded[~ink].min() >= 250 and loaded[ink].max() <= 10
    # load_drawing (what ingest stores) alone keeps the grey: the query path adds the normalisation
    stored, _ = imaging.load_drawing(png(grey_paper(clean)))
    assert np.asarray(stored).min() >= 60


def test_real_drawings_pass_through(shared_data):
    """Real sheets as ingest stores them: TIFF scans of an EP document and 2007 design drawings."""
    paths = sorted((shared_data / "ep-documents" / "EP1667425A1").glob("imgf*.tif"))[:3]
    paths += [p for p in sorted((shared_data / "us-design-2007").glob("USD*.png")) if int(p.stem[3:]) % 2 == 0][:6]
    assert paths, "no drawings found in the shared data"
    for path in paths:
        image, _ = imaging.load_drawing(path)
        assert tone.normalise_tone(image) is image, path


def test_the_search_service_searches_a_grey_paper_upload_as_its_clean_drawing(collection_dir):
    """The service's uploads go through the normalisation: a grey-paper copy and the clean drawing give
    the same hits and scores (the fake encoder's vector is the angle of pixel (0, 0), here paper: 225 on
    the grey copy, which would score differently if it were searched as it is)."""
    from _search_helpers import hand_service

    from figsearch.search.query import Query

    clean = drawing()
    with hand_service(collection_dir) as service:
        results = [service.search(Query(image=png(picture), mode="visual", k=10, rerank=False))
                   for picture in (clean, grey_paper(clean))]
    scores = [[(h.figure_id, round(h.score, 6)) for h in result.hits] for result in results]
    assert scores[0] and scores[0] == scores[1]


def test_a_clean_crop_that_is_mostly_ink_passes_through():
    """A crop of a clean drawing into a dark area: 3% of it white paper is enough to count as clean."""
    pixels = np.zeros((200, 200), np.uint8)
    pixels[:6] = 255  # 3 % of the crop
    pixels[50:150:4] = 128  # and grey hatching
    crop = Image.fromarray(pixels)
    assert tone.normalise_tone(crop) is crop


def test_ingest_stores_a_photographed_drawing_normalised_and_a_clean_one_as_it_is():
    """One preprocessing for ingest and queries: the same grey-paper file ingested or searched gives the same pixels."""
    clean = drawing()
    assert imaging.normalise(clean).image.tobytes() == clean.tobytes()
    stored = imaging.normalise(grey_paper(clean)).image
    ink = np.asarray(clean) == 0
    assert np.asarray(stored)[~ink].min() >= 250 and np.asarray(stored)[ink].max() <= 10
    assert stored.tobytes() == load_query_image(png(grey_paper(clean))).tobytes()


@pytest.mark.parametrize("where", ["top", "bottom", "scattered", "too few at the top"])
def test_white_paper_is_told_the_same_by_the_top_bands_and_by_the_whole_image(where):
    """The quick look at the top rows (``_white_at_the_top``) only ever says yes where the whole image's
    histogram does; where it says nothing, the whole image decides as before."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(60, 200, (400, 300), dtype=np.uint8)  # grey: no white paper
    white = int(tone.WHITE_SHARE * pixels.size)
    if where == "top":
        pixels[:40] = 255
    elif where == "bottom":
        pixels[-40:] = 255
    elif where == "scattered":
        pixels.flat[rng.choice(pixels.size, white + 1, replace=False)] = 252
    else:
        pixels.flat[:white - 1] = 255  # one pixel short of the share, all in the first rows
    image = Image.fromarray(pixels, "L")
    whole = sum(image.histogram()[tone.PAPER_WHITE:]) >= tone.WHITE_SHARE * pixels.size
    top = tone._white_at_the_top(image, tone.WHITE_SHARE * pixels.size)
    assert whole == (where != "too few at the top") and top <= whole and top == (where == "top")
    assert (tone.normalise_tone(image) is image) == whole
