"""Fusing the visual and the text candidate lists into one ranking.

Inputs are, per modality, a candidate list (figure id, cosine) best first, plus for every
figure in the union of the lists its exact cosine in each modality where the figure *has* a
vector of that modality (the service looks missing ones up in the stored vectors, so falling
just outside one list changes nothing). Rules, with v and t a figure's visual and text cosines:

- ``visual`` / ``text``: that modality's cosine; figures without that vector are not ranked.
- ``avg``: (v + t) / 2 over the union of both lists. A figure with no vector of a modality (a
  drawing without any text) scores 0 for it — cosine 0 means "no evidence", so a figure
  explained by both drawing and text is preferred to one that cannot be.
- ``max``: max(v, t) over the union; a modality the figure has no vector of is left out
  (so a text-less drawing scores v).
- ``rrf`` (reciprocal rank fusion, Cormack et al. 2009): Σ 1 / (RRF_K + rank) over the lists in
  which the figure appears, rank 1-based in each list; absent from a list, it adds 0 for it.
- ``zavg``: the mean of the two *standardised* scores, (z_v + z_t) / 2, where a modality's z is
  (cosine − mean) / std over that modality's candidate list for this query: the two cosine
  scales (a drawing encoder's 0.8 is not a sentence encoder's 0.8) are made comparable per query.
  A figure with no vector of a modality gets that list's lowest z (ranked as the list's last).
- ``auto``: z-scores weighted per query by how informative each modality is for *this* query.
  A modality's weight starts as max(0, g)^GAP_POWER, g its gap: the mean z of its first GAP_TOP
  candidates (how far its best candidates stand out of its list). The text channel, when the query
  has one, is the anchor (PRIMARY); the visual channel's weight is further multiplied by the
  *agreement* of the two lists, the share of their first AGREE_TOP candidates that they have in
  common (^AGREE_POWER). Visual evidence thus counts as much as the text corroborates it: where the
  drawings' nearest neighbours are near chance for the question asked (drawings of the same kind of
  product, measured at class level), the lists hardly overlap and ``auto`` stays with the text;
  where both find the same figures (the other sheets of a patent), it is close to ``zavg``. A query
  with one modality only is ranked by that modality. When no gap is positive the gap weights are
  equal. The constants were chosen on training-side data only (docs/evaluation.md).

  Calibrated by the visual encoder (``near_thresholds``, from ``fusion_calibration.json``): z-scores
  forget how *near* the best candidates are, and a cosine's meaning depends on the encoder. The
  visual head's *nearness* h = (mean cosine of its first NEAR_TOP candidates − the list's mean
  cosine) / (1 − the list's mean cosine) says how far of the way from the list's background to an
  identical drawing its best candidates stand. Per encoder, two thresholds fitted on training-side
  collections: h ≥ ``near`` (the other sheets of the same design: near-copies) and ``auto`` ranks as
  ``avg``, both channels on their own cosine scales, which the z-scores flatten; h < ``far`` (no
  nearer than that encoder's neighbours of merely the same kind of product, where it measured near
  chance) and ``auto`` ranks by the text's z-score alone; in between, the rule above. An encoder
  without an entry (or a threshold of None) keeps the rule above for that side. Since stop 20 an entry
  may also require corroboration for the switch to ``avg`` (``near_agree`` a): a near visual head counts
  as near-copies only when the two lists' agreement (their first AGREE_TOP) is at least a. The other
  sheets of the query's design share its title and are found by the text too; a drawing that is merely
  of the same kind of product, and unseen in the encoder's training, can look as near without the text
  agreeing, and ``avg`` then lets it outrank the text's hits (measured at class level, stop 20). When the
  visual list was re-ranked (``auto`` re-ranks by default since stop 22), the switch reads the head and the
  agreement of the lists *before* re-ranking (``switch_head``, passed as ``head``): α-query expansion raises
  the head's scores, and the thresholds are nearness of plain cosines (the calibration replays it so).
  **A query by words alone** (no drawing, no figure) has a visual list too: its words mapped into the drawing space
  by the visual encoder's text adapter. Its nearness and its agreement with the text mean something else than a
  drawing's: the encoder's thresholds, chosen on drawing queries, put it below the text (stop 28: the glossary names).
  Since stop 29 such a query is ranked with WORDS_THRESHOLDS instead (the search service passes them): no switch to
  ``avg``; the text alone (its z-score) when the words' head is not near (h < ``far``, 0.45); otherwise the rule
  above with the visual weight multiplied by the agreement squared (``agree_power`` 2), so that a words' list the
  text hardly corroborates counts less. Chosen on training-side word sets (docs/evaluation.md, "Stop 29").
- ``text_weight`` w, when given, replaces the mode's rule by (1 − w)·v + w·t, missing = 0 as avg.

Ties (equal to 1e-9) are broken by figure id, so rankings are deterministic.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

RRF_K = 60
SINGLE = ("visual", "text")
#: every rule :func:`fuse` knows (figsearch.search.query.MODES lists the ones offered to users)
MODES = ("visual", "text", "avg", "max", "rrf", "zavg", "auto")
#: ``auto``: a modality's gap is the mean z-score of its first GAP_TOP candidates ...
GAP_TOP = 3
#: ... and its weight grows as gap ** GAP_POWER
GAP_POWER = 2.0
#: ``auto``: the non-primary modality's weight is also multiplied by agreement ** AGREE_POWER, the share
#: of the first AGREE_TOP candidates that both lists have in common
AGREE_TOP = 20
AGREE_POWER = 1.0
#: ``auto``: the modality that keeps its gap weight (None: the one with the larger gap)
PRIMARY = "text"
#: a list whose scores spread less than this (all equal) standardises to z = 0
MIN_STD = 1e-6
#: ``auto``: the visual head's nearness is measured over its first NEAR_TOP candidates
NEAR_TOP = 3
#: ``auto``: a near visual head switches to ``avg`` only when the lists' agreement (first AGREE_TOP) is at
#: least the encoder's ``near_agree`` (calibrated; this default for entries without one keeps the switch on h alone)
NEAR_AGREE = 0.0
#: ``auto`` for a query by words alone (its visual list: the words in the drawing space), in place of the visual
#: encoder's entry: chosen on training-side word sets for the shipped text adapter (stop 29, docs/evaluation.md)
WORDS_THRESHOLDS = {"near": None, "far": 0.45, "agree_power": 2.0}
#: per visual encoder name, the nearness thresholds {"near": h, "far": h, "near_agree": a} (docs/evaluation.md)
CALIBRATION_FILE = Path(__file__).with_name("fusion_calibration.json")


@dataclass
class Fused:
    figure_id: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)


def fuse(
    lists: dict[str, list[tuple[str, float]]],
    exact: dict[str, dict[str, float]] | None = None,
    *,
    mode: str,
    text_weight: float | None = None,
    rrf_k: int = RRF_K,
    gap_top: int = GAP_TOP,
    gap_power: float = GAP_POWER,
    agree_top: int = AGREE_TOP,
    agree_power: float = AGREE_POWER,
    primary: str | None = PRIMARY,
    near: float | None = None,
    far: float | None = None,
    near_top: int = NEAR_TOP,
    near_agree: float = NEAR_AGREE,
    head: tuple[float, float] | None = None,
    measure_depth: int | None = None,
) -> list[Fused]:
    """Fuse per-modality candidate lists; ``exact[modality][figure]`` fills scores missing from a list.

    ``near``/``far`` (mode ``auto``): the visual encoder's nearness thresholds (:func:`near_thresholds`);
    ``near_agree``: the agreement of the two lists that the switch to ``avg`` also needs. ``head``: the
    (nearness, agreement) that switch is decided on, when the lists were re-ranked (:func:`switch_head` of
    the lists before re-ranking); None: measured on ``lists``. ``measure_depth``: what the query-dependent rules
    read (z-scores' mean and spread, auto's gaps, agreement and nearness) is measured on each list's first
    ``measure_depth`` candidates (None: the whole list), so that a search's next page, which needs longer lists,
    scores every figure as its first page did (the page after next no longer repeated or skipped hits).
    """
    exact = exact or {}
    order: list[str] = []
    for modality in ("visual", "text"):
        for figure_id, _ in lists.get(modality, []):
            order.append(figure_id)
    union = list(dict.fromkeys(order))

    listed = {m: dict(c) for m, c in lists.items()}
    modalities = list(dict.fromkeys([*lists, *exact]))

    def scores_of(figure_id: str) -> dict[str, float]:
        found = {}
        for modality in modalities:
            value = listed.get(modality, {}).get(figure_id)
            if value is None:
                value = exact.get(modality, {}).get(figure_id)
            if value is not None:
                found[modality] = float(value)
        return found

    ranks = {m: {f: r for r, (f, _) in enumerate(c, start=1)} for m, c in lists.items()}
    measured = {m: c[:measure_depth] for m, c in lists.items()} if measure_depth else lists
    if mode == "auto" and text_weight is None and lists.get("visual") and lists.get("text"):
        h, agreed = head if head is not None else switch_head(measured, near_top, agree_top)
        if near is not None and h >= near and agreed >= near_agree:
            mode = "avg"
        elif far is not None and h < far:
            mode = "text-z"
    if mode in ("zavg", "auto", "text-z") and text_weight is None:
        stats = {m: standardiser(c) for m, c in measured.items() if c}
        if mode == "auto":
            weights = auto_weights(measured, stats, gap_top, gap_power, agree_top, agree_power, primary)
        elif mode == "text-z":
            weights = {m: float(m == "text") for m in stats}
        else:
            weights = {m: 1.0 for m in stats}
        total = sum(weights.values()) or 1.0
    fused = []
    for figure_id in union:
        scores = scores_of(figure_id)
        if text_weight is not None:
            score = (1 - text_weight) * scores.get("visual", 0.0) + text_weight * scores.get("text", 0.0)
        elif mode in SINGLE:
            if mode not in scores:
                continue
            score = scores[mode]
        elif mode == "avg":
            score = (scores.get("visual", 0.0) + scores.get("text", 0.0)) / 2
        elif mode == "max":
            score = max(scores.values())
        elif mode in ("zavg", "auto", "text-z"):
            score = 0.0
            for m, (centre, scale, lowest) in stats.items():
                z = (scores[m] - centre) / scale if m in scores else lowest
                score += weights[m] * z
            score /= total
        elif mode == "rrf":
            score = sum(1.0 / (rrf_k + r[figure_id]) for r in ranks.values() if figure_id in r)
        else:
            raise ValueError(f"unknown fusion mode {mode!r}")
        fused.append(Fused(figure_id, float(score), scores))
    # scores equal to 1e-9 tie (float sums differ in the last bits), then the figure id decides
    fused.sort(key=lambda f: (-round(f.score, 9), f.figure_id))
    return fused



def switch_head(lists: dict[str, list[tuple[str, float]]], near_top: int = NEAR_TOP,
                agree_top: int = AGREE_TOP) -> tuple[float, float]:
    """(nearness of the visual head, agreement of the two lists): what ``auto``'s calibrated switch reads.

    A search that re-ranks its visual list measures these *before* re-ranking and passes them to :func:`fuse`
    (``head``): α-QE raises a query's nearest scores, so the re-ranked head would look nearer than it is (stop 20:
    class-level ``auto`` fell below the text); the thresholds are nearness of plain cosines, and the calibration
    (benchmarks/fusion_tuning.py) replays the switch the same way (stop 22, docs/encoder.md)."""
    return nearness(lists.get("visual", []), near_top), agreement(lists, agree_top)


def nearness(candidates: list[tuple[str, float]], top: int = NEAR_TOP) -> float:
    """How far of the way from the list's mean cosine to 1 its first ``top`` candidates stand (0 when flat)."""
    values = [s for _, s in candidates]
    if not values:
        return 0.0
    centre = sum(values) / len(values)
    head = values[:top]
    room = 1.0 - centre
    return (sum(head) / len(head) - centre) / room if room > MIN_STD else 0.0


