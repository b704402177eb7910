"""The ``backbone`` visual encoder: a pretrained ImageNet backbone with a head trained on patent drawings.

The model is one ONNX file (``figsearch/models/drawing-backbone.onnx``, or ``model=PATH`` for one
written by ``figsearch train-encoder --arch backbone``): grey drawing in, unit vector out. Inside it:
the frozen MobileNetV2 of ``embed.backbone_nets`` (ImageNet weights), average pooling of its last
map (or, for models trained with ``--levels``, several of its feature maps pooled in the same pass,
each centred, normalised and weighted: ``train.backbone.Pooled`` / ``LevelNorm``), square
roots, centring by the training drawings' mean and a linear head trained with same-patent
positives, classification codes as graded positives and a text-alignment loss
(``embed.backbone_train``). The file's metadata (``figsearch`` property) holds the settings, the
training record and the *text adapter*: a linear map from MiniLM sentence vectors into the
drawing space, so that words can find drawings that carry no text (``encode_text_query``).

Inference needs onnxruntime only (no torch): batched, a few ms per drawing. Two things make it faster
than running the file as written (both measured in docs/encoder.md, "Stop 19"), for every model file:

- the level poolings are rewritten when the model is opened (``pooling_rewritten``, when ``onnx`` is
  installed): ``Clip(min 0) -> Pow(3) -> ReduceMean`` becomes ``Mul -> Mul -> GlobalAveragePool``, which
  onnxruntime runs in its blocked (NCHWc) layout, where ``ReduceMean`` and ``Pow`` made it copy every
  pooled map back to the plain layout; the ``Clip`` is dropped only where its input is a ReLU6 output
  (already >= 0). The same numbers up to float rounding (cosine >= 0.99999 on training drawings);
- drawings are prepared and run in small chunks (``CHUNK``) by ``threads`` worker threads, each on a
  one-thread session run, instead of batches of 32 on one multi-threaded run: the maps of a small chunk
  stay in the cache, and preparing (one thread each) overlaps the network.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from figsearch.embed.base import VISUAL_ENCODERS, VisualEncoder, l2_normalise
from figsearch.embed.sheet_context import with_sheet_context
from figsearch.errors import ModelUnavailable

log = logging.getLogger(__name__)

DEFAULT_MODEL = "drawing-backbone.onnx"
FORMAT = "figsearch-backbone-encoder"
FORMAT_VERSION = 1
METADATA_KEY = "figsearch"
#: drawings per network run: the maps of a few drawings stay in the cache (batches of 32 took 1.3-1.6x
#: the CPU time per drawing of batches of 2-8 on the 2-core machine, docs/encoder.md "Stop 19")
CHUNK = 4


def default_model_path() -> Path:
    return Path(str(resources.files("figsearch") / "models" / DEFAULT_MODEL))


def prepare_grey(image, size: int) -> np.ndarray:
    """One drawing as the network sees it: (size, size) uint8 grey, paper white. The same for
    ingest, queries and training: the running header of PDF sheets whitened, margins trimmed,
    padded (not stretched) to a square, resized."""
    from figsearch.embed.preprocess import prepare_drawing
    from figsearch.embed.preprocess import strip_running_header

    return np.asarray(prepare_drawing(strip_running_header(image.convert("L")), size), dtype=np.uint8)


def _header_on_top(rows: np.ndarray) -> bool:
    """Whether ``strip_running_header`` whitens a header in an image whose rows hold ink (< 128) where
    ``rows`` is true: it looks at that profile and the height only, so a one-pixel-wide image of it
    answers for the whole drawing (and the rule stays preprocess's own)."""
    from PIL import Image

    from figsearch.embed.preprocess import strip_running_header

    column = Image.fromarray(np.where(rows, 0, 255).astype(np.uint8)[:, None])
    return strip_running_header(column) is not column


def _ink_box(ink_rows: np.ndarray, ink_cols: np.ndarray, margin: int = 2) -> tuple[int, int, int, int] | None:
    """``preprocess.ink_box`` from which rows and columns hold ink (the same arithmetic)."""
    rows, cols = np.flatnonzero(ink_rows), np.flatnonzero(ink_cols)
    if rows.size == 0:
        return None
    h, w = ink_rows.size, ink_cols.size
    return (max(int(cols[0]) - margin, 0), max(int(rows[0]) - margin, 0),
            min(int(cols[-1]) + 1 + margin, w), min(int(rows[-1]) + 1 + margin, h))


def _turned_prepared(pixels: np.ndarray, quarter_turns: int, size: int) -> np.ndarray:
    """``prepare_drawing``'s pad and resize of the grey array ``pixels`` turned ``quarter_turns`` times
    counter-clockwise (Pillow's ``ROTATE_90``, as ``np.rot90``), pixel for pixel, for less work:

    - the turn is a NumPy view, copied once into place, not Pillow's transpose, a new white square
      and a paste (on the 2-core machine NumPy's turn of a 1000 x 2300 drawing took about 2.4 ms of
      CPU against Pillow's 4);
    - Pillow resizes in two passes, rows first (each row's result rounded to 8 bits), then columns,
      and a white row stays exactly white through the first pass (its weights sum to one in fixed
      point, well within the rounding). So a turn that is wider than high, whose square is padded
      with white rows, has only its own rows resized across, and the white rows join before the
      pass down: the same two passes, without the padding's share of the first.

    The padding is where ``ImageOps.pad`` centres it; a size that ``ImageOps.contain`` would change
    takes ``pad_to_square`` itself. ``tests/test_server_upload_turns.py`` holds it to the general path."""
    from PIL import Image

    from figsearch.embed.preprocess import pad_to_square

    turned = np.rot90(pixels, quarter_turns)
    h, w = turned.shape
    side = max(w, h)
    resample = Image.Resampling.LANCZOS if side < size else Image.Resampling.BOX

    def resized(array: np.ndarray, to: tuple[int, int]) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(array)).resize(to, resample), dtype=np.uint8)

    if (w != h and (round(w / h * side) if w < h else round(h / w * side)) != min(w, h)):
        square = pad_to_square(Image.fromarray(np.ascontiguousarray(turned)))
        return np.asarray(square.resize((size, size), resample), dtype=np.uint8)
    if quarter_turns % 2:
        # a quarter turn: the drawing is not turned at full size (a copy across the cache lines, about a
        # fifth of the preparation). Pillow's first pass, across the turned drawing's rows, is a pass down
        # the unturned drawing's columns, with the same weights and the same integer sums (Pillow computes
        # both passes' weights with one function of the lengths), taken in the same order along the turned
        # rows: so it runs on the unturned drawing, and only its result (the size's width) is turned for
        # the second pass. Turned three times is turned once from the drawing turned twice (a reversed
        # copy, not a transpose), so that the first pass never runs against the rows' order.
        base = np.ascontiguousarray(pixels if quarter_turns % 4 == 1 else pixels[::-1, ::-1])
        if w < side:  # the turned drawing's white columns left and right are white rows above and below here
            x = round((side - w) * 0.5)
            square = np.empty((side, side), dtype=np.uint8)
            square[:x] = 255
            square[x + w :] = 255
            square[x : x + w] = base
            base = square
        down = np.rot90(np.asarray(Image.fromarray(base).resize((base.shape[1], size), resample), dtype=np.uint8))
        if w <= h:
            return resized(down, (size, size))  # the second pass alone (the width is already the size)
        y = round((side - h) * 0.5)  # white rows above and below the turned drawing
        across = np.full((side, size), 255, dtype=np.uint8)
        across[y : y + h] = down
        return resized(across, (size, size))
    if w == h:
        return resized(turned, (size, size))
    if w < side:  # white columns left and right
        x = round((side - w) * 0.5)
        drawn = _drawn_outputs(side, size, x, x + w, resample)
        if drawn is not None:  # the first pass only where the drawing is: the rest of it is white
            first, end, width = drawn
            part = np.empty((side, width), dtype=np.uint8)
            part[:, :x] = 255
            part[:, x + w :] = 255
            part[:, x : x + w] = turned
            across = np.full((side, size), 255, dtype=np.uint8)
            across[:, first:end] = np.asarray(Image.fromarray(part).resize(
                (end - first, side), resample, box=(first * side / size, 0, end * side / size, side)), dtype=np.uint8)
            return resized(across, (size, size))  # the second pass alone (the width is already the size)
        square = np.empty((side, side), dtype=np.uint8)  # every row of the square is resized across
        square[:, :x] = 255
        square[:, x + w :] = 255
        square[:, x : x + w] = turned
        return resized(square, (size, size))
    y = round((side - h) * 0.5)  # white rows above and below
    across = np.full((side, size), 255, dtype=np.uint8)
    across[y : y + h] = resized(turned, (size, h))  # the first pass alone (the height is kept)
    return resized(across, (size, size))  # the second alone (the width is already the size)


