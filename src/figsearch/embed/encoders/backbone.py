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

Inference needs onnxruntime only (no torch): batched, a few ms per drawing.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from figsearch.embed.base import VISUAL_ENCODERS, VisualEncoder, l2_normalise
from figsearch.errors import ModelUnavailable

log = logging.getLogger(__name__)

DEFAULT_MODEL = "drawing-backbone.onnx"
FORMAT = "figsearch-backbone-encoder"
FORMAT_VERSION = 1
METADATA_KEY = "figsearch"


def default_model_path() -> Path:
    return Path(str(resources.files("figsearch") / "models" / DEFAULT_MODEL))


def prepare_grey(image, size: int) -> np.ndarray:
    """One drawing as the network sees it: (size, size) uint8 grey, paper white. The same for
    ingest, queries and training: the running header of PDF sheets whitened, margins trimmed,
    padded (not stretched) to a square, resized."""
    from figsearch.embed.preprocess import prepare_drawing
    from figsearch.embed.preprocess import strip_running_header

    return np.asarray(prepare_drawing(strip_running_header(image.convert("L")), size), dtype=np.uint8)


def pack_array(array: np.ndarray) -> dict:
    array = np.ascontiguousarray(array, dtype=np.float32)
    return {"shape": list(array.shape), "float32_b64": base64.b64encode(array.tobytes()).decode("ascii")}


def unpack_array(packed: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed["float32_b64"]), dtype=np.float32).reshape(packed["shape"]).copy()


def read_metadata(path: Path) -> dict:
    """The ``figsearch`` metadata of a backbone model file; ModelUnavailable naming the file if it is not one."""
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and others for a damaged file
            raise ModelUnavailable(f"backbone encoder model {path} is unreadable (corrupt or not ONNX): {exc}") from None
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


def _session(path: Path, threads: int | None):
    from figsearch.extras import require

    ort = require("onnxruntime", "the backbone drawing encoder")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or min(2, os.cpu_count() or 1))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelUnavailable(f"backbone encoder model {path} is unreadable (corrupt or not ONNX): {exc}") from None


class BackboneEncoder(VisualEncoder):
    """Pretrained backbone + trained head, run by onnxruntime."""

    name = "backbone"

    def __init__(self, model: str | os.PathLike | None = None, batch_size: int = 32, threads: int | None = None) -> None:
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
        self.meta = read_metadata(path)
        self.session = _session(path, threads)
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
        return identity

    @property
    def record(self) -> dict:
        return self.meta.get("record", {})

    def prepare(self, image) -> np.ndarray:
        return prepare_grey(image, self.image_size)

    def encode_prepared(self, grey: np.ndarray) -> np.ndarray:
        """(B, S, S) uint8 prepared drawings -> (B, dim) unit vectors."""
        batch = np.ascontiguousarray(grey, dtype=np.float32)[:, None]
        return l2_normalise(self.session.run(None, {self._input: batch})[0])

    def _encode_batch(self, images: Sequence) -> np.ndarray:
        return self.encode_prepared(np.stack([self.prepare(image) for image in images]))

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
