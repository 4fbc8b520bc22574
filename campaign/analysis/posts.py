"""Post-level variance (delta method) and time-slot stratification (Mantel–Haenszel).

Impressions of one post share its reach, hour and audience, so posts, not
impressions, are the independent units (stats.md §2.7, §3.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from campaign.analysis.model import Arm, Post
from campaign.analysis.proportions import Z95

# Share of posts that would have to move slot to make two arms' slot mixes equal
# (total variation distance) above which the slots count as unbalanced.
SLOT_IMBALANCE = 0.2


@dataclass(frozen=True)
class PostLevel:
    """Difference and lift with each arm's variance taken over its posts."""

    diff: float
    diff_se: float
    diff_95: tuple[float, float]
    p_value: float | None
    relative_lift_95: tuple[float, float] | None
    control_variance_ratio: float | None
    arm_variance_ratio: float | None


@dataclass(frozen=True)
class Stratified:
    """Within-slot comparison: MH odds ratio, CMH p-value and MH risk difference."""

    diff: float
    null_variance: float
    pooled_rate: float
    odds_ratio: float | None
    odds_ratio_95: tuple[float, float] | None
    p_value: float | None


@dataclass(frozen=True)
class SlotAnalysis:
    """How two arms' posts spread over time slots, and the within-slot comparison."""

    balanced: bool
    imbalance: float
    shared_slots: tuple[str, ...]
    description: str
    stratified: Stratified | None


def ratio_variance(posts: Sequence[Post]) -> float | None:
    """Delta-method variance of Σclicks/Σimpressions over k ≥ 2 posts (stats.md §2.7)."""
    k = len(posts)
    impressions = np.array([p.impressions for p in posts], dtype=float)
    if k < 2 or impressions.sum() == 0:
        return None
    clicks = np.array([p.clicks for p in posts], dtype=float)
    ratio = clicks.sum() / impressions.sum()
    # s_c² − 2R·s_cm + R²·s_m² is the sample variance of c − R·m; this form cannot go negative.
    resid = clicks - ratio * impressions
    return float(resid.var(ddof=1) / (k * impressions.mean() ** 2))


def _arm_variance(arm: Arm) -> tuple[float, float | None]:
    """Variance of an arm's rate, over posts when it has several, and its ratio to binomial."""
    rate = arm.clicks / arm.impressions
    binomial = rate * (1.0 - rate) / arm.impressions
    delta = ratio_variance(arm.posts)
    if delta is None:
        return binomial, None
    return delta, (delta / binomial if binomial > 0 else None)


def post_level_comparison(control: Arm, arm: Arm) -> PostLevel | None:
    """Comparison with post-level variance, or None unless some arm has 2+ posts."""
    if (
        max(len(control.posts), len(arm.posts)) < 2
        or not control.impressions
        or not arm.impressions
    ):
        return None
    var_c, ratio_c = _arm_variance(control)
    var_t, ratio_t = _arm_variance(arm)
    rate_c = control.clicks / control.impressions
    rate_t = arm.clicks / arm.impressions
    diff = rate_t - rate_c
    se = math.sqrt(var_c + var_t)
    p_value = float(2.0 * stats.norm.sf(abs(diff) / se)) if se > 0 else None
    lift_95 = None
    if rate_c > 0 and rate_t > 0:
        log_rr = math.log(rate_t) - math.log(rate_c)
        log_se = math.sqrt(var_t / rate_t**2 + var_c / rate_c**2)
        lift_95 = (math.expm1(log_rr - Z95 * log_se), math.expm1(log_rr + Z95 * log_se))
    return PostLevel(
        diff, se, (diff - Z95 * se, diff + Z95 * se), p_value, lift_95, ratio_c, ratio_t
    )


def _slot_totals(arm: Arm) -> dict[str, tuple[int, int, int]]:
    """Posts, clicks and impressions per slot."""
    totals: dict[str, tuple[int, int, int]] = {}
    for post in arm.posts:
        slot = post.slot or ""
        k, x, n = totals.get(slot, (0, 0, 0))
        totals[slot] = (k + 1, x + post.clicks, n + post.impressions)
    return totals


