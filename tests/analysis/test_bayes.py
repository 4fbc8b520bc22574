"""Quadrature for P(best) and expected loss against scipy quad and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from campaign.analysis.bayes import BetaPosterior, best_arm
from tests.analysis.reference import monte_carlo_best, quad_prob_best

MILLION = 10**6


@pytest.mark.parametrize("k", range(2, 9))
def test_prob_best_at_a_million_impressions_matches_scipy_quad(k: int) -> None:
    counts = [(30_000 + 60 * i * (-1) ** i, MILLION) for i in range(k)]
    got = best_arm([BetaPosterior.from_counts(x, n) for x, n in counts]).prob_best
    expected = [quad_prob_best(counts, i) for i in range(k)]
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "counts",
    [
        [(0, 10**12), (3, 10**12)],
        [(1, 10), (100_000, 10**12), (50, 100)],
        [(0, 0), (0, 1), (1, 1)],
        [(2, 5), (300, 700), (5, 7)],
    ],
    ids=["near_zero", "mixed_scales", "no_data", "small_mixed"],
)
def test_prob_best_is_accurate_at_extreme_scales(counts: list[tuple[int, int]]) -> None:
    got = best_arm([BetaPosterior.from_counts(x, n) for x, n in counts]).prob_best
    expected = [quad_prob_best(counts, i) for i in range(len(counts))]
    assert sum(got) == pytest.approx(1.0, abs=1e-12)
    assert got == pytest.approx(expected, abs=1e-9)


def test_prob_best_near_a_rate_of_one_matches_the_mirrored_problem() -> None:
    # Rates near 1 are rates of misses near 0: P(A best) = P(A's miss rate is lowest).
    counts = [(10**12, 10**12), (10**12 - 2, 10**12)]
    mirrored = [(n - x, n) for x, n in counts]
    got = best_arm([BetaPosterior.from_counts(x, n) for x, n in counts]).prob_best
    assert got[0] == pytest.approx(quad_prob_best(mirrored, 1), abs=1e-9)
    assert got[1] == pytest.approx(quad_prob_best(mirrored, 0), abs=1e-9)


def test_prob_best_at_a_rate_of_one_half_and_1e12_matches_the_normal_limit() -> None:
    # With 10^12 impressions at 50 % the posteriors are normal to ~1e-11 (skew ~1e-11),
    # where scipy's incomplete beta is itself off by up to 1e-4.
    counts = [(5 * 10**11, 10**12), (5 * 10**11 + 900_000, 10**12)]
    post = [BetaPosterior.from_counts(x, n) for x, n in counts]
    got = best_arm(post).prob_best
    var = [p.alpha * p.beta / ((p.alpha + p.beta) ** 2 * (p.alpha + p.beta + 1)) for p in post]
    z = (post[1].mean - post[0].mean) / np.sqrt(sum(var))
    assert got[1] == pytest.approx(stats.norm.cdf(z), abs=1e-9)


def test_expected_loss_matches_monte_carlo_at_a_million() -> None:
    counts = [(30_000, MILLION), (30_150, MILLION), (29_900, MILLION)]
    result = best_arm([BetaPosterior.from_counts(x, n) for x, n in counts])
    best, loss = monte_carlo_best(counts, 1_000_000, seed=4)
    assert np.allclose(result.prob_best, best, atol=0.002)
    assert np.allclose(result.expected_loss, loss, rtol=0.01)


@settings(deadline=None, max_examples=80)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**12), st.floats(0, 1)).map(
            lambda t: (round(t[0] * t[1]), t[0])
        ),
        min_size=2,
        max_size=8,
    )
)
def test_prob_best_sums_to_one_and_loss_is_never_negative(counts: list[tuple[int, int]]) -> None:
    result = best_arm([BetaPosterior.from_counts(x, n) for x, n in counts])
    assert abs(sum(result.prob_best) - 1.0) <= 1e-9
    assert all(0.0 <= p <= 1.0 for p in result.prob_best)
    assert all(loss >= 0.0 for loss in result.expected_loss)


def test_identical_arms_share_the_probability_equally() -> None:
    result = best_arm([BetaPosterior.from_counts(12, 400)] * 5)
    assert result.prob_best == pytest.approx([0.2] * 5, abs=1e-12)
