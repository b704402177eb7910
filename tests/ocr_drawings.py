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
