"""A tiny collection of two kinds of drawing (rings and boxes, two USPC classes) for the backbone encoder's tests."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from figsearch.records import Classification, Figure, FigureRole, Patent
from figsearch.store import Collection

KINDS = {
    "ring": ("Round ring with a circular rim", "D11/1"),
    "box": ("Square box with straight edges", "D9/4"),
}


def drawing(kind: str, seed: int) -> Image.Image:
    """A ring (concentric circles) or a box (nested squares), placed and sized by ``seed``."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (200, 200), 255)
    draw = ImageDraw.Draw(image)
    cx, cy = (int(v) for v in rng.integers(80, 120, 2))
    for r in (int(rng.integers(50, 70)), int(rng.integers(25, 40))):
        box = (cx - r, cy - r, cx + r, cy + r)
        (draw.ellipse if kind == "ring" else draw.rectangle)(box, outline=0, width=int(rng.integers(2, 5)))
    return image


def tiny_collection(root, per_kind: int = 6, sheets: int = 2, *, first: int = 3000, draw=drawing,
                    title_format: str | None = None):
    """``per_kind`` patents of each kind, numbered from ``first`` + 1, each with ``sheets`` drawings made by
    ``draw(kind, seed)``; titled by KINDS, or by ``title_format.format(kind=kind)`` when given."""
    with Collection.open(root, create=True) as c:
        n = 0
        for kind, (kind_title, code) in KINDS.items():
            title = kind_title if title_format is None else title_format.format(kind=kind)
            for p in range(per_kind):
                n += 1
                pub = f"US{first + n}S1"
                figures = []
                for s in range(1, sheets + 1):
                    rel, sha = c.save_png("images", pub, f"D{s:05d}", draw(kind, 100 * n + s))
                    figures.append(Figure(f"{pub}-D{s:05d}", pub, role=FigureRole.DRAWING, sequence=s, image_path=rel,
                                          image_sha256=sha))
                patent = Patent(pub, "US", str(first + n), "S1", title=title,
                                classifications=[Classification("USPC", code)])
                c.upsert_patent(patent, figures)
    return root


def train_encoder(args) -> str:
    """Run ``figsearch train-encoder ARGS`` in-process; fail the test with its output if it fails."""
    from click.testing import CliRunner

    from figsearch.cli import main

    result = CliRunner().invoke(main, ["train-encoder", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output
