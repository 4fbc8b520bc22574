"""compare_from_json against independent references (statsmodels, scipy, exact sums)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from campaign.analysis import compare_from_json
from tests.analysis.reference import miller_prob_beats, monte_carlo_best, quad_prob_best

Z = 1.959963984540054

# (control clicks, control impressions, arm clicks, arm impressions)
TWO_ARM_CASES = {
    "tiny": (3, 120, 7, 115),
    "tiny_single_digits": (1, 9, 2, 11),
    "zero_in_control": (0, 200, 5, 210),
    "zero_in_arm": (6, 180, 0, 190),
    "zero_in_both": (0, 80, 0, 80),
    "equal_arms": (30, 1000, 30, 1000),
    "large_lift": (10, 1000, 60, 1000),
    "unequal_sizes": (20, 5000, 9, 400),
    "all_clicked": (5, 5, 3, 4),
    "large_counts": (30_000, 1_000_000, 30_450, 1_000_000),
}


def _run(xc: int, nc: int, xt: int, nt: int) -> dict:
    return compare_from_json(
        {
            "arms": [
                {"name": "control", "impressions": nc, "clicks": xc},
                {"name": "arm", "impressions": nt, "clicks": xt},
            ]
        }
    )


@pytest.mark.parametrize("case", TWO_ARM_CASES.values(), ids=TWO_ARM_CASES.keys())
def test_wilson_intervals_match_statsmodels(case: tuple[int, int, int, int]) -> None:
    xc, nc, xt, nt = case
    out = _run(*case)
    for arm, (x, n) in zip(out["arms"], [(xc, nc), (xt, nt)], strict=True):
        expected = proportion_confint(x, n, alpha=0.05, method="wilson")
        assert arm["rate"] == pytest.approx(x / n, abs=1e-15)
        assert arm["wilson_95"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("case", TWO_ARM_CASES.values(), ids=TWO_ARM_CASES.keys())
def test_newcombe_difference_matches_statsmodels(case: tuple[int, int, int, int]) -> None:
    xc, nc, xt, nt = case
    c = _run(*case)["comparisons"][0]
    expected = confint_proportions_2indep(xt, nt, xc, nc, method="newcomb", compare="diff")
    assert c["diff"] == pytest.approx(xt / nt - xc / nc, abs=1e-15)
    assert c["diff_95"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("case", TWO_ARM_CASES.values(), ids=TWO_ARM_CASES.keys())
def test_pooled_z_test_matches_statsmodels_or_is_null_with_reason(
    case: tuple[int, int, int, int],
) -> None:
    xc, nc, xt, nt = case
    out = _run(*case)
    c = out["comparisons"][0]
    pooled = (xc + xt) / (nc + nt)
    if pooled in (0.0, 1.0):
        assert c["p_value"] is None and c["p_value_holm"] is None
        assert "p-value" in out["summary"]
    else:
        _, expected = proportions_ztest([xt, xc], [nt, nc])
        assert c["p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-300)
        assert c["p_value_holm"] == c["p_value"]


@pytest.mark.parametrize("case", TWO_ARM_CASES.values(), ids=TWO_ARM_CASES.keys())
def test_relative_lift_uses_log_risk_ratio_and_is_null_with_a_zero(
    case: tuple[int, int, int, int],
) -> None:
    xc, nc, xt, nt = case
    out = _run(*case)
    c = out["comparisons"][0]
    if xc == 0:
        assert c["relative_lift"] is None and c["relative_lift_95"] is None
        assert "relative lift is blank" in out["summary"]
        return
    assert c["relative_lift"] == pytest.approx((xt / nt) / (xc / nc) - 1, rel=1e-12)
    if xt == 0:
        assert c["relative_lift_95"] is None
        return
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="log", compare="ratio")
    assert c["relative_lift_95"] == pytest.approx([lo - 1, hi - 1], rel=1e-9)
    se = math.sqrt(1 / xt - 1 / nt + 1 / xc - 1 / nc)
    rr = (xt / nt) / (xc / nc)
    assert c["relative_lift_95"][0] == pytest.approx(rr * math.exp(-Z * se) - 1, rel=1e-9)


@pytest.mark.parametrize("case", TWO_ARM_CASES.values(), ids=TWO_ARM_CASES.keys())
def test_prob_beats_control_matches_millers_exact_sum(case: tuple[int, int, int, int]) -> None:
    xc, nc, xt, nt = case
    c = _run(*case)["comparisons"][0]
    exact = miller_prob_beats((xc, nc), (xt, nt))
    # At 10^6 impressions betaln's rounding makes the sum itself inexact; its own
    # inconsistency (P(A>B) + P(B>A) − 1) measures how far it can be trusted.
    own_error = abs(exact + miller_prob_beats((xt, nt), (xc, nc)) - 1)
    assert c["prob_beats_control"] == pytest.approx(exact, abs=max(1e-10, 2 * own_error))


def test_prob_beats_control_at_a_million_impressions_matches_scipy_quad() -> None:
    counts = [(30_000, 1_000_000), (30_450, 1_000_000)]
    c = _run(30_000, 1_000_000, 30_450, 1_000_000)["comparisons"][0]
    assert c["prob_beats_control"] == pytest.approx(quad_prob_best(counts, 1), abs=1e-10)


def test_prob_beats_control_reproduces_the_research_note() -> None:
    # stats.md §2.1: on 3/120 vs 7/115 the exact Beta-binomial probability is 0.905.
    c = _run(3, 120, 7, 115)["comparisons"][0]
    assert round(c["prob_beats_control"], 3) == 0.905


@pytest.mark.parametrize(
    "counts",
    [
        [(3, 120), (7, 115), (5, 118)],
        [(0, 50), (2, 60), (1, 40), (0, 10)],
        [(300, 10_000), (320, 10_000), (310, 9_000), (290, 11_000), (305, 10_500)],
        [(30_000 + 40 * i, 1_000_000) for i in range(8)],
    ],
    ids=["3_arms", "4_arms_with_zeros", "5_arms", "8_arms_at_10e6"],
)
def test_prob_best_and_expected_loss_match_monte_carlo(counts: list[tuple[int, int]]) -> None:
    draws = 1_000_000
    out = compare_from_json(
        {
            "arms": [
                {"name": f"a{i}", "clicks": x, "impressions": n} for i, (x, n) in enumerate(counts)
            ]
        }
    )
    best, loss = monte_carlo_best(counts, draws, seed=20240607)
    got = np.array([a["prob_best"] for a in out["arms"]])
    # Five Monte Carlo standard errors, plus a sliver for p near 0.
    tolerance = 5 * np.sqrt(best * (1 - best) / draws) + 1e-5
    assert np.all(np.abs(got - best) <= tolerance)
    assert sum(got) == pytest.approx(1.0, abs=1e-9)
    got_loss = np.array([a["expected_loss"] for a in out["arms"]])
    assert got_loss == pytest.approx(loss, rel=0.02, abs=2e-6)


@pytest.mark.parametrize(
    "counts",
    [
        [(3, 120), (7, 115), (5, 118)],
        [(12, 400), (20, 410), (15, 380), (9, 390)],
    ],
    ids=["3_arms", "4_arms"],
)
def test_holm_adjustment_matches_statsmodels(counts: list[tuple[int, int]]) -> None:
    out = compare_from_json(
        {
            "arms": [
                {"name": f"a{i}", "clicks": x, "impressions": n} for i, (x, n) in enumerate(counts)
            ]
        }
    )
    xc, nc = counts[0]
    raw = [proportions_ztest([x, xc], [n, nc])[1] for x, n in counts[1:]]
    _, expected, _, _ = multipletests(raw, alpha=0.05, method="holm")
    got = [c["p_value_holm"] for c in out["comparisons"]]
    assert [c["p_value"] for c in out["comparisons"]] == pytest.approx(raw, rel=1e-9)
    assert got == pytest.approx(list(expected), rel=1e-9)
    assert any("Holm" in w for w in out["warnings"])


def test_control_index_picks_the_baseline() -> None:
    arms = [
        {"name": "question", "clicks": 7, "impressions": 115},
        {"name": "bare", "clicks": 3, "impressions": 120},
    ]
    out = compare_from_json({"arms": arms, "control_index": 1})
    assert out["control"] == "bare"
    [c] = out["comparisons"]
    assert c["arm"] == "question"
    assert c["diff"] == pytest.approx(7 / 115 - 3 / 120)


def test_holm_treats_an_undefined_p_value_as_one_in_the_family() -> None:
    counts = [(0, 100), (0, 100), (12, 100)]
    out = compare_from_json(
        {
            "arms": [
                {"name": f"a{i}", "clicks": x, "impressions": n} for i, (x, n) in enumerate(counts)
            ]
        }
    )
    first, second = out["comparisons"]
    assert first["p_value"] is None and first["p_value_holm"] is None
    _, expected, _, _ = multipletests(
        [1.0, proportions_ztest([12, 0], [100, 100])[1]], method="holm"
    )
    assert second["p_value_holm"] == pytest.approx(expected[1], rel=1e-9)
