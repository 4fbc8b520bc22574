"""Fixed-horizon sample size per arm (Evan Miller's formula, stats.md §2.3 and §4.7)."""

from __future__ import annotations

import math

from scipy import stats

DEFAULT_LIFT = 0.5


def required_impressions(
    baseline: float, lift: float, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Impressions per arm to detect a relative lift over baseline, two-sided, rounded up.

    Null standard deviation √(2p(1−p)) at the baseline; alternative
    √(p(1−p) + p₂(1−p₂)). None when the target rate is not a rate (≤ p or ≥ 1).
    """
    target = baseline * (1.0 + lift)
    if not 0.0 < baseline < 1.0 or not baseline < target < 1.0:
        return None
    z_alpha = float(stats.norm.ppf(1.0 - alpha / 2.0))
    z_beta = float(stats.norm.ppf(power))
    sd_null = math.sqrt(2.0 * baseline * (1.0 - baseline))
    sd_alt = math.sqrt(baseline * (1.0 - baseline) + target * (1.0 - target))
    n = (z_alpha * sd_null + z_beta * sd_alt) ** 2 / (target - baseline) ** 2
    return math.ceil(n)
