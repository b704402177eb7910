"""Small synthetic patent drawings with reference numerals, for the OCR and linking tests."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont


def drawing(numerals: list[str], label: str | None = None, size=(1000, 1300), font_size: int = 40) -> Image.Image:
    """A line drawing (frame, circles, boxes, leader lines) with ``numerals`` placed around it."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    w, h = size
    draw.rectangle((150, 200, w - 150, h - 250), outline=0, width=4)
    draw.ellipse((300, 350, 550, 600), outline=0, width=4)
    draw.ellipse((600, 700, 800, 900), outline=0, width=3)
    draw.line((200, 1000, w - 200, 700), fill=0, width=3)
    spots = [(40, 300), (40, 700), (w - 110, 420), (w - 110, 900), (420, 90), (700, 1100), (250, 1100), (600, 90)]
    for text, (x, y) in zip(numerals, spots):
        draw.text((x, y), text, fill=0, font=font)
        # a leader line from the numeral towards the drawing, not touching the glyphs
        right = draw.textbbox((x, y), text, font=font)[2]
        start = right + 12 if x < w / 2 else x - 12
        draw.line((start, y + font_size * 0.6, (start + w / 2) / 2, (y + h / 2) / 2), fill=0, width=2)
    if label:
        draw.text((w / 2 - 80, h - 170), label, fill=0, font=ImageFont.load_default(size=font_size + 10))
    return image


def two_figures(left: list[str], right: list[str]) -> Image.Image:
    """A sheet with FIG. 1 on the left and FIG. 2 on the right, separated by a white gutter."""
    sheet = Image.new("L", (2100, 1300), 255)
    sheet.paste(drawing(left, "FIG. 1"), (0, 0))
    sheet.paste(drawing(right, "FIG. 2"), (1100, 0))
    return sheet


def dashed(draw: ImageDraw.ImageDraw, start, end, dash: float = 22, gap: float = 12, width: int = 4) -> None:
    """A broken (dashed) line from ``start`` to ``end``: the dashes a design drawing is full of."""
    (x0, y0), (x1, y1) = start, end
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    t = 0.0
    while t < length:
        e = min(length, t + dash)
        draw.line((x0 + ux * t, y0 + uy * t, x0 + ux * e, y0 + uy * e), fill=0, width=width)
        t = e + gap


def design_sheet(label: str = "FIG. 2", size=(1300, 1700), seed: int = 3) -> Image.Image:
    """A design drawing: solid outline, broken lines (vertical, tilted, horizontal, dash-dot),
    a stippled area and a label; no reference numerals at all."""
    import random

    rnd = random.Random(seed)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle((300, 250, w - 300, h - 450), outline=0, width=5)
    for x in (200, 240, w - 240, w - 200):
        dashed(draw, (x, 200), (x, h - 400))  # vertical broken lines: each dash looks like a "1"
    dashed(draw, (120, 300), (420, h - 500))  # tilted
    dashed(draw, (w - 120, 300), (w - 420, h - 500), dash=16, gap=10, width=3)
    dashed(draw, (300, 180), (w - 300, 180))  # horizontal
    for i in range(40):  # dash-dot: long dash, dot
        x = 320 + i * 16
        draw.line((x, h - 420, x + 9, h - 420), fill=0, width=3) if i % 2 else draw.rectangle((x, h - 421, x + 2, h - 419), fill=0)
    for _ in range(2500):  # stipple shading
        x, y = rnd.uniform(420, 700), rnd.uniform(400, 900)
        draw.rectangle((x, y, x + 2, y + 2), fill=0)
    if label:
        draw.text((w / 2 - 90, h - 250), label, fill=0, font=ImageFont.load_default(size=56))
    return image


def italic(text: str, size: int = 60, shear: float = 0.25) -> Image.Image:
    """``text`` drawn and slanted like the EPO's italic "Fig. 2"."""
    font = ImageFont.load_default(size=size)
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    w, h = box[2] + 40, box[3] + 30
    image = Image.new("L", (w + int(shear * h), h), 255)
    ImageDraw.Draw(image).text((20 + int(shear * h), 10), text, fill=0, font=font)
    return image.transform(image.size, Image.Transform.AFFINE, (1, shear, 0, 0, 1, 0), fillcolor=255)


def published_sheet(numerals: list[str]) -> Image.Image:
    """A sheet as rendered from a published US PDF: the header line on top, then a drawing."""
    sheet = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=34)
    for x, text in ((200, "U.S. Patent"), (560, "Dec. 29, 2020"), (900, "Sheet 1 of 7"), (1250, "US D906,013 S")):
        draw.text((x, 130), text, fill=0, font=font)
    sheet.paste(drawing(numerals, "FIG. 1"), (350, 500))
    return sheet


def block_diagram(boxes: list[str], numerals=("10", "12"), label: str | None = "FIG. 1", size=(1000, 1300)) -> Image.Image:
    """A block diagram: each of ``boxes`` a lettered box ("IMAGE PROCESSING UNIT") with a numeral beside
    it, joined by lines, and a label: the words a drawing prints besides its signs."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    y = 150
    for i, text in enumerate(boxes):
        box = draw.textbbox((0, 0), text, font=font)
        x = (size[0] - (box[2] - box[0])) // 2
        draw.rectangle((x - 40, y - 30, x + box[2] - box[0] + 40, y + 80), outline=0, width=4)
        draw.text((x, y), text, fill=0, font=font)
        if i < len(numerals):
            draw.text((x + box[2] - box[0] + 80, y), numerals[i], fill=0, font=font)
        if i + 1 < len(boxes):
            draw.line((size[0] // 2, y + 80, size[0] // 2, y + 200), fill=0, width=3)
        y += 230
    if label:
        draw.text((size[0] / 2 - 80, size[1] - 170), label, fill=0, font=ImageFont.load_default(size=50))
    return image


def two_block_diagrams(left: list[str], right: list[str]) -> Image.Image:
    """FIG. 1 and FIG. 2, two block diagrams side by side with a white gutter between them."""
    sheet = Image.new("L", (2100, 1300), 255)
    sheet.paste(block_diagram(left, ("10",), "FIG. 1"), (0, 0))
    sheet.paste(block_diagram(right, ("20",), "FIG. 2"), (1100, 0))
    return sheet
