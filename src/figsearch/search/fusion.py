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
- ``text_weight`` w, when given, replaces the mode's rule by (1 − w)·v + w·t, missing = 0 as avg.

Ties (equal to 1e-9) are broken by figure id, so rankings are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RRF_K = 60
SINGLE = ("visual", "text")


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
) -> list[Fused]:
    """Fuse per-modality candidate lists; ``exact[modality][figure]`` fills scores missing from a list."""
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
        elif mode == "rrf":
            score = sum(1.0 / (rrf_k + r[figure_id]) for r in ranks.values() if figure_id in r)
        else:
            raise ValueError(f"unknown fusion mode {mode!r}")
        fused.append(Fused(figure_id, float(score), scores))
    # scores equal to 1e-9 tie (float sums differ in the last bits), then the figure id decides
    fused.sort(key=lambda f: (-round(f.score, 9), f.figure_id))
    return fused

