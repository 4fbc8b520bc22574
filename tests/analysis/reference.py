"""Independent reference computations for the analysis tests (not used by the app)."""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, special, stats

# The keys CONTRACT.md promises in every compare answer.
CONTRACT_ARM_KEYS = frozenset({"name", "rate", "wilson_95", "prob_best", "expected_loss"})
CONTRACT_COMPARISON_KEYS = frozenset(
    {
        "arm",
        "diff",
        "diff_95",
        "p_value",
        "p_value_holm",
        "relative_lift",
        "relative_lift_95",
        "prob_beats_control",
    }
)


def miller_prob_beats(control: tuple[int, int], arm: tuple[int, int]) -> float:
    """Evan Miller's exact P(p_arm > p_control) for Beta(1+x, 1+n−x) posteriors."""
    a_a, b_a = 1 + control[0], 1 + control[1] - control[0]
    a_b, b_b = 1 + arm[0], 1 + arm[1] - arm[0]
    total = 0.0
    for i in range(a_b):
        total += math.exp(
            special.betaln(a_a + i, b_a + b_b)
            - math.log(b_b + i)
            - special.betaln(1 + i, b_b)
            - special.betaln(a_a, b_a)
        )
    return total


def monte_carlo_best(
    counts: list[tuple[int, int]], draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded Monte Carlo P(best) and expected loss; returns (prob_best, loss)."""
    rng = np.random.default_rng(seed)
    samples = np.array([rng.beta(1 + x, 1 + n - x, draws) for x, n in counts])
    best = np.bincount(samples.argmax(axis=0), minlength=len(counts)) / draws
    loss = (samples.max(axis=0)[None, :] - samples).mean(axis=1)
    return best, loss


def quad_prob_best(counts: list[tuple[int, int]], index: int) -> float:
    """P(arm `index` is best) with scipy quad over its posterior's central window."""
    params = [(1 + x, 1 + n - x) for x, n in counts]
    a, b = params[index]
    lo, hi = stats.beta.ppf([1e-14, 1 - 1e-14], a, b)

    def integrand(p: float) -> float:
        value = stats.beta.pdf(p, a, b)
        for j, (aj, bj) in enumerate(params):
            if j != index:
                value *= stats.beta.cdf(p, aj, bj)
        return float(value)

    points = [float(stats.beta.ppf(q, a, b)) for q in (0.001, 0.1, 0.5, 0.9, 0.999)]
    value, _ = integrate.quad(integrand, lo, hi, points=points, limit=500, epsabs=1e-13)
    return float(value)


def delta_ratio_variance(clicks: list[int], impressions: list[int]) -> float:
    """stats.md §2.7 written out: (s_c² − 2R·s_cm + R²·s_m²) / (k·m̄²)."""
    c = np.asarray(clicks, dtype=float)
    m = np.asarray(impressions, dtype=float)
    k = len(c)
    r = c.sum() / m.sum()
    s_c2 = np.var(c, ddof=1)
    s_m2 = np.var(m, ddof=1)
    s_cm = np.cov(c, m, ddof=1)[0, 1]
    return float((s_c2 - 2 * r * s_cm + r**2 * s_m2) / (k * m.mean() ** 2))


def dersimonian_laird(y: np.ndarray, v: np.ndarray) -> dict[str, float]:
    """Textbook DerSimonian–Laird with τ² clipped at 0 and the HKSJ standard error."""
    w = 1 / v
    k = len(y)
    fixed = (w * y).sum() / w.sum()
    q = (w * (y - fixed) ** 2).sum()
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    w_re = 1 / (v + tau2)
    mean = (w_re * y).sum() / w_re.sum()
    se = math.sqrt(1 / w_re.sum())
    se_hk = math.sqrt((w_re * (y - mean) ** 2).sum() / (k - 1) / w_re.sum())
    return {"fixed": fixed, "q": q, "tau2": tau2, "mean": mean, "se": se, "se_hksj": se_hk}
