"""Thompson sampling over framings, with a floor so that no framing starves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from campaign.analysis.bayes import BetaPosterior, best_arm
from campaign.analysis.validate import AnalysisInputError

DEFAULT_FLOOR = 0.1


@dataclass(frozen=True)
class FramingCounts:
    """Clicks and impressions so far for one framing of a recurring message type."""

    name: str
    clicks: int
    impressions: int


@dataclass(frozen=True)
class Allocation:
    """Long-run share of posts per framing, the suggested next framing, and why."""

    shares: dict[str, float]
    prob_best: dict[str, float]
    next_framing: str
    explanation: str


def thompson_allocation(
    framings: Sequence[FramingCounts],
    rng: np.random.Generator | int,
    floor: float = DEFAULT_FLOOR,
) -> Allocation:
    """Share = floor + (1 − K·floor)·P(best); the next framing is one Thompson draw.

    P(best) is exact (quadrature): it is the share plain Thompson sampling gives
    each framing over many posts. The floor mixes in uniform exploration, so every
    framing keeps at least `floor` of the posts. This is a suggestion for what to
    post next, never a verdict.
    """
    k = len(framings)
    if not 1 <= k <= 8:
        raise AnalysisInputError("framings", "must have 1 to 8 framings")
    if not 0 <= floor <= 1 / k:
        raise AnalysisInputError("floor", f"must be from 0 to 1/{k}")
    for i, f in enumerate(framings):
        if not 0 <= f.clicks <= f.impressions:
            raise AnalysisInputError(f"framings[{i}].clicks", "must be from 0 to impressions")
    generator = np.random.default_rng(rng) if isinstance(rng, int) else rng
    posteriors = [BetaPosterior.from_counts(f.clicks, f.impressions) for f in framings]
    prob_best = best_arm(posteriors).prob_best
    shares = [floor + (1 - k * floor) * p for p in prob_best]
    if generator.random() < k * floor:
        choice = int(generator.integers(k))
    else:
        draws = [generator.beta(p.alpha, p.beta) for p in posteriors]
        choice = int(np.argmax(draws))
    names = [f.name for f in framings]
    split = ", ".join(
        f"{n} {s:.0%}" for n, s in sorted(zip(names, shares, strict=True), key=lambda x: -x[1])
    )
    explanation = (
        f"Suggested next: '{names[choice]}', picked at random in proportion to how likely "
        f"each framing is to be best (so partly to keep learning); long-run split {split}, "
        f"with every framing kept at {floor:.0%} or more."
    )
    return Allocation(
        dict(zip(names, shares, strict=True)),
        dict(zip(names, prob_best, strict=True)),
        names[choice],
        explanation,
    )