#: the support of Pillow's resampling filters (``Resample.c``), in input pixels at scale 1
_FILTER_SUPPORT = {"BOX": 0.5, "LANCZOS": 3.0}


def _float_held(value) -> bool:
    """Whether a single-precision float holds the fraction ``value`` exactly (Pillow's resize box is one)."""
    return value.denominator & (value.denominator - 1) == 0 and float(np.float32(float(value))) == value


def _box_windows(in0: float, in1: float, outputs: int, in_size: int):
    """(first column, fixed-point weights) of each output of Pillow's BOX pass over ``in_size`` columns with the
    box ``in0``..``in1`` (single-precision floats): ``precompute_coeffs`` and ``normalize_coeffs_8bpc`` of
    Pillow's ``Resample.c``, step by step in doubles (NumPy's are the same IEEE operations)."""
    scale = float(np.float32(in1) - np.float32(in0)) / outputs  # the box's difference is taken in single precision
    filterscale = max(scale, 1.0)
    support, ss = 0.5 * filterscale, 1.0 / filterscale
    centers = float(np.float32(in0)) + (np.arange(outputs) + 0.5) * scale
    xmin = np.maximum(np.trunc(centers - support + 0.5), 0.0)
    xmax = np.minimum(np.trunc(centers + support + 0.5), in_size) - xmin
    x = np.arange(math.ceil(support) * 2 + 1)
    where = ((x[None, :] + xmin[:, None]) - centers[:, None] + 0.5) * ss
    weights = ((where > -0.5) & (where <= 0.5) & (x[None, :] < xmax[:, None])).astype(np.float64)
    total = weights.sum(axis=1, keepdims=True)
    return xmin, np.trunc(0.5 + np.divide(weights, total, out=weights.copy(), where=total != 0) * (1 << 22))


