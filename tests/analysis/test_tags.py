"""Framing tags across experiments: logit with experiment fixed effects, and shrinkage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from campaign.analysis import (
    Experiment,
    TaggedArm,
    framing_tag_effects,
    league_table,
    meta_analysis,
)
from campaign.analysis.meta import Study
from tests.analysis.reference import dersimonian_laird

# Experiments with different tag sets; the reference is "bare".
MIXED = [
    ("e1", [("bare", 20, 1000), ("context", 35, 1000), ("question", 22, 1000)]),
    ("e2", [("bare", 40, 3000), ("context", 70, 3100)]),
    ("e3", [("context", 30, 900), ("question", 18, 950), ("statistic", 25, 1000)]),
    ("e4", [("bare", 12, 700), ("statistic", 19, 720)]),
    ("e5", [("bare", 60, 2500), ("question", 55, 2400), ("statistic", 80, 2600)]),
    ("e6", [("bare", 15, 400), ("context", 31, 420)]),
]


def _experiments(spec: list) -> list[Experiment]:
    return [Experiment(label, tuple(TaggedArm(*arm) for arm in arms)) for label, arms in spec]


def _statsmodels_fit(spec: list, reference: str) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    labels = [label for label, _ in spec]
    tags = sorted({t for _, arms in spec for t, _, _ in arms} - {reference})
    rows, y, n = [], [], []
    for i, (_, arms) in enumerate(spec):
        for tag, clicks, impressions in arms:
            row = [0.0] * (len(labels) + len(tags))
            row[i] = 1.0
            if tag != reference:
                row[len(labels) + tags.index(tag)] = 1.0
            rows.append(row)
            y.append(clicks / impressions)
            n.append(impressions)
    exog, endog, weights = np.array(rows), np.array(y), np.array(n, dtype=float)
    # A fresh family per model and var_weights, per the traps in stats.md §3.5.
    fit = sm.GLM(endog, exog, family=sm.families.Binomial(), var_weights=weights).fit(tol=1e-14)
    x2 = sm.GLM(endog, exog, family=sm.families.Binomial(), var_weights=weights).fit(
        scale="X2", tol=1e-14
    )
    k = len(labels)
    return tags, fit.params[k:], fit.bse[k:], float(x2.scale)


def test_mixed_tag_sets_fit_the_fixed_effects_logit_like_statsmodels() -> None:
    result = framing_tag_effects(_experiments(MIXED), "bare")
    tags, params, bse, scale = _statsmodels_fit(MIXED, "bare")
    assert result.measure == "odds_ratio" and "logit" in result.method
    assert result.dispersion == pytest.approx(max(1.0, scale), rel=1e-8)
    by_tag = {e.tag: e for e in result.effects}
    assert sorted(by_tag) == tags
    for tag, coef, se in zip(tags, params, bse, strict=True):
        effect = by_tag[tag]
        assert effect.log_ratio == pytest.approx(coef, rel=1e-8)
        assert effect.se == pytest.approx(se * math.sqrt(max(1.0, scale)), rel=1e-8)
        assert effect.ratio_95[0] < effect.ratio < effect.ratio_95[1]
    holm = sorted(e.p_value_holm for e in result.effects)
    assert holm == sorted(holm) and all(e.p_value_holm >= e.p_value for e in result.effects)


def test_same_tag_sets_use_the_meta_analysis() -> None:
    spec = [
        ("e1", [("bare", 20, 1000), ("context", 35, 1000)]),
        ("e2", [("bare", 40, 3000), ("context", 70, 3100)]),
        ("e3", [("bare", 12, 700), ("context", 19, 720)]),
    ]
    result = framing_tag_effects(_experiments(spec), "bare")
    assert result.measure == "risk_ratio" and "meta-analysis" in result.method
    [effect] = result.effects
    y = np.array([math.log((a[1][1] / a[1][2]) / (a[0][1] / a[0][2])) for _, a in spec])
    v = np.array([1 / a[1][1] - 1 / a[1][2] + 1 / a[0][1] - 1 / a[0][2] for _, a in spec])
    ref = dersimonian_laird(y, v)
    assert math.log(effect.ratio) == pytest.approx(ref["mean"], rel=1e-9)
    assert effect.se == pytest.approx(ref["se_hksj"], rel=1e-9)
    meta = meta_analysis([Study(label, *arms[1][1:], *arms[0][1:]) for label, arms in spec])
    assert effect.ratio_95 == pytest.approx([1 + b for b in meta.relative_lift_95_hksj])


def test_tags_never_linked_to_the_reference_or_without_clicks_are_explained() -> None:
    spec = [
        *MIXED,
        ("e7", [("story", 5, 300), ("emoji", 7, 310)]),
        ("e8", [("bare", 10, 500), ("deadline", 0, 480)]),
    ]
    result = framing_tag_effects(_experiments(spec), "bare")
    by_tag = {e.tag: e for e in result.effects}
    assert by_tag["story"].ratio is None and "never compared" in by_tag["story"].reason
    assert by_tag["emoji"].ratio is None
    assert by_tag["deadline"].ratio is None and "no clicks" in by_tag["deadline"].reason
    # The linked tags are unaffected by the unlinked experiment and the zero-click tag.
    base = {e.tag: e for e in framing_tag_effects(_experiments(MIXED), "bare").effects}
    assert by_tag["context"].log_ratio == pytest.approx(base["context"].log_ratio, rel=1e-6)


def test_a_tag_with_little_data_does_not_top_the_league_table() -> None:
    spec = [(f"e{i}", [("bare", 100, 5000), ("context", 140, 5000)]) for i in range(5)] + [
        ("e5", [("bare", 100, 5000), ("context", 140, 5000), ("story", 2, 30)])
    ]
    effects = framing_tag_effects(_experiments(spec), "bare")
    by_tag = {e.tag: e for e in effects.effects}
    # Raw, the lucky story (2 clicks from 30 views) looks best by far.
    assert by_tag["story"].ratio > 2 * by_tag["context"].ratio
    table = league_table(effects)
    assert [row.tag for row in table] == ["context", "story", "bare"]
    assert [row.rank for row in table] == [1, 2, 3]
    story = next(r for r in table if r.tag == "story")
    context = next(r for r in table if r.tag == "context")
    assert story.shrunk_ratio < story.ratio and context.shrunk_ratio == pytest.approx(
        context.ratio, rel=0.05
    )
    # The shrinkage factor is τ²/(τ² + se²) with a moment estimate of τ² (prior mean 0).
    theta = np.array([math.log(by_tag[t].ratio) for t in ("context", "story")])
    var = np.array([by_tag[t].se ** 2 for t in ("context", "story")])
    tau2 = max(0.0, ((theta**2 / var).sum() - 2) / (1 / var).sum())
    assert math.log(story.shrunk_ratio) == pytest.approx(
        theta[1] * tau2 / (tau2 + var[1]), rel=1e-9
    )
