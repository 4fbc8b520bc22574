"""Several posts per arm (delta method) and time slots (Mantel–Haenszel)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable

from campaign.analysis import compare_from_json
from tests.analysis.reference import delta_ratio_variance

Z = 1.959963984540054

CONTROL_POSTS = [(12, 900), (30, 1400), (8, 700), (21, 1100)]
ARM_POSTS = [(40, 1000), (9, 800), (55, 1500), (14, 900), (30, 1200)]


def _arm(name: str, posts: list[tuple[int, int]], slots: list[str] | None = None) -> dict:
    return {
        "name": name,
        "posts": [
            {"clicks": x, "impressions": n, **({"slot": slots[i]} if slots else {})}
            for i, (x, n) in enumerate(posts)
        ],
    }


def test_post_level_variance_is_the_delta_method_over_posts() -> None:
    out = compare_from_json({"arms": [_arm("bare", CONTROL_POSTS), _arm("context", ARM_POSTS)]})
    c = out["comparisons"][0]
    pl = c["post_level"]
    xc, nc = (sum(v) for v in zip(*CONTROL_POSTS, strict=True))
    xt, nt = (sum(v) for v in zip(*ARM_POSTS, strict=True))
    var_c = delta_ratio_variance(*zip(*CONTROL_POSTS, strict=True))
    var_t = delta_ratio_variance(*zip(*ARM_POSTS, strict=True))
    se = math.sqrt(var_c + var_t)
    diff = xt / nt - xc / nc
    assert out["arms"][0]["impressions"] == nc and out["arms"][1]["clicks"] == xt
    assert pl["diff_se"] == pytest.approx(se, rel=1e-12)
    assert pl["diff_95"] == pytest.approx([diff - Z * se, diff + Z * se], rel=1e-12)
    assert pl["p_value"] == pytest.approx(2 * stats.norm.sf(abs(diff) / se), rel=1e-9)
    binomial_t = (xt / nt) * (1 - xt / nt) / nt
    assert pl["arm_variance_ratio"] == pytest.approx(var_t / binomial_t, rel=1e-12)
    log_se = math.sqrt(var_t / (xt / nt) ** 2 + var_c / (xc / nc) ** 2)
    rr = (xt / nt) / (xc / nc)
    assert pl["relative_lift_95"] == pytest.approx(
        [rr * math.exp(-Z * log_se) - 1, rr * math.exp(Z * log_se) - 1], rel=1e-9
    )


def test_over_dispersed_posts_widen_the_verdict_and_are_named() -> None:
    out = compare_from_json({"arms": [_arm("bare", CONTROL_POSTS), _arm("context", ARM_POSTS)]})
    c = out["comparisons"][0]
    # The impression-level test is far more confident than the post-level one.
    assert c["p_value"] < 0.01 < c["post_level"]["p_value"]
    assert c["post_level"]["arm_variance_ratio"] > 1.5
    assert any("'context' varied between posts" in w for w in out["warnings"])
    flat = compare_from_json(
        {
            "arms": [
                {"name": "bare", "clicks": 71, "impressions": 4100},
                {"name": "context", "clicks": 148, "impressions": 5400},
            ]
        }
    )["comparisons"][0]
    assert c["p_value_sequential"] > flat["p_value_sequential"]


def test_one_post_per_arm_says_between_post_variation_cannot_be_estimated() -> None:
    out = compare_from_json({"arms": [_arm("bare", [(20, 900)]), _arm("context", [(35, 950)])]})
    assert out["comparisons"][0]["post_level"] is None
    assert any("only one post" in w and "cannot be" in w for w in out["warnings"])


def test_totals_only_says_between_post_variation_cannot_be_estimated() -> None:
    out = compare_from_json(
        {
            "arms": [
                {"name": "a", "clicks": 3, "impressions": 90},
                {"name": "b", "clicks": 5, "impressions": 80},
            ]
        }
    )
    assert any("variation between posts cannot be estimated" in w for w in out["warnings"])


# stats.md §3.4: bare link mostly in the evening (3 % for everything then), context
# mostly in the morning (1–1.5 %); pooled, bare looks better, within slots context is.
SIMPSON_BARE = ([(4, 400)] + [(12, 400)] * 7, ["morning"] + ["evening"] * 7)
SIMPSON_CONTEXT = ([(6, 400)] * 6 + [(20, 500)], ["morning"] * 6 + ["evening"])


def _simpson() -> dict:
    return compare_from_json(
        {
            "arms": [
                _arm("bare link", SIMPSON_BARE[0], SIMPSON_BARE[1]),
                _arm("context", SIMPSON_CONTEXT[0], SIMPSON_CONTEXT[1]),
            ]
        }
    )


def test_confounded_slots_use_mantel_haenszel_like_statsmodels() -> None:
    out = _simpson()
    c = out["comparisons"][0]
    tables = []
    for slot in ("evening", "morning"):

        def total(posts: tuple, s: str = slot) -> tuple[int, int]:
            xs = [p for p, sl in zip(*posts, strict=True) if sl == s]
            return sum(x for x, _ in xs), sum(n for _, n in xs)

        xt, nt = total(SIMPSON_CONTEXT)
        xc, nc = total(SIMPSON_BARE)
        tables.append(np.array([[xt, nt - xt], [xc, nc - xc]]))
    ref = StratifiedTable(tables)
    strat = c["slots"]["stratified"]
    assert strat["odds_ratio"] == pytest.approx(ref.oddsratio_pooled, rel=1e-12)
    assert strat["odds_ratio_95"] == pytest.approx(list(ref.oddsratio_pooled_confint()), rel=1e-9)
    assert strat["p_value"] == pytest.approx(ref.test_null_odds(correction=False).pvalue, rel=1e-9)
    # The research note's figures: pooled p = 0.035 for bare, MH OR 1.38 (p = 0.16) for context.
    assert c["diff"] < 0 and round(c["p_value"], 3) == 0.035
    assert round(strat["odds_ratio"], 2) == 1.38 and round(strat["p_value"], 2) == 0.16


def test_confounded_slots_are_named_and_flip_the_direction_of_the_evidence() -> None:
    out = _simpson()
    c = out["comparisons"][0]
    assert c["slots"]["balanced"] is False
    warning = next(w for w in out["warnings"] if "Time slots are unbalanced" in w)
    assert "'evening'" in warning and "88%" in warning
    weights = []
    diffs = []
    for s in ("morning", "evening"):
        bare = [p for p, sl in zip(*SIMPSON_BARE, strict=True) if sl == s]
        ctx = [p for p, sl in zip(*SIMPSON_CONTEXT, strict=True) if sl == s]
        xc, nc = sum(x for x, _ in bare), sum(n for _, n in bare)
        xt, nt = sum(x for x, _ in ctx), sum(n for _, n in ctx)
        weights.append(nt * nc / (nt + nc))
        diffs.append(xt / nt - xc / nc)
    expected = float(np.average(diffs, weights=weights))
    assert c["slots"]["stratified"]["diff"] == pytest.approx(expected, rel=1e-12)
    assert expected > 0 > c["diff"]
    assert c["verdict"] not in ("better", "worse")
    assert "within time slots" in out["summary"]


def test_slots_that_never_overlap_make_the_arms_not_comparable() -> None:
    out = compare_from_json(
        {
            "arms": [
                _arm("bare", [(300, 10_000)] * 3, ["evening"] * 3),
                _arm("context", [(100, 10_000)] * 3, ["morning"] * 3),
            ]
        }
    )
    c = out["comparisons"][0]
    assert c["slots"]["stratified"] is None
    assert c["verdict"] == "not_enough_data" and out["verdict"] == "not_enough_data"
    assert any("share no time slot" in w for w in out["warnings"])
    assert "different time slots" in out["summary"]


def test_balanced_slots_give_no_timing_warning() -> None:
    slots = ["mon-9", "tue-9", "wed-9"]
    out = compare_from_json(
        {
            "arms": [
                _arm("bare", [(20, 1000), (25, 1100), (18, 900)], slots),
                _arm("context", [(30, 1000), (28, 1050), (35, 950)], slots),
            ]
        }
    )
    assert out["comparisons"][0]["slots"]["balanced"] is True
    assert not any("slot" in w for w in out["warnings"])