def _drawn_outputs(side: int, size: int, left: int, right: int, resample) -> tuple[int, int, int] | None:
    """For the first (across) pass of resizing a ``side``-wide square to ``size`` that is white but for its
    columns ``left``..``right``: (first, end, width) such that Pillow's pass over only the first ``width``
    columns, to outputs ``first``..``end`` with ``box=(first * side / size, 0, end * side / size, side)``,
    gives the square's outputs ``first``..``end`` to the bit, and every other output is white (255). None
    when nothing is saved.

    Why the same: Pillow computes each output's window and weights from ``in0 + (i + 0.5) * scale``, the
    scale being ``(in1 - in0) / outputs`` with ``in0`` and ``in1`` single-precision floats (``Resample.c``,
    ``precompute_coeffs``). With both held exactly by a float, the scale is the square's ``side / size`` to
    the bit (the same real number, rounded once), so with ``in0 = 0`` every window and weight is the
    square's; ``width`` covers every one of them (the clamp to the image's width leaves them as they were).
    With ``in0 > 0`` (BOX only) the centres may differ from the square's in their last bit, so the windows
    and weights themselves are compared (``_box_windows``), and ``first`` is 0 when they differ. An output
    whose window holds white only stays white (its weights sum to one in fixed point)."""
    from fractions import Fraction

    scale = side / size
    support = _FILTER_SUPPORT[resample.name] * max(scale, 1.0)
    starts = [int((i + 0.5) * scale - support + 0.5) for i in range(size)]  # each window's first column
    end = next((i for i in range(size) if starts[i] >= right), size)  # from here on white only
    while end < size and not _float_held(Fraction(end * side, size)):
        end += 1
    # before ``first``, each window ends before the drawing's first column
    first = next((i for i in range(size) if int((i + 0.5) * scale + support + 0.5) > left), 0)
    while first > 0 and not _float_held(Fraction(first * side, size)):
        first -= 1
    if first >= end:
        first = 0
    if end == 0 or (end == size and first == 0):
        return None
    in1 = Fraction(end * side, size)
    width = min(side, max(int((end - 0.5) * scale + support + 0.5), math.ceil(in1)))
    if first:
        whole = _box_windows(0.0, float(side), size, side)
        part = _box_windows(first * side / size, float(in1), end - first, width)
        if resample.name != "BOX" or not all(np.array_equal(a[first:end], b) for a, b in zip(whole, part)):
            first = 0
    if end == size and first == 0:
        return None
    return first, end, width


