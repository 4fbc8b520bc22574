"""Per-post comparison for networks without impressions."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats import rates

from campaign.analysis import AnalysisInputError, CountArm, PostCounts, compare_per_post


def _arm(name: str, clicks: list[int], interactions: list[int] | None = None) -> CountArm:
    interactions = interactions or [0] * len(clicks)
    return CountArm(
        name, tuple(PostCounts(c, i) for c, i in zip(clicks, interactions, strict=True))
    )


def test_even_posts_match_statsmodels_poisson_rate_ratio() -> None:
    # Identical posts within each arm: no over-dispersion, so φ = 1 (plain Poisson).
    result = compare_per_post([_arm("bare", [4] * 5), _arm("context", [7] * 6)])
    clicks = result.metrics["clicks"]
    assert clicks.dispersion == 1.0
    [c] = clicks.comparisons
    assert c.ratio == pytest.approx((42 / 6) / (20 / 5))
    assert c.p_value == pytest.approx(
        rates.test_poisson_2indep(42, 6, 20, 5, method="score").pvalue, rel=1e-9
    )
    assert c.ratio_95 == pytest.approx(
        rates.confint_poisson_2indep(42, 6, 20, 5, method="wald-log"), rel=1e-9
    )
    bare = clicks.arms[0]
    lo, hi = rates.confint_poisson(20, 5, method="exact-c")
    assert bare.mean_per_post == 4.0 and bare.mean_95 == pytest.approx([lo, hi], rel=1e-9)


def test_over_dispersed_posts_widen_everything_by_the_pearson_scale() -> None:
    bare, context = [1, 9, 2, 12, 0], [15, 3, 22, 1, 8, 30]
    result = compare_per_post([_arm("bare", bare), _arm("context", context)])
    chi2 = sum((c - sum(g) / len(g)) ** 2 / (sum(g) / len(g)) for g in (bare, context) for c in g)
    phi = chi2 / (len(bare) + len(context) - 2)
    clicks = result.metrics["clicks"]
    assert clicks.dispersion == pytest.approx(phi, rel=1e-12)
    [c] = clicks.comparisons
    half = 1.959963984540054 * math.sqrt(phi * (1 / sum(context) + 1 / sum(bare)))
    assert c.ratio_95 == pytest.approx(
        [c.ratio * math.exp(-half), c.ratio * math.exp(half)], rel=1e-9
    )
    plain = rates.test_poisson_2indep(sum(context), 6, sum(bare), 5, method="score")
    assert c.p_value > plain.pvalue


def test_result_says_it_is_a_per_post_comparison() -> None:
    result = compare_per_post([_arm("bare", [3], [5]), _arm("context", [6], [2])])
    assert result.basis.startswith("per post")
    assert "interactions" in result.metrics
    assert result.notes and "between posts cannot be estimated" in result.notes[0]


def test_zero_clicks_leave_the_ratio_blank_not_nan() -> None:
    result = compare_per_post([_arm("bare", [0, 0]), _arm("context", [2, 3])])
    [c] = result.metrics["clicks"].comparisons
    assert c.ratio is None and c.ratio_95 is None and c.p_value is not None
    [i] = result.metrics["interactions"].comparisons
    assert i.p_value is None


@pytest.mark.parametrize(
    "arms,field",
    [
        ([_arm("a", [1])], "arms"),
        ([_arm("a", [1]), CountArm("b", ())], "arms[1].posts"),
        ([_arm("a", [1]), _arm("b", [-1])], "arms[1].posts[0].clicks"),
    ],
)
def test_bad_per_post_input_names_the_field(arms: list[CountArm], field: str) -> None:
    with pytest.raises(AnalysisInputError) as caught:
        compare_per_post(arms)
    assert caught.value.field == field