@lru_cache(maxsize=1)
def _calibration() -> dict:
    return json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))


def calibration_key(encoder: str, model_sha256: str | None = None, sheet_context: float = 0.0) -> str:
    """The calibration file's key of a visual encoder: ``NAME@DIGEST`` for one model file, else ``NAME``;
    ``NAME@DIGEST@sheet=BETA`` for that model's index of cut figures mixed with their sheets (stop 28)."""
    key = f"{encoder}@{model_sha256}" if model_sha256 else encoder
    return f"{key}@sheet={float(sheet_context):g}" if model_sha256 and sheet_context else key


def calibration_entry(encoder: str | None, model_sha256: str | None = None, sheet_context: float = 0.0) -> dict | None:
    """The calibration file's entry of a visual encoder: its model file's with this sheet context first (an index
    whose cut figures are mixed with their sheets, ``@sheet=BETA``), then the model file's, then the name's; or None."""
    encoders = _calibration().get("encoders", {})
    entry = None
    if encoder and model_sha256 and sheet_context:
        entry = encoders.get(calibration_key(encoder, model_sha256, sheet_context))
    if entry is None and encoder and model_sha256:
        entry = encoders.get(calibration_key(encoder, model_sha256))
    if entry is None:
        entry = encoders.get(encoder or "")
    return entry


