"""Seeded simulations: the verdict stays honest however often people look.

Each look is one more call of the calculator on the cumulative totals. The
simulations run the same vectorised rule that compare() applies
(sequential_p_values plus the minimum-clicks gate); test_verdict_matches_rule
checks that compare_from_json gives exactly those verdicts.
"""

from __future__ import annotations

import numpy as np
import pytest

from campaign.analysis import compare_from_json
from campaign.analysis.sequential import MIN_CLICKS_TO_DECIDE, sequential_p_values

ALPHA = 0.05
REPS = 20_000


def _paths(
    rng: np.random.Generator, rates: list[float], looks: list[int], reps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative clicks (arms × reps × looks) and impressions per arm at each look."""
    n = np.array(looks)
    steps = np.diff(n, prepend=0)
    clicks = np.stack(
        [np.cumsum(rng.binomial(steps[None, :], p, size=(reps, len(looks))), axis=1) for p in rates]
    )
    return clicks, n


def _called(xc: np.ndarray, xt: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """+1 better, −1 worse, 0 undecided, given (already adjusted) sequential p-values."""
    diff = xt - xc
    decided = (p <= ALPHA) & (xc + xt >= MIN_CLICKS_TO_DECIDE) & (diff != 0)
    return np.where(decided, np.sign(diff), 0)


SCENARIOS = {
    "3pct_looks_of_2000": (0.03, [2_000 * k for k in range(1, 11)]),
    "2pct_looks_of_300": (0.02, [300 * k for k in range(1, 11)]),
    "1pct_doubling_looks": (0.01, [500 * 2**k for k in range(10)]),
    "half_pct_looks_of_5000": (0.005, [5_000 * k for k in range(1, 11)]),
}


@pytest.mark.parametrize("rate,looks", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_no_true_difference_calls_a_winner_at_most_5_percent_over_10_looks(
    rate: float, looks: list[int]
) -> None:
    clicks, n = _paths(np.random.default_rng(20240601), [rate, rate], looks, REPS)
    p = sequential_p_values(clicks[0], n, clicks[1], n)
    ever = (_called(clicks[0], clicks[1], n, p) != 0).any(axis=1).mean()
    assert ever <= 0.05


def test_peeking_with_an_ordinary_z_test_would_fail_the_same_check() -> None:
    # The simulation can tell an unsafe rule apart: the fixed-sample z-test, checked
    # at every look, calls far more false winners than 5 %.
    clicks, n = _paths(
        np.random.default_rng(20240601), [0.03, 0.03], SCENARIOS["3pct_looks_of_2000"][1], REPS
    )
    pooled = (clicks[0] + clicks[1]) / (2 * n)
    z = (clicks[1] - clicks[0]) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    assert (np.abs(z) >= 1.959963984540054).any(axis=1).mean() > 0.15


def test_three_arms_with_holm_keep_the_family_wise_rate_under_5_percent() -> None:
    looks = SCENARIOS["3pct_looks_of_2000"][1]
    clicks, n = _paths(np.random.default_rng(7), [0.03] * 3, looks, REPS)
    p1 = sequential_p_values(clicks[0], n, clicks[1], n)
    p2 = sequential_p_values(clicks[0], n, clicks[2], n)
    # Holm for two: the smaller p against α/2, then the larger against α.
    small, large = np.minimum(p1, p2), np.maximum(p1, p2)
    adj_small = np.minimum(1, 2 * small)
    adj_large = np.maximum(adj_small, large)
    a1 = np.where(p1 <= p2, adj_small, adj_large)
    a2 = np.where(p1 <= p2, adj_large, adj_small)
    any_call = (_called(clicks[0], clicks[1], n, a1) != 0) | (
        _called(clicks[0], clicks[2], n, a2) != 0
    )
    assert any_call.any(axis=1).mean() <= 0.05


def test_a_50_percent_lift_at_3_percent_is_called_better_at_20000_per_arm() -> None:
    looks = SCENARIOS["3pct_looks_of_2000"][1]
    clicks, n = _paths(np.random.default_rng(99), [0.03, 0.045], looks, REPS)
    p = sequential_p_values(clicks[0], n, clicks[1], n)
    calls = _called(clicks[0], clicks[1], n, p)
    assert (calls[:, -1] == 1).mean() >= 0.80
    # And a winner is never the wrong way round here.
    assert (calls == -1).sum() == 0


def test_a_single_final_look_alone_also_reaches_the_power() -> None:
    clicks, n = _paths(np.random.default_rng(5), [0.03, 0.045], [20_000], REPS)
    p = sequential_p_values(clicks[0], n, clicks[1], n)
    assert (_called(clicks[0], clicks[1], n, p)[:, -1] == 1).mean() >= 0.80


def test_verdict_matches_rule() -> None:
    rng = np.random.default_rng(11)
    looks = SCENARIOS["3pct_looks_of_2000"][1]
    checked = {"called": 0, "not": 0}
    for rates in ([0.03, 0.03], [0.03, 0.039], [0.03, 0.045], [0.03, 0.022]):
        clicks, n = _paths(rng, rates, looks, 40)
        p = sequential_p_values(clicks[0], n, clicks[1], n)
        calls = _called(clicks[0], clicks[1], n, p)
        for rep in range(40):
            look = int(rng.integers(len(looks)))
            out = compare_from_json(
                {
                    "arms": [
                        {
                            "name": "control",
                            "clicks": int(clicks[0, rep, look]),
                            "impressions": looks[look],
                        },
                        {
                            "name": "arm",
                            "clicks": int(clicks[1, rep, look]),
                            "impressions": looks[look],
                        },
                    ]
                }
            )
            expected = {1: "better", -1: "worse"}.get(int(calls[rep, look]))
            verdict = out["verdict"]
            if expected:
                checked["called"] += 1
                assert verdict == expected
            else:
                checked["not"] += 1
                assert verdict in ("not_enough_data", "no_clear_difference")
            assert out["comparisons"][0]["p_value_sequential"] == pytest.approx(
                p[rep, look], rel=1e-12
            )
    assert checked["called"] > 20 and checked["not"] > 20
