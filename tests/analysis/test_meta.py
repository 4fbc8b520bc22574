"""Random-effects meta-analysis of log risk ratios across experiments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from campaign.analysis import Study, meta_analysis
from tests.analysis.reference import dersimonian_laird

# (arm clicks, arm impressions, control clicks, control impressions)
HETEROGENEOUS = [
    (30, 1000, 20, 1000),
    (50, 1500, 45, 1500),
    (12, 800, 15, 800),
    (40, 1000, 18, 1000),
    (25, 1200, 22, 1200),
]
HOMOGENEOUS = [
    (33, 1000, 30, 1000),
    (64, 2000, 60, 2000),
    (20, 600, 18, 600),
    (45, 1500, 41, 1500),
    (29, 900, 27, 900),
]


def _studies(rows: list[tuple[int, int, int, int]]) -> list[Study]:
    return [Study(f"exp {i}", *row) for i, row in enumerate(rows)]


def _effects(rows: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([math.log((a / n1) / (c / n0)) for a, n1, c, n0 in rows])
    v = np.array([1 / a - 1 / n1 + 1 / c - 1 / n0 for a, n1, c, n0 in rows])
    return y, v


def test_five_experiment_meta_analysis_matches_statsmodels_dl() -> None:
    y, v = _effects(HETEROGENEOUS)
    ref = combine_effects(y, v, method_re="dl")
    assert ref.tau2 > 0  # statsmodels is only a valid reference when τ² needs no clipping
    got = meta_analysis(_studies(HETEROGENEOUS))
    assert got.k == 5
    assert got.log_rr == pytest.approx(ref.mean_effect_re, rel=1e-10)
    assert got.se == pytest.approx(ref.sd_eff_w_re, rel=1e-10)
    assert got.tau2 == pytest.approx(ref.tau2, rel=1e-10)
    assert got.q == pytest.approx(ref.q, rel=1e-10)
    assert got.i2 == pytest.approx(ref.i2, rel=1e-10)
    assert got.fixed_log_rr == pytest.approx(ref.mean_effect_fe, rel=1e-10)
    assert got.se_hksj == pytest.approx(ref.sd_eff_w_re_hksj, rel=1e-10)
    # Five experiments: the displayed interval is Hartung–Knapp (t with 4 df).
    _, _, _, (lo, hi) = ref.conf_int(use_t=True)
    assert got.relative_lift_95 == pytest.approx([math.expm1(lo), math.expm1(hi)], rel=1e-9)
    assert got.relative_lift_95 == got.relative_lift_95_hksj
    t = got.log_rr / got.se_hksj
    assert got.p_value == pytest.approx(2 * stats.t.sf(abs(t), 4), rel=1e-9)
    assert "Hartung-Knapp" in got.method


def test_tau_squared_is_clipped_at_zero_when_experiments_agree() -> None:
    y, v = _effects(HOMOGENEOUS)
    ref = dersimonian_laird(y, v)
    assert ref["q"] < len(y) - 1
    got = meta_analysis(_studies(HOMOGENEOUS))
    assert got.tau2 == 0.0 and got.i2 == 0.0
    assert got.log_rr == pytest.approx(ref["fixed"], rel=1e-12)
    assert got.log_rr == pytest.approx(got.fixed_log_rr, rel=1e-12)
    assert got.se == pytest.approx(ref["se"], rel=1e-12)
    assert got.se_hksj == pytest.approx(ref["se_hksj"], rel=1e-12)


def test_dl_z_interval_is_used_from_ten_experiments() -> None:
    rows = HETEROGENEOUS * 2
    got = meta_analysis(_studies(rows))
    ref = dersimonian_laird(*_effects(rows))
    z = stats.norm.ppf(0.975)
    assert got.relative_lift_95 == got.relative_lift_95_dl
    assert got.relative_lift_95 == pytest.approx(
        [math.expm1(ref["mean"] - z * ref["se"]), math.expm1(ref["mean"] + z * ref["se"])], rel=1e-9
    )


def test_zero_cells_get_half_a_count_and_double_zeros_are_left_out() -> None:
    rows = [*HETEROGENEOUS[:3], (0, 500, 4, 500), (0, 300, 0, 300)]
    got = meta_analysis(_studies(rows))
    assert got.k == 4 and got.excluded == ("exp 4",)
    corrected = next(e for e in got.studies if e.label == "exp 3")
    assert corrected.corrected
    assert corrected.log_rr == pytest.approx(math.log((0.5 / 501) / (4.5 / 501)))
    assert corrected.variance == pytest.approx(1 / 0.5 - 1 / 501 + 1 / 4.5 - 1 / 501)
    assert got.notes


def test_one_experiment_has_no_spread_and_no_hksj() -> None:
    got = meta_analysis(_studies(HETEROGENEOUS[:1]))
    a, n1, c, n0 = HETEROGENEOUS[0]
    assert got.relative_lift == pytest.approx((a / n1) / (c / n0) - 1)
    assert got.relative_lift_95_hksj is None and got.tau2 == 0.0
    assert got.relative_lift_95 == got.relative_lift_95_dl


def test_no_usable_experiment_gives_an_empty_result() -> None:
    got = meta_analysis(_studies([(0, 100, 0, 100)]))
    assert got.k == 0 and got.log_rr is None and got.relative_lift_95 is None