def near_thresholds(encoder: str | None, model_sha256: str | None = None,
                    sheet_context: float = 0.0) -> dict[str, float | None]:
    """``{"near": h, "far": h, "near_agree": a}`` for a visual encoder (None each, and a = NEAR_AGREE, when it
    was not calibrated; a = NEAR_AGREE too for an entry written before stop 20, which had no ``near_agree``).

    An entry ``NAME@DIGEST`` holds for that model file only (cosine scales differ between models of one
    encoder: the two shipped ``backbone`` models), before an entry for every model of ``NAME``. An encoder
    without an entry falls back to the uncalibrated rule; for a model file :func:`calibration_note` says
    so, and the fallback is logged once per model. ``sheet_context``: the index's ``@sheet=`` weight (its
    identity's ``sheet_context``); an entry ``NAME@DIGEST@sheet=BETA`` holds for such an index only, and one
    without an entry of its own uses the model file's."""
    entry = calibration_entry(encoder, model_sha256, sheet_context)
    if entry is None:
        if encoder and model_sha256:
            _log_uncalibrated(encoder, model_sha256)
        entry = {}
    return {"near": entry.get("near"), "far": entry.get("far"), "near_agree": entry.get("near_agree", NEAR_AGREE)}


#: how to calibrate a model that has no entry (docs/evaluation.md, "Calibrating a new visual model")
CALIBRATE_COMMAND = "python benchmarks/fusion_tuning.py --calibrate --visual-model SPEC --write"


