"""Frequentist building blocks for comparing click rates (stats.md §4.2–4.6)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

# stats.md §4.2 fixes z to this value; scipy's quantile reproduces it exactly.
Z95 = float(stats.norm.ppf(0.975))

# scipy's fisher_exact slows with the table's size (0.1 s at 10^7, minutes at
# 10^12), so the exact test is given only for small tables with small cells,
# which is where the z-test's normal approximation is weak.
FISHER_MAX_IMPRESSIONS = 10**6
SMALL_EXPECTED_CLICKS = 5.0


@dataclass(frozen=True)
class TestResult:
    """A test statistic and two-sided p-value, or None with the reason."""

    statistic: float | None
    p_value: float | None
    reason: str | None = None


def wilson_interval(clicks: int, impressions: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a rate, no continuity correction, clipped to [0, 1]."""
    if impressions == 0:
        return (0.0, 1.0)
    n = float(impressions)
    p = clicks / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    # At 0 or all clicks the bound is exactly the estimate; rounding must not move it.
    lo = 0.0 if clicks == 0 else max(0.0, centre - half)
    hi = 1.0 if clicks == impressions else min(1.0, centre + half)
    return (lo, hi)


def newcombe_interval(
    control_clicks: int, control_n: int, clicks: int, n: int, z: float = Z95
) -> tuple[float, float] | None:
    """Newcombe hybrid score interval for rate − control rate, from the two Wilson intervals."""
    if control_n == 0 or n == 0:
        return None
    p_c = control_clicks / control_n
    p_t = clicks / n
    l_c, u_c = wilson_interval(control_clicks, control_n, z)
    l_t, u_t = wilson_interval(clicks, n, z)
    diff = p_t - p_c
    lo = diff - math.hypot(p_t - l_t, u_c - p_c)
    hi = diff + math.hypot(u_t - p_t, p_c - l_c)
    return (max(-1.0, lo), min(1.0, hi))


def pooled_z_test(control_clicks: int, control_n: int, clicks: int, n: int) -> TestResult:
    """Two-sided two-proportion z-test with the pooled rate in the standard error."""
    if control_n == 0 or n == 0:
        return TestResult(None, None, "an arm has no impressions")
    pooled = (control_clicks + clicks) / (control_n + n)
    if pooled in (0.0, 1.0):
        which = "no clicks" if pooled == 0.0 else "only clicks"
        return TestResult(None, None, f"both arms have {which}, so the test has no evidence")
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control_n + 1.0 / n))
    z = (clicks / n - control_clicks / control_n) / se
    return TestResult(z, float(2.0 * stats.norm.sf(abs(z))))


def small_cells(control_clicks: int, control_n: int, clicks: int, n: int) -> bool:
    """Whether some expected count (clicks or misses) in the 2×2 table is below 5."""
    if control_n == 0 or n == 0:
        return False
    pooled = (control_clicks + clicks) / (control_n + n)
    smaller = min(control_n, n)
    return min(pooled, 1.0 - pooled) * smaller < SMALL_EXPECTED_CLICKS


def fisher_exact_p(control_clicks: int, control_n: int, clicks: int, n: int) -> float | None:
    """Fisher's exact two-sided p-value for small tables with small cells, else None."""
    args = (control_clicks, control_n, clicks, n)
    if control_n + n > FISHER_MAX_IMPRESSIONS or not small_cells(*args):
        return None
    table = [[clicks, n - clicks], [control_clicks, control_n - control_clicks]]
    return float(stats.fisher_exact(table).pvalue)


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values; an undefined p counts as 1 in the family."""
    m = len(p_values)
    filled = [1.0 if p is None else p for p in p_values]
    order = sorted(range(m), key=lambda i: filled[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * filled[i]))
        adjusted[i] = running
    return [None if p is None else adjusted[i] for i, p in enumerate(p_values)]


def relative_lift(control_clicks: int, control_n: int, clicks: int, n: int) -> float | None:
    """Rate / control rate − 1, defined only when the control has clicks."""
    if control_n == 0 or n == 0 or control_clicks == 0:
        return None
    if clicks == 0:
        return -1.0
    # Same expression as the interval's centre, so a zero-width interval holds it exactly.
    return math.expm1(math.log(clicks / n) - math.log(control_clicks / control_n))


def log_rr_interval(
    control_clicks: int, control_n: int, clicks: int, n: int, z: float = Z95
) -> tuple[float, float] | None:
    """95% interval for the relative lift from the log risk ratio; None with a zero count."""
    if control_clicks == 0 or clicks == 0:
        return None
    log_rr = math.log(clicks / n) - math.log(control_clicks / control_n)
    se = math.sqrt(max(0.0, 1.0 / clicks - 1.0 / n + 1.0 / control_clicks - 1.0 / control_n))
    # expm1 keeps precision for lifts near zero at huge counts.
    return (math.expm1(log_rr - z * se), math.expm1(log_rr + z * se))