def _describe(control: Arm, arm: Arm, share_c: dict[str, float], share_t: dict[str, float]) -> str:
    """Name the slot whose share differs most between the two arms."""
    slots = sorted(set(share_c) | set(share_t))
    worst = max(slots, key=lambda s: (abs(share_t.get(s, 0.0) - share_c.get(s, 0.0)), s))
    return (
        f"'{arm.name}' had {share_t.get(worst, 0.0):.0%} of its posts in slot '{worst}' "
        f"against {share_c.get(worst, 0.0):.0%} for '{control.name}'"
    )


def slot_analysis(control: Arm, arm: Arm) -> SlotAnalysis | None:
    """Slot balance and Mantel–Haenszel comparison; None unless every post has a slot."""
    posts = control.posts + arm.posts
    if not control.posts or not arm.posts or any(not p.slot for p in posts):
        return None
    by_c, by_t = _slot_totals(control), _slot_totals(arm)
    share_c = {s: v[0] / len(control.posts) for s, v in by_c.items()}
    share_t = {s: v[0] / len(arm.posts) for s, v in by_t.items()}
    slots = set(share_c) | set(share_t)
    imbalance = 0.5 * sum(abs(share_t.get(s, 0.0) - share_c.get(s, 0.0)) for s in slots)
    shared = tuple(
        sorted(s for s in slots if by_c.get(s, (0, 0, 0))[2] and by_t.get(s, (0, 0, 0))[2])
    )
    tables = [(by_t[s][1], by_t[s][2], by_c[s][1], by_c[s][2]) for s in shared]
    return SlotAnalysis(
        balanced=imbalance <= SLOT_IMBALANCE,
        imbalance=imbalance,
        shared_slots=shared,
        description=_describe(control, arm, share_c, share_t),
        stratified=mantel_haenszel(tables) if tables else None,
    )


def mantel_haenszel(tables: Sequence[tuple[int, int, int, int]]) -> Stratified:
    """MH odds ratio (Robins–Breslow–Greenland interval), CMH test and MH risk difference.

    Each table is (arm clicks, arm impressions, control clicks, control impressions);
    there must be at least one, each with impressions in both arms.
    """
    arr = np.array(tables, dtype=float)
    a, n1, c, n0 = arr.T
    b, d = n1 - a, n0 - c
    big_n = n1 + n0
    weight = n1 * n0 / big_n
    pooled = (a + c) / big_n
    diff = float((weight * (a / n1 - c / n0)).sum() / weight.sum())
    # Variance of the weighted difference when the rates are equal within each slot.
    null_var = float((weight * pooled * (1 - pooled)).sum() / weight.sum() ** 2)
    pooled_rate = float((a + c).sum() / big_n.sum())
    odds_ratio = odds_ratio_95 = None
    r, s = a * d / big_n, b * c / big_n
    if r.sum() > 0 and s.sum() > 0:
        p, q = (a + d) / big_n, (b + c) / big_n
        var = (
            (p * r).sum() / (2 * r.sum() ** 2)
            + (p * s + q * r).sum() / (2 * r.sum() * s.sum())
            + (q * s).sum() / (2 * s.sum() ** 2)
        )
        log_or = math.log(r.sum()) - math.log(s.sum())
        half = Z95 * math.sqrt(var)
        odds_ratio = math.exp(log_or)
        odds_ratio_95 = (math.exp(log_or - half), math.exp(log_or + half))
    clicks = a + c
    var_a = n1 * n0 * clicks * (b + d) / (big_n**2 * (big_n - 1))
    p_value = None
    if var_a.sum() > 0:
        chi2 = float((a - n1 * clicks / big_n).sum() ** 2 / var_a.sum())
        p_value = float(stats.chi2.sf(chi2, 1))
    return Stratified(diff, null_var, pooled_rate, odds_ratio, odds_ratio_95, p_value)
