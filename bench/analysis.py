"""Benchmark the compare calculator at 10^6 impressions per arm.

Run: .venv/bin/python bench/analysis.py

For 2, 4 and 8 arms it times the whole calculator (compare_from_json: every
number, summary and JSON) and, in the same run, two yardsticks for the
probability-to-be-best integral it contains:
- the floor: one scipy.integrate.quad of P(first arm is best) with the other
  arms' beta.cdf inside the integrand (a single integral, not all K of them);
- what peers do: a 10^6-draw Monte Carlo of P(best) for all arms.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import integrate, stats

from campaign.analysis import compare_from_json
from campaign.analysis.bayes import BetaPosterior, best_arm

IMPRESSIONS = 10**6
BASE_CLICKS = 30_000


def _timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _request(k: int) -> dict[str, object]:
    arms = [
        {"name": f"arm {i}", "clicks": BASE_CLICKS + 60 * i, "impressions": IMPRESSIONS}
        for i in range(k)
    ]
    return {"arms": arms}


def _quad_floor(posteriors: list[BetaPosterior]) -> float:
    """One scipy quad of P(arm 0 is best), over its central window with breakpoints."""
    a, b = posteriors[0].alpha, posteriors[0].beta
    others = posteriors[1:]

    def integrand(x: float) -> float:
        value = float(stats.beta.pdf(x, a, b))
        for p in others:
            value *= float(stats.beta.cdf(x, p.alpha, p.beta))
        return value

    lo, hi = stats.beta.ppf([1e-13, 1 - 1e-13], a, b)
    points = list(stats.beta.ppf([0.01, 0.5, 0.99], a, b))
    value, _ = integrate.quad(integrand, lo, hi, points=points, limit=200)
    return float(value)


def _monte_carlo(posteriors: list[BetaPosterior], rng: np.random.Generator) -> np.ndarray:
    draws = np.array([rng.beta(p.alpha, p.beta, 1_000_000) for p in posteriors])
    return np.bincount(draws.argmax(axis=0), minlength=len(posteriors)) / draws.shape[1]


def main() -> None:
    """Print one row per arm count: compare, its P(best) part, the quad floor, Monte Carlo."""
    rng = np.random.default_rng(1)
    print(f"impressions per arm: {IMPRESSIONS:,}; median of repeated runs, milliseconds")
    header = ("arms", "compare", "P(best) part", "quad floor", "compare/floor", "MC 10^6")
    print("{:>4}  {:>9}  {:>12}  {:>10}  {:>13}  {:>9}".format(*header))
    for k in (2, 4, 8):
        request = _request(k)
        clicks = [BASE_CLICKS + 60 * i for i in range(k)]
        posteriors = [BetaPosterior.from_counts(x, IMPRESSIONS) for x in clicks]
        t_compare = _timed(lambda r=request: compare_from_json(r), repeat=30)
        t_best = _timed(lambda p=posteriors: best_arm(p), repeat=30)
        t_quad = _timed(lambda p=posteriors: _quad_floor(p), repeat=5)
        t_mc = _timed(lambda p=posteriors: _monte_carlo(p, rng), repeat=3)
        quad_value = _quad_floor(posteriors)
        ours = best_arm(posteriors).prob_best[0]
        assert abs(quad_value - ours) < 1e-8, (quad_value, ours)
        print(
            f"{k:>4}  {t_compare * 1e3:>9.2f}  {t_best * 1e3:>12.2f}  {t_quad * 1e3:>10.2f}"
            f"  {t_compare / t_quad:>13.2f}  {t_mc * 1e3:>9.1f}"
        )


if __name__ == "__main__":
    main()