def prepare_turns(image, angles: Sequence[int], size: int) -> np.ndarray:
    """``(len(angles), size, size)`` uint8: for each angle, ``prepare_grey(image.rotate(angle, expand=True,
    fillcolor=255), size)``, pixel for pixel, for less work (an uploaded query is matched in four quarter
    turns). The ink is found once, in the drawing's own orientation: the rows and columns that hold
    ink give each turn's running-header test and its margins (a quarter turn only reorders them), and
    only the trimmed drawing is turned, not the whole image; padding and resizing give
    ``prepare_drawing``'s pixels (``_turned_prepared``). A turn whose top carries a running header, and
    an angle that is no quarter turn, take the general path. ``tests/test_server_upload_turns.py``
    checks the identity."""
    from figsearch.embed.preprocess import PAPER_THRESHOLD
    from figsearch.imaging import grey_pixels

    grey = image if image.mode == "L" else image.convert("L")  # read only: no copy of a grey one
    # the darkest pixel of each row and column, one pass each: it answers both strip_running_header's
    # ink test (< 128) and trim_margins' (< PAPER_THRESHOLD), where each built a mask and reduced it
    pixels = grey_pixels(grey)  # read only, and without np.asarray's copy of the whole image
    row_min, col_min = pixels.min(axis=1), pixels.min(axis=0)
    rows, cols = row_min < 128, col_min < 128
    box = _ink_box(row_min < PAPER_THRESHOLD, col_min < PAPER_THRESHOLD)  # trim_margins' box; a quarter
    # turn turns it (its margins clamp alike on all sides)
    trimmed = pixels[box[1] : box[3], box[0] : box[2]] if box else pixels  # a view: turned and padded below
    # the rows of the turned image, top first: 90 degrees counter-clockwise puts the last column on top
    tops = {0: rows, 90: cols[::-1], 180: rows[::-1], 270: cols}
    prepared = []
    for angle in angles:
        turn = angle % 360
        if turn not in tops or _header_on_top(tops[turn]):
            prepared.append(prepare_grey(image.rotate(angle, expand=True, fillcolor=255), size))
            continue
        prepared.append(_turned_prepared(trimmed, turn // 90, size))
    return np.stack(prepared)


def pack_array(array: np.ndarray) -> dict:
    array = np.ascontiguousarray(array, dtype=np.float32)
    return {"shape": list(array.shape), "float32_b64": base64.b64encode(array.tobytes()).decode("ascii")}


def unpack_array(packed: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed["float32_b64"]), dtype=np.float32).reshape(packed["shape"]).copy()


def _load_model(path: Path):
    """The ONNX model of ``path`` (``onnx.ModelProto``), or None when ``onnx`` is not installed."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise ModelUnavailable(f"backbone encoder model {path} is unreadable (corrupt or not ONNX): {exc}") from None


def read_metadata(path: Path, model=None) -> dict:
    """The ``figsearch`` metadata of a backbone model file; ModelUnavailable naming the file if it is not one.
    ``model``: the file's ``onnx.ModelProto`` when already loaded."""
    model = model if model is not None else _load_model(path)
    if model is not None:
        props = {p.key: p.value for p in model.metadata_props}
    else:
        session = _session(path, 1)
        props = dict(session.get_modelmeta().custom_metadata_map)
    try:
        meta = json.loads(props[METADATA_KEY])
    except (KeyError, ValueError):
        raise ModelUnavailable(f"backbone encoder model {path} has no figsearch metadata: not written by figsearch train-encoder") from None
    if meta.get("format") != FORMAT:
        raise ModelUnavailable(f"{path} is not a figsearch backbone encoder model")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelUnavailable(f"{path} was written by a newer figsearch (format {meta['format_version']}); upgrade")
    return meta


def _constant(graph, name: str, producers: dict):
    """The value of an initializer or Constant node's output ``name`` (numpy), else None."""
    from onnx import numpy_helper

    for tensor in graph.initializer:
        if tensor.name == name:
            return numpy_helper.to_array(tensor)
    node = producers.get(name)
    if node is not None and node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
        return numpy_helper.to_array(node.attribute[0].t)
    return None


def pooling_rewritten(model) -> int:
    """Rewrites, in place, the spatial poolings of a backbone model (``train.backbone.Pooled``'s levels) into
    the form onnxruntime runs without leaving its blocked layout: ``ReduceMean`` over the two spatial axes
    becomes ``GlobalAveragePool`` (+ ``Flatten`` where the mean dropped the axes), a ``Pow`` by 3 before it
    ``x * x * x``, and a ``Clip`` to >= 0 before that is dropped when its input is already a ``Clip`` to
    >= 0 (ReLU6). Returns how many poolings were rewritten; other graphs are left as they are."""
    from onnx import helper

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1

    def lower_bound(node) -> float | None:
        if node is None or node.op_type != "Clip" or len(node.input) < 2 or not node.input[1]:
            return None
        value = _constant(graph, node.input[1], producers)
        return None if value is None or value.size != 1 else float(value)

    replaced: dict[int, list] = {}
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "ReduceMean":
            continue
        attrs = {a.name: a for a in node.attribute}
        if "axes" in attrs:
            axes = list(attrs["axes"].ints)
        elif len(node.input) > 1 and node.input[1]:
            value = _constant(graph, node.input[1], producers)
            axes = None if value is None else [int(v) for v in np.ravel(value)]
        else:
            axes = None
        if axes not in ([2, 3], [-2, -1], [3, 2]):
            continue
        keepdims = attrs["keepdims"].i if "keepdims" in attrs else 1
        source, new = node.input[0], []
        power = producers.get(source)
        exponent = _constant(graph, power.input[1], producers) if power is not None and power.op_type == "Pow" else None
        if exponent is not None and exponent.size == 1 and float(exponent) == 3.0 and consumers.get(source) == 1:
            x = power.input[0]
            clip = producers.get(x)
            bound = lower_bound(clip)
            no_max = clip is not None and (len(clip.input) < 3 or not clip.input[2])
            if bound is not None and bound <= 0 and no_max and consumers.get(x) == 1:
                upstream = lower_bound(producers.get(clip.input[0]))
                if upstream is not None and upstream >= 0:  # clamping a ReLU6 output to >= 0 changes nothing
                    x = clip.input[0]
                    dropped.add(id(clip))
            dropped.add(id(power))
            square, cube = f"{source}__square", f"{source}__cube"
            new += [helper.make_node("Mul", [x, x], [square], name=square),
                    helper.make_node("Mul", [square, x], [cube], name=cube)]
            source = cube
        pooled = node.output[0] if keepdims else f"{node.output[0]}__pooled"
        new.append(helper.make_node("GlobalAveragePool", [source], [pooled], name=f"{node.output[0]}__gap"))
        if not keepdims:
            new.append(helper.make_node("Flatten", [pooled], [node.output[0]], name=f"{node.output[0]}__flat", axis=1))
        replaced[id(node)] = new
    if not replaced:
        return 0
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes.extend(replaced[id(node)])
        elif id(node) not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return len(replaced)


def _session(path: Path, threads: int | None, model=None):
    """An onnxruntime session of the model file (or of ``model``, its rewritten ``onnx.ModelProto``)."""
    from figsearch.extras import require

    ort = require("onnxruntime", "the backbone drawing encoder")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or min(2, os.cpu_count() or 1))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        source = model.SerializeToString() if model is not None else str(path)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelUnavailable(f"backbone encoder model {path} is unreadable (corrupt or not ONNX): {exc}") from None


