"""Always-valid verdicts: the mixture sequential probability ratio test (mSPRT).

The calculator is stateless: every call is one more look at the same
experiment's cumulative totals. Under "no difference" the mixture likelihood
ratio Λ_n is (asymptotically) a non-negative martingale with mean 1, so by
Ville's inequality P(Λ_n ≥ 1/α at *any* look) ≤ α. Evaluating Λ only at the
current totals, however often anyone looks, is therefore safe. With several
comparisons, Holm on p = min(1, 1/Λ) keeps the family-wise rate at α across all
looks (a Holm rejection of a true null needs some true null's Λ ≥ m₀/α).

Mixing scale: τ = TAU_RELATIVE × the pair's pooled click rate, on the absolute
difference. Λ is largest for effects near τ, and the effects careers framings
are worth acting on are 20–100 % lifts, i.e. an absolute difference of about
half the base rate (a 50 % lift moves the pooled rate to 1.25 × base, so
0.4 × pooled ≈ 0.5 × base). In simulations over 0.2–1.0 this gave the best
power at the planned sizes for 50 % lifts and stayed within a few points of the
best for 20 % and 100 % lifts. See stats.md §4.11 and tests/analysis/test_peeking.py.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

TAU_RELATIVE = 0.4
# A verdict of better or worse needs at least this many clicks in the comparison,
# so the normal approximation behind Λ is never trusted on a handful of clicks.
MIN_CLICKS_TO_DECIDE = 10
# Impressions per arm beyond which the planner gives up (more than any real test).
MAX_PLAN = 10.0**13


def log_mixture_lr(diff: ArrayLike, var: ArrayLike, tau2: ArrayLike) -> NDArray[np.float64]:
    """log Λ for an observed difference with variance var under a N(0, τ²) mixture."""
    d = np.asarray(diff, dtype=float)
    s2 = np.asarray(var, dtype=float)
    t2 = np.asarray(tau2, dtype=float)
    total = s2 + t2
    result: NDArray[np.float64] = 0.5 * np.log(s2 / total) + t2 * d * d / (2.0 * s2 * total)
    return result


def sequential_p_values(
    control_clicks: ArrayLike,
    control_n: ArrayLike,
    clicks: ArrayLike,
    n: ArrayLike,
) -> NDArray[np.float64]:
    """Always-valid p = min(1, 1/Λ) at the current totals; 1 where there is no evidence.

    Works elementwise on arrays, so simulations run the exact rule compare() uses.
    """
    xc = np.asarray(control_clicks, dtype=float)
    nc = np.asarray(control_n, dtype=float)
    xt = np.asarray(clicks, dtype=float)
    nt = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (xc + xt) / (nc + nt)
        var = pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt)
        diff = xt / nt - xc / nc
        log_lr = log_mixture_lr(diff, var, (TAU_RELATIVE * pooled) ** 2)
    usable = (nc > 0) & (nt > 0) & (var > 0)
    log_p = np.minimum(0.0, -np.where(usable, log_lr, 0.0))
    result: NDArray[np.float64] = np.exp(log_p)
    return result


def sequential_p_value(diff: float, var: float, pooled_rate: float) -> float:
    """Always-valid p for one comparison with a given difference and variance."""
    if not var > 0.0 or not 0.0 < pooled_rate < 1.0:
        return 1.0
    tau2 = (TAU_RELATIVE * pooled_rate) ** 2
    log_lr = float(log_mixture_lr(diff, var, tau2))
    return math.exp(min(0.0, -log_lr))


def critical_difference(var: float, tau2: float, threshold: float) -> float:
    """Smallest |difference| at which Λ reaches the threshold."""
    extra = math.log(threshold) + 0.5 * math.log1p(tau2 / var)
    return math.sqrt(2.0 * var * (var + tau2) / tau2 * extra)


def sequential_sample_size(
    baseline: float, lift: float, alpha: float = 0.05, comparisons: int = 1, power: float = 0.8
) -> int | None:
    """Impressions per arm at which this rule says "better" with the given power.

    A single-look approximation (normal difference, pooled variance); earlier
    looks only add power, so the figure errs on the high side.
    """
    target = baseline * (1.0 + lift)
    if not 0.0 < baseline < 1.0 or not baseline < target < 1.0:
        return None
    delta = target - baseline
    pooled = (baseline + target) / 2.0
    tau2 = (TAU_RELATIVE * pooled) ** 2
    threshold = comparisons / alpha
    alt_var = baseline * (1.0 - baseline) + target * (1.0 - target)
    z_power = float(stats.norm.ppf(power))

    def shortfall(log_n: float) -> float:
        n = math.exp(log_n)
        var0 = pooled * (1.0 - pooled) * 2.0 / n
        return delta - critical_difference(var0, tau2, threshold) - z_power * math.sqrt(alt_var / n)

    lo, hi = 0.0, math.log(MAX_PLAN)
    if shortfall(hi) < 0.0:
        return None
    if shortfall(lo) >= 0.0:
        return 1
    log_n = optimize.brentq(shortfall, lo, hi, xtol=1e-9)
    return math.ceil(math.exp(log_n))
