"""``lines``: a handcrafted descriptor of patent line drawings that needs no network weights.

Four blocks, each a histogram, square-rooted (Hellinger) and L2-normalised:

- ``lbp``: binary ink patterns at 1, 2 and 4 px (hatching, stippling, dashes, corners),
- ``runs``: ink and gap run lengths (line weight and hatching spacing),
- ``orient``: global edge-orientation histograms at three scales,
- ``hog``: the plain HOG pyramid of the whole drawing (its layout),

the first three measured at a fixed stroke width (figsearch.embed.encoders.inkstats). The blocks are
centred and weighted, and a PCA fitted once on unrelated design drawings (the 1,087 US design
patents of 2007; ``scripts/fit_lines_projection.py``) projects them to 256 dimensions with
half-whitening (eigenvalues^-½ ... ^-¼), which evens out the directions that every drawing shares.
The fitted statistics ship in ``figsearch/models/lines_v1.npz`` (``lines:PATH`` takes another
file); ``model=None`` keeps the raw, uncentred blocks instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from figsearch.embed.base import VISUAL_ENCODERS, VisualEncoder
from figsearch.embed.encoders.hog import hog_of_drawing, orientation_histogram
from figsearch.embed.encoders.inkstats import (
    INK_THRESHOLD,
    LBP_RADII,
    at_stroke_scale,
    darkness,
    local_binary_patterns,
    resize_by,
    run_length_histograms,
)
from figsearch.embed.preprocess import trim_margins
from figsearch.errors import InputError

#: block weights chosen on held-out data (see the module docstring); the HOG layout counts less
#: than the drawing style because the sheets of one design show different views
BLOCK_WEIGHTS = {"lbp": 1.0, "runs": 1.0, "orient": 0.5, "hog": 0.7}
DEFAULT_PROJECTION = "lines_v1.npz"
PROJECTION_DIMS = 256
WHITENING = 0.5


def raw_blocks(image: Image.Image) -> dict[str, np.ndarray]:
    """The four histograms of one drawing (any size, any mode), before any centring."""
    grey = trim_margins(image)
    textured = at_stroke_scale(grey)
    dark = darkness(textured)
    ink = dark > INK_THRESHOLD
    orient = [orientation_histogram(dark)]
    for factor in (0.5, 0.25):
        orient.append(orientation_histogram(darkness(resize_by(textured, factor))))
    return {
        "lbp": np.concatenate([local_binary_patterns(ink, r) for r in LBP_RADII]),
        "runs": run_length_histograms(ink),
        "orient": np.concatenate(orient),
        "hog": hog_of_drawing(grey),
    }


def combine(blocks: Sequence[dict[str, np.ndarray]], means: dict[str, np.ndarray] | None) -> np.ndarray:
    """Square-root, centre (when means are given), L2-normalise and weight each block; concatenate."""
    parts = []
    for name, weight in BLOCK_WEIGHTS.items():
        x = np.sqrt(np.stack([b[name] for b in blocks]).astype(np.float32))
        if means is not None:
            x = x - means[name]
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
        parts.append(weight * x)
    return np.hstack(parts)


def fit_projection(images: Iterable[Image.Image], dims: int = PROJECTION_DIMS, whitening: float = WHITENING) -> dict:
    """Block means, global mean and the half-whitening PCA projection, fitted on ``images``."""
    blocks = [raw_blocks(image) for image in images]
    if len(blocks) < dims:
        raise InputError(f"fitting a {dims}-dimensional projection needs at least {dims} drawings, got {len(blocks)}")
    means = {name: np.sqrt(np.stack([b[name] for b in blocks])).mean(axis=0) for name in BLOCK_WEIGHTS}
    x = combine(blocks, means)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    projection = vt[:dims].T / (s[:dims] ** whitening)
    # scale so that projected vectors have norms near 1 before the final normalisation
    projection *= float(np.median(s[:dims] ** whitening)) / np.sqrt(len(blocks))
    arrays = {f"mean_{name}": means[name].astype(np.float32) for name in BLOCK_WEIGHTS}
    arrays.update(mean=mean.astype(np.float32), projection=projection.astype(np.float16))
    return arrays


def load_projection(source: str | Path) -> tuple[dict[str, np.ndarray], str]:
    path = Path(source)
    if not path.is_file():
        packaged = resources.files("figsearch") / "models" / str(source)
        if not packaged.is_file():
            raise InputError(f"projection file {source} not found (neither a path nor a packaged model)")
        path = Path(str(packaged))
    data = path.read_bytes()
    import io

    with np.load(io.BytesIO(data)) as npz:
        arrays = {key: npz[key] for key in npz.files}
    return arrays, hashlib.sha256(data).hexdigest()[:16]


@VISUAL_ENCODERS.register("lines", help="line-drawing style + layout descriptor (handcrafted, offline)")
class LinesEncoder(VisualEncoder):
    name = "lines"
    batch_size = 16

    def __init__(self, model: str | Path | None = DEFAULT_PROJECTION) -> None:
        """``model``: the fitted statistics (a path or a packaged file name); None keeps raw blocks."""
        projection = model
        self._projection_name = str(projection) if projection is not None else None
        if projection is None:
            self._means = None
            self._mean = self._matrix = None
            self._digest = "raw"
            self.dim = 512 * len(LBP_RADII) + 40 + 54 + 765
        else:
            arrays, self._digest = load_projection(projection)
            self._means = {name: arrays[f"mean_{name}"] for name in BLOCK_WEIGHTS}
            self._mean = arrays["mean"]
            self._matrix = arrays["projection"].astype(np.float32)
            self.dim = self._matrix.shape[1]

    @property
    def identity(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "version": 1,
            "projection": self._projection_name,
            "projection_sha256": self._digest,
            "weights": BLOCK_WEIGHTS,
        }

    def _encode_batch(self, images: Sequence) -> np.ndarray:
        x = combine([raw_blocks(image) for image in images], self._means)
        if self._matrix is not None:
            x = (x - self._mean) @ self._matrix
        return x.astype(np.float32)
