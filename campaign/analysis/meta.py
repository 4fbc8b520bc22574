"""Random-effects meta-analysis of log risk ratios across experiments (stats.md §2.9)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from campaign.analysis.proportions import Z95

# Below this many experiments the Hartung–Knapp interval is the one to show.
HKSJ_BELOW = 10


@dataclass(frozen=True)
class Study:
    """One experiment's treatment and control totals for the same pair of framings."""

    label: str
    clicks: int
    impressions: int
    control_clicks: int
    control_impressions: int


@dataclass(frozen=True)
class StudyEffect:
    """One experiment's log risk ratio and its variance (0.5 added to cells with a zero)."""

    label: str
    log_rr: float
    variance: float
    corrected: bool


@dataclass(frozen=True)
class MetaAnalysis:
    """Pooled effect; relative_lift_95 is HKSJ when k < 10, else DerSimonian–Laird."""

    k: int
    studies: tuple[StudyEffect, ...]
    excluded: tuple[str, ...]
    method: str
    notes: tuple[str, ...]
    fixed_log_rr: float | None = None
    fixed_se: float | None = None
    log_rr: float | None = None
    se: float | None = None
    se_hksj: float | None = None
    tau2: float | None = None
    q: float | None = None
    i2: float | None = None
    relative_lift: float | None = None
    relative_lift_95_dl: tuple[float, float] | None = None
    relative_lift_95_hksj: tuple[float, float] | None = None
    relative_lift_95: tuple[float, float] | None = None
    p_value: float | None = None


def study_effect(study: Study) -> StudyEffect | None:
    """Log risk ratio of one study; None when neither arm has any information on the ratio."""
    x1, n1, x0, n0 = (
        study.clicks,
        study.impressions,
        study.control_clicks,
        study.control_impressions,
    )
    if n1 == 0 or n0 == 0 or (x1 == 0 and x0 == 0) or (x1 == n1 and x0 == n0):
        return None
    corrected = 0 in (x1, x0, n1 - x1, n0 - x0)
    if corrected:
        # The usual continuity correction: half a count in every cell of this study.
        a, b, c, d = x1 + 0.5, n1 - x1 + 0.5, x0 + 0.5, n0 - x0 + 0.5
    else:
        a, b, c, d = float(x1), float(n1 - x1), float(x0), float(n0 - x0)
    log_rr = math.log(a / (a + b)) - math.log(c / (c + d))
    variance = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return StudyEffect(study.label, log_rr, variance, corrected)


def _lift_interval(centre: float, half: float) -> tuple[float, float]:
    return (math.expm1(centre - half), math.expm1(centre + half))


def meta_analysis(studies: Sequence[Study]) -> MetaAnalysis:
    """DerSimonian–Laird random effects (τ² clipped at 0), with HKSJ for few experiments."""
    effects = []
    excluded = []
    for s in studies:
        effect = study_effect(s)
        if effect is None:
            excluded.append(s.label)
        else:
            effects.append(effect)
    notes = []
    if excluded:
        notes.append("experiments with no clicks in either arm say nothing about the ratio")
    k = len(effects)
    if k == 0:
        return MetaAnalysis(0, (), tuple(excluded), "none: no experiment with clicks", tuple(notes))
    y = np.array([e.log_rr for e in effects])
    v = np.array([e.variance for e in effects])
    w = 1 / v
    fixed = float((w * y).sum() / w.sum())
    q = float((w * (y - fixed) ** 2).sum())
    c = float(w.sum() - (w**2).sum() / w.sum())
    tau2 = max(0.0, (q - (k - 1)) / c) if k > 1 and c > 0 else 0.0
    w_re = 1 / (v + tau2)
    pooled = float((w_re * y).sum() / w_re.sum())
    se = math.sqrt(1 / float(w_re.sum()))
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    dl = _lift_interval(pooled, Z95 * se)
    p_value = float(2 * stats.norm.sf(abs(pooled) / se))
    hksj = se_hk = None
    use_hksj = 1 < k < HKSJ_BELOW
    if k > 1:
        se_hk = math.sqrt(float((w_re * (y - pooled) ** 2).sum()) / (k - 1) / float(w_re.sum()))
        t = float(stats.t.ppf(0.975, k - 1))
        hksj = _lift_interval(pooled, t * se_hk)
        if use_hksj and se_hk > 0:
            p_value = float(2 * stats.t.sf(abs(pooled) / se_hk, k - 1))
    else:
        notes.append(
            "one experiment: nothing to pool, and no spread between experiments to estimate"
        )
    return MetaAnalysis(
        k=k,
        studies=tuple(effects),
        excluded=tuple(excluded),
        fixed_log_rr=fixed,
        fixed_se=math.sqrt(1 / float(w.sum())),
        log_rr=pooled,
        se=se,
        se_hksj=se_hk,
        tau2=tau2,
        q=q,
        i2=i2,
        relative_lift=math.expm1(pooled),
        relative_lift_95_dl=dl,
        relative_lift_95_hksj=hksj,
        relative_lift_95=hksj if use_hksj else dl,
        p_value=p_value,
        method="random effects (DerSimonian-Laird)"
        + (", Hartung-Knapp-Sidik-Jonkman interval" if use_hksj else ""),
        notes=tuple(notes),
    )