class BackboneEncoder(VisualEncoder):
    """Pretrained backbone + trained head, run by onnxruntime."""

    name = "backbone"

    def __init__(self, model: str | os.PathLike | None = None, batch_size: int = 32, threads: int | None = None,
                 chunk: int | None = CHUNK, rewrite_pooling: bool = True) -> None:
        """``threads``: how many threads one call computes on (default: 2, or the machine's cores if fewer).
        ``chunk``: drawings per network run, each run on one thread, ``threads`` runs at once (None: the
        whole batch in one run on ``threads`` threads, as before stop 19). ``rewrite_pooling``: open the
        model with ``pooling_rewritten`` (when ``onnx`` is installed)."""
        from figsearch.fsutil import sha256_file

        path = Path(model) if model else default_model_path()
        if model and not path.is_file() and path.name == str(model):
            # a bare file name names a model shipped in the package ("backbone:drawing-backbone2.onnx",
            # the default visual encoder), so a collection's stored spec works on every installation
            packaged = Path(str(resources.files("figsearch") / "models" / path.name))
            if packaged.is_file():
                path = packaged
        if not path.is_file():
            raise ModelUnavailable(
                f"backbone encoder model {path} not found; train one with "
                "`figsearch train-encoder --arch backbone --collection DIR --out MODEL.onnx` and pass it as model=MODEL.onnx"
                + ("" if model else " (this installation lacks the shipped model)")
            )
        self.path = path
        loaded = _load_model(path)
        self.meta = read_metadata(path, loaded)
        self.threads = int(threads or min(2, os.cpu_count() or 1))
        self.chunk = int(chunk) if chunk else None
        self.workers = self.threads if self.chunk else 1
        self.rewritten_poolings = pooling_rewritten(loaded) if rewrite_pooling and loaded is not None else 0
        self.session = _session(path, 1 if self.workers > 1 else self.threads, loaded if self.rewritten_poolings else None)
        del loaded
        self._pool = None
        self.image_size = int(self.meta["image_size"])
        self.dim = int(self.meta["dim"])
        self.batch_size = batch_size
        self._digest = sha256_file(path)[:16]
        self._input = self.session.get_inputs()[0].name
        self._text_adapter = None

    @property
    def identity(self) -> dict:
        identity = {
            "name": self.name,
            "dim": self.dim,
            "model_sha256": self._digest,
            "backbone": self.meta.get("backbone"),
            "image_size": self.image_size,
            "preprocess": "strip-header,trim,pad,resize",
        }
        if self.meta.get("levels", ["f18"]) != ["f18"]:  # multi-level pooling (the first model has none)
            identity["levels"] = list(self.meta["levels"])
        return with_sheet_context(identity, self.sheet_context)

    @property
    def record(self) -> dict:
        return self.meta.get("record", {})

    def prepare(self, image) -> np.ndarray:
        # prepare_grey's pixels, by prepare_turns' shorter path (a 1600 px grant sheet: 3.8 instead of 5.1 CPU ms)
        return prepare_turns(image, (0,), self.image_size)[0]

    def _run(self, grey: np.ndarray) -> np.ndarray:
        """(B, S, S) uint8 prepared drawings -> (B, dim) vectors, not normalised: one network run."""
        batch = np.ascontiguousarray(grey, dtype=np.float32)[:, None]
        return self.session.run(None, {self._input: batch})[0]

    def _chunked(self, work, items: Sequence) -> np.ndarray:
        """``work`` (chunk of ``items`` -> vectors) over the chunks, ``workers`` at once."""
        size = self.chunk or len(items)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        if self.workers > 1 and len(chunks) > 1:
            if self._pool is None or self._pool[0] != os.getpid():
                # a new pool in a forked child: the parent's worker threads do not exist there
                from concurrent.futures import ThreadPoolExecutor

                self._pool = (os.getpid(), ThreadPoolExecutor(self.workers, thread_name_prefix="backbone"))
            return np.concatenate(list(self._pool[1].map(work, chunks)))
        return np.concatenate([work(chunk) for chunk in chunks])

    def encode_prepared(self, grey: np.ndarray) -> np.ndarray:
        """(B, S, S) uint8 prepared drawings -> (B, dim) unit vectors."""
        return l2_normalise(self._chunked(self._run, grey))

    def _encode_batch(self, images: Sequence) -> np.ndarray:
        # each worker prepares its own chunk (one thread each) and runs it
        return l2_normalise(self._chunked(lambda chunk: self._run(np.stack([self.prepare(image) for image in chunk])),
                                          list(images)))

    #: ``encode_turns`` may be called from several threads at once: preparing is pure, and one
    #: onnxruntime session runs concurrent ``run`` calls (a server's upload threads need no lock)
    thread_safe = True

    def encode_turns(self, image, angles: Sequence[int]) -> np.ndarray:
        """One drawing in several turns (``Image.rotate(angle, expand=True)``), one batch: the same
        vectors as ``encode([image.rotate(a, expand=True, fillcolor=255) for a in angles])``, for
        less preparation (``prepare_turns``)."""
        prepared = prepare_turns(image, angles, self.image_size)
        # normalised once more, as VisualEncoder.encode does, so that the vectors are the same to the bit
        return l2_normalise(np.concatenate([self.encode_prepared(prepared[i : i + self.batch_size])
                                            for i in range(0, len(prepared), self.batch_size)]))

    # -- words -> drawings -----------------------------------------------------------------------

    @property
    def text_model(self) -> str | None:
        return (self.meta.get("text_adapter") or {}).get("text_model")

    def text_vectors(self, sentence_vectors: np.ndarray) -> np.ndarray:
        """Sentence vectors of the adapter's text model -> unit vectors in the drawing space."""
        adapter = self.meta.get("text_adapter")
        if not adapter:
            raise ModelUnavailable(f"backbone encoder model {self.path} was trained without text alignment")
        if self._text_adapter is None:
            self._text_adapter = (unpack_array(adapter["weight"]), unpack_array(adapter["bias"]))
        weight, bias = self._text_adapter
        return l2_normalise(np.asarray(sentence_vectors, dtype=np.float32) @ weight.T + bias)

    def encode_text_query(self, texts: Sequence[str], text_encoder=None) -> np.ndarray:
        """Words -> vectors comparable with this encoder's drawing vectors (search a visual index with them)."""
        if text_encoder is None:
            from figsearch.embed.catalog import create_text

            text_encoder = create_text(self.text_model or "minilm")
        return self.text_vectors(text_encoder.encode(list(texts)))


@VISUAL_ENCODERS.register(
    "backbone", help="pretrained MobileNetV2 + head trained on patent drawings and their text (ONNX; model=PATH for your own)"
)
def create_backbone_encoder(**options) -> BackboneEncoder:
    return BackboneEncoder(**options)
