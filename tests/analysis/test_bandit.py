"""Thompson sampling with a floor."""

from __future__ import annotations

import numpy as np
import pytest

from campaign.analysis import AnalysisInputError, FramingCounts, thompson_allocation
from tests.analysis.reference import quad_prob_best

FRAMINGS = [
    FramingCounts("bare link", 12, 900),
    FramingCounts("context", 30, 950),
    FramingCounts("question", 20, 880),
]


def test_allocation_is_floor_plus_the_rest_in_proportion_to_prob_best() -> None:
    result = thompson_allocation(FRAMINGS, rng=1, floor=0.1)
    counts = [(f.clicks, f.impressions) for f in FRAMINGS]
    for i, f in enumerate(FRAMINGS):
        assert result.prob_best[f.name] == pytest.approx(quad_prob_best(counts, i), abs=1e-9)
        assert result.shares[f.name] == pytest.approx(
            0.1 + 0.7 * result.prob_best[f.name], abs=1e-12
        )
    assert sum(result.shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert min(result.shares.values()) >= 0.1


def test_no_framing_starves_even_when_one_is_far_ahead() -> None:
    framings = [FramingCounts("a", 5, 5000), FramingCounts("b", 400, 5000)]
    result = thompson_allocation(framings, rng=np.random.default_rng(0), floor=0.15)
    assert result.shares["a"] == pytest.approx(0.15, abs=1e-9)
    assert result.shares["b"] == pytest.approx(0.85, abs=1e-9)


def test_seeded_suggestions_are_reproducible_and_follow_the_shares() -> None:
    assert (
        thompson_allocation(FRAMINGS, rng=42).next_framing
        == thompson_allocation(FRAMINGS, rng=42).next_framing
    )
    rng = np.random.default_rng(2024)
    draws = 3000
    picks = [thompson_allocation(FRAMINGS, rng=rng).next_framing for _ in range(draws)]
    shares = thompson_allocation(FRAMINGS, rng=0).shares
    for name, share in shares.items():
        observed = picks.count(name) / draws
        assert abs(observed - share) <= 4 * np.sqrt(share * (1 - share) / draws)


def test_explanation_is_one_line_and_not_a_verdict() -> None:
    result = thompson_allocation(FRAMINGS, rng=3)
    assert "\n" not in result.explanation
    assert result.next_framing in result.explanation and "keep learning" in result.explanation


@pytest.mark.parametrize("floor", [-0.1, 0.34])
def test_floor_must_leave_room_for_every_framing(floor: float) -> None:
    with pytest.raises(AnalysisInputError) as caught:
        thompson_allocation(FRAMINGS, rng=0, floor=floor)
    assert caught.value.field == "floor"
