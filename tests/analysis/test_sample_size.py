"""Sample sizes: Evan Miller's table (stats.md §4.7) and the sequential planner."""

from __future__ import annotations

import numpy as np
import pytest

from campaign.analysis import compare_from_json
from campaign.analysis.sample_size import required_impressions
from campaign.analysis.sequential import (
    MIN_CLICKS_TO_DECIDE,
    sequential_p_values,
    sequential_sample_size,
)

# stats.md §4.7, copied from the research note (computed there independently).
TABLE = {
    0.005: (80_390, 13_391, 3_556),
    0.01: (39_986, 6_659, 1_767),
    0.02: (19_785, 3_293, 873),
    0.05: (7_664, 1_273, 336),
    0.10: (3_623, 600, 157),
}


@pytest.mark.parametrize("baseline,row", TABLE.items(), ids=[f"{b:.1%}" for b in TABLE])
def test_required_impressions_reproduce_the_research_table(baseline: float, row: tuple) -> None:
    assert tuple(required_impressions(baseline, lift) for lift in (0.2, 0.5, 1.0)) == row


def test_required_impressions_use_the_observed_lift() -> None:
    out = compare_from_json(
        {
            "arms": [
                {"name": "a", "clicks": 200, "impressions": 10_000},
                {"name": "b", "clicks": 300, "impressions": 10_000},
            ]
        }
    )
    # Baseline 2 % with an observed +50 % lift is the table's 3,293.
    assert out["required_impressions_per_arm"] == 3_293
    assert out["comparisons"][0]["planning_lift"] == pytest.approx(0.5)


@pytest.mark.parametrize("arm_clicks", [200, 150], ids=["no_lift", "negative_lift"])
def test_required_impressions_fall_back_to_a_50_percent_lift(arm_clicks: int) -> None:
    out = compare_from_json(
        {
            "arms": [
                {"name": "a", "clicks": 200, "impressions": 10_000},
                {"name": "b", "clicks": arm_clicks, "impressions": 10_000},
            ]
        }
    )
    assert out["required_impressions_per_arm"] == 3_293


def test_required_impressions_are_null_with_a_reason_when_nothing_clicked() -> None:
    out = compare_from_json(
        {
            "arms": [
                {"name": "a", "clicks": 0, "impressions": 50},
                {"name": "b", "clicks": 0, "impressions": 40},
            ]
        }
    )
    assert out["required_impressions_per_arm"] is None
    assert "sample size needed is unknown" in out["summary"]


def test_sequential_sample_size_delivers_its_power_in_simulation() -> None:
    baseline, lift = 0.02, 0.5
    n = sequential_sample_size(baseline, lift)
    assert n is not None and n > required_impressions(baseline, lift)
    rng = np.random.default_rng(3)
    xc = rng.binomial(n, baseline, 20_000)
    xt = rng.binomial(n, baseline * (1 + lift), 20_000)
    p = sequential_p_values(xc, n, xt, n)
    power = ((p <= 0.05) & (xt > xc) & (xc + xt >= MIN_CLICKS_TO_DECIDE)).mean()
    # The planner is a normal approximation for a single look: it should land near 80 %.
    assert 0.77 <= power <= 0.86
