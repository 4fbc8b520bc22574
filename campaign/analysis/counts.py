"""Per-post comparison for networks without impressions (Mastodon, Bluesky, manual).

With no impression counts there is no click *rate*, only counts per post, so
framings are compared on their mean tracked clicks and interactions per post
(a Poisson rate per post). Posts differ in reach, so counts are over-dispersed;
a quasi-Poisson scale φ = max(1, Pearson χ²/df) over all arms widens every
interval and test and never narrows them (stats.md §2.8).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from campaign.analysis.proportions import Z95, holm_adjust
from campaign.analysis.validate import AnalysisInputError

METRICS = ("clicks", "interactions")
BASIS = (
    "per post: these networks report no impressions, so this compares the average "
    "per post, not a rate per view; a framing posted at busier times or to more "
    "followers can look better for that reason alone"
)


@dataclass(frozen=True)
class PostCounts:
    """Tracked link clicks and interactions (likes + reposts + replies) on one post."""

    clicks: int
    interactions: int


@dataclass(frozen=True)
class CountArm:
    """One framing's posts on a network without impressions."""

    name: str
    posts: tuple[PostCounts, ...]


@dataclass(frozen=True)
class ArmMean:
    """Mean count per post for one arm, with a quasi-Poisson 95% interval."""

    name: str
    posts: int
    total: int
    mean_per_post: float
    mean_95: tuple[float, float]


@dataclass(frozen=True)
class RateRatio:
    """One arm's mean per post against the control's."""

    arm: str
    ratio: float | None
    ratio_95: tuple[float, float] | None
    p_value: float | None
    p_value_holm: float | None


@dataclass(frozen=True)
class MetricComparison:
    """Per-post means and ratios for one metric, Holm-adjusted across the arms."""

    metric: str
    dispersion: float
    arms: tuple[ArmMean, ...]
    comparisons: tuple[RateRatio, ...]


@dataclass(frozen=True)
class PerPostComparison:
    """Clicks (primary) and interactions (supporting), each its own Holm family."""

    basis: str
    control: str
    metrics: dict[str, MetricComparison]
    notes: tuple[str, ...]


def _dispersion(groups: Sequence[Sequence[int]]) -> float | None:
    """Pearson χ²/df of posts around their arm's mean; None with no spare posts."""
    chi2 = 0.0
    df = 0
    for counts in groups:
        mean = sum(counts) / len(counts)
        df += len(counts) - 1
        if mean > 0:
            chi2 += sum((c - mean) ** 2 for c in counts) / mean
    return chi2 / df if df > 0 else None


def _garwood(total: float) -> tuple[float, float]:
    """Exact Poisson 95% interval for a (possibly scaled, non-integer) count."""
    lo = 0.0 if total == 0 else float(stats.chi2.ppf(0.025, 2 * total)) / 2
    hi = float(stats.chi2.ppf(0.975, 2 * total + 2)) / 2
    return lo, hi


def _metric(arms: Sequence[CountArm], control_index: int, metric: str) -> MetricComparison:
    groups = [[getattr(p, metric) for p in arm.posts] for arm in arms]
    raw = _dispersion(groups)
    phi = max(1.0, raw) if raw is not None else 1.0
    means = []
    for arm, counts in zip(arms, groups, strict=True):
        k, total = len(counts), sum(counts)
        # Scaling by φ turns a quasi-Poisson total into an "effective" Poisson count.
        lo, hi = _garwood(total / phi)
        means.append(ArmMean(arm.name, k, total, total / k, (lo * phi / k, hi * phi / k)))
    control = means[control_index]
    ratios = [_ratio(m, control, phi) for i, m in enumerate(means) if i != control_index]
    adjusted = holm_adjust([r.p_value for r in ratios])
    comparisons = tuple(
        RateRatio(r.arm, r.ratio, r.ratio_95, r.p_value, p)
        for r, p in zip(ratios, adjusted, strict=True)
    )
    return MetricComparison(metric, phi, tuple(means), comparisons)


def _ratio(arm: ArmMean, control: ArmMean, phi: float) -> RateRatio:
    """Rate ratio with a Wald log interval and a quasi-Poisson score test."""
    total = arm.total + control.total
    p_value = None
    if total > 0:
        # Conditional on the total, the arm's share is binomial under "same mean per post".
        share = arm.posts / (arm.posts + control.posts)
        z = (arm.total - total * share) / math.sqrt(phi * total * share * (1 - share))
        p_value = float(2 * stats.norm.sf(abs(z)))
    if control.total == 0:
        return RateRatio(arm.name, None, None, p_value, None)
    ratio = arm.mean_per_post / control.mean_per_post
    if arm.total == 0:
        return RateRatio(arm.name, ratio, None, p_value, None)
    half = Z95 * math.sqrt(phi * (1 / arm.total + 1 / control.total))
    log_ratio = math.log(ratio)
    return RateRatio(
        arm.name, ratio, (math.exp(log_ratio - half), math.exp(log_ratio + half)), p_value, None
    )


def compare_per_post(arms: Sequence[CountArm], control_index: int = 0) -> PerPostComparison:
    """Compare framings by mean clicks and interactions per post, against the control."""
    if not 2 <= len(arms) <= 8:
        raise AnalysisInputError("arms", "must have 2 to 8 arms")
    if not 0 <= control_index < len(arms):
        raise AnalysisInputError("control_index", f"must be from 0 to {len(arms) - 1}")
    for i, arm in enumerate(arms):
        if not arm.posts:
            raise AnalysisInputError(f"arms[{i}].posts", "needs at least one post")
        for j, post in enumerate(arm.posts):
            for metric in METRICS:
                value = getattr(post, metric)
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    field = f"arms[{i}].posts[{j}].{metric}"
                    raise AnalysisInputError(field, "must be a whole number, 0 or more")
    notes = []
    if all(len(a.posts) == 1 for a in arms):
        notes.append("one post per framing: variation between posts cannot be estimated")
    metrics = {m: _metric(arms, control_index, m) for m in METRICS}
    return PerPostComparison(BASIS, arms[control_index].name, metrics, tuple(notes))