def calibration_note(encoder: str | None, model_sha256: str | None = None, sheet_context: float = 0.0) -> str | None:
    """A note for a search in mode ``auto`` whose visual *model file* has no calibration entry (None when it
    has one, and for encoders without a model file, ``hog`` or ``lines``, which use the uncalibrated rule
    by design)."""
    if not encoder or not model_sha256 or calibration_entry(encoder, model_sha256, sheet_context) is not None:
        return None
    return (f"auto: visual encoder {encoder} (model {model_sha256}) has no fusion calibration, the uncalibrated "
            f"rule is used; calibrate it on training-side data with `{CALIBRATE_COMMAND}`")


@lru_cache(maxsize=64)
def _log_uncalibrated(encoder: str, model_sha256: str | None) -> None:
    log.info("%s", calibration_note(encoder, model_sha256))


def standardiser(candidates: list[tuple[str, float]]) -> tuple[float, float, float]:
    """(mean, std, lowest z) of a candidate list's scores; std is at least MIN_STD."""
    values = [s for _, s in candidates]
    centre = sum(values) / len(values)
    spread = (sum((v - centre) ** 2 for v in values) / len(values)) ** 0.5
    scale = spread if spread > MIN_STD else 1.0
    return centre, scale, (min(values) - centre) / scale


def gap_weights(lists, stats, top: int, power: float) -> dict[str, float]:
    """Per modality, max(0, mean z of its first ``top`` candidates) ** power; equal when none is positive."""
    gaps = {}
    for m, (centre, scale, _) in stats.items():
        head = [s for _, s in lists[m][:top]]
        gaps[m] = max(0.0, (sum(head) / len(head) - centre) / scale) ** power
    if not any(gaps.values()):
        return {m: 1.0 for m in stats}
    return gaps


def agreement(lists, top: int) -> float:
    """The share of the first ``top`` candidates that the two lists have in common (0..1)."""
    heads = [{f for f, _ in c[:top]} for c in lists.values() if c]
    if len(heads) < 2:
        return 1.0
    return len(heads[0] & heads[1]) / max(1, min(top, *(len(h) for h in heads)))


def auto_weights(lists, stats, gap_top: int, gap_power: float, agree_top: int, agree_power: float,
                 primary: str | None = None) -> dict[str, float]:
    weights = gap_weights(lists, stats, gap_top, gap_power)
    if len(weights) == 2 and agree_power:
        if primary in weights:
            weaker = next(m for m in weights if m != primary)
        else:
            weaker = min(weights, key=lambda m: (weights[m], m))
        weights[weaker] *= agreement(lists, agree_top) ** agree_power
        if not any(weights.values()):
            weights[max(weights, key=lambda m: (weights[m], m))] = 1.0
    return weights
