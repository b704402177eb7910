"""Sheet context: the stored vector of a figure cut from a drawing sheet, mixed with its sheet's.

A sheet that holds several labelled figures is cut into them (``figsearch.ocr.split``). Each cut
figure is then a smaller drawing than the whole sheets the encoder was trained on, and it is found
less often, as a query and as a target (stop 27, docs/encoder.md). A cut figure is still part of its
sheet, of its patent: its *stored* vector is ``normalise(v_figure + beta * v_sheet)``, the sheet's
own vector encoded by the same encoder. A query image is never mixed (an upload is encoded as it
is); a query by a cut figure of the collection uses its stored, mixed vector.

Asked for by the encoder specification, as masking is (``embed.masked``): ``SPEC@sheet=BETA``
(``backbone:drawing-backbone5-lite0-288.onnx@sheet=1``). The encoder's identity gains
``"sheet_context": BETA``, so its key changes and an index of plain vectors is never mixed with
mixed ones. The mixing itself is a step of the visual embedding (``pipeline.embed.mix_sheet_context``)
after the figures are encoded, whichever path encoded them; the overlapped build's stream mixes as it
stores, from the sheet it decoded to cut it (``pipeline.overlapped._Writer._mixed_rows``), and leaves
that step nothing to do.
"""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np

from figsearch.errors import InputError

#: separates an encoder specification from its sheet-context weight: ``SPEC@sheet=1``
SHEET_MARK = "@sheet="
_SHEET = re.compile(r"@sheet=([^@]*)")


def split_sheet_context(spec: str) -> tuple[str, float]:
    """``"backbone:m.onnx@sheet=1"`` -> ("backbone:m.onnx", 1.0); no mark -> (spec, 0.0).
    The mark may stand before or after a mask (``@mask=labels``)."""
    found = _SHEET.findall(spec)
    if not found:
        return spec, 0.0
    if len(found) > 1:
        raise InputError(f"visual encoder {spec!r}: {SHEET_MARK} given {len(found)} times; give it once")
    try:
        beta = float(found[0])
    except ValueError:
        raise InputError(f"visual encoder {spec!r}: {SHEET_MARK}{found[0]} is not a number "
                         f"(the sheet's weight in a cut figure's vector, e.g. {SHEET_MARK}1)") from None
    if not math.isfinite(beta) or beta < 0:
        raise InputError(f"visual encoder {spec!r}: the sheet's weight {found[0]} must be a number >= 0")
    return _SHEET.sub("", spec), beta


def sheet_context_spec(spec: str, beta: float) -> str:
    """``spec`` with its sheet context set to ``beta`` (0: none)."""
    base, _ = split_sheet_context(spec)
    return f"{base}{SHEET_MARK}{beta:g}" if beta else base


def with_sheet_context(identity: dict, beta: float) -> dict:
    """An encoder's identity with its sheet context recorded (none when ``beta`` is 0: the same key as before)."""
    return {**identity, "sheet_context": float(beta)} if beta else identity


def sheet_context_of(encoder) -> float:
    """The sheet context an encoder (or the identity a Ray build's stand-in records) asks for; 0 for none."""
    return float(encoder.identity.get("sheet_context") or 0.0)


def mix(figures: np.ndarray, sheets: np.ndarray, beta: float) -> np.ndarray:
    """(n, d) unit vectors of cut figures mixed with their sheets' (row by row): normalise(f + beta * s)."""
    mixed = np.asarray(figures, dtype=np.float32) + np.float32(beta) * np.asarray(sheets, dtype=np.float32)
    norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    return (mixed / np.maximum(norms, 1e-12)).astype(np.float32)


def context_digest(figure_digest: str, sheet_digest: str, beta: float) -> str:
    """The input digest stored with a mixed vector: it changes with the figure's pixels, its sheet's, or beta."""
    return hashlib.sha256(f"{figure_digest}\x1fsheet {sheet_digest}\x1f{beta:g}".encode()).hexdigest()
