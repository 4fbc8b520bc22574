"""Framing-tag effects across experiments, and a shrunken league table (stats.md §2.9).

When every experiment tests the same set of tags, each tag is compared with the
reference tag by a random-effects meta-analysis of log risk ratios. When tag sets
differ, a binomial logit model with one intercept per experiment (which absorbs
audience, topic and day) and one coefficient per tag uses within-experiment
contrasts only, fitted here by iteratively reweighted least squares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

from campaign.analysis.meta import Study, meta_analysis
from campaign.analysis.proportions import Z95, holm_adjust

MAX_ITERATIONS = 100
# Coefficients this large mean a tag or experiment separates perfectly; no finite MLE.
MAX_COEFFICIENT = 30.0


@dataclass(frozen=True)
class TaggedArm:
    """One arm of an experiment, labelled with its framing tag."""

    tag: str
    clicks: int
    impressions: int


@dataclass(frozen=True)
class Experiment:
    """The arms of one experiment; arms sharing a tag are added together."""

    label: str
    arms: tuple[TaggedArm, ...]


@dataclass(frozen=True)
class TagEffect:
    """A tag against the reference tag: ratio (risk or odds) with interval and p-values."""

    tag: str
    experiments: int
    clicks: int
    impressions: int
    log_ratio: float | None = None
    se: float | None = None
    ratio: float | None = None
    ratio_95: tuple[float, float] | None = None
    p_value: float | None = None
    p_value_holm: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class TagEffects:
    """All tags against one reference, with the method used and its caveats."""

    reference: str
    measure: str
    method: str
    effects: tuple[TagEffect, ...]
    dispersion: float | None
    notes: tuple[str, ...]
    reference_totals: tuple[int, int, int]


Table = dict[str, dict[str, tuple[int, int]]]


def _table(experiments: Sequence[Experiment]) -> Table:
    """Clicks and impressions per experiment and tag."""
    table: Table = {}
    for exp in experiments:
        row = table.setdefault(exp.label, {})
        for arm in exp.arms:
            x, n = row.get(arm.tag, (0, 0))
            row[arm.tag] = (x + arm.clicks, n + arm.impressions)
    return table


def _totals(table: Table, tag: str) -> tuple[int, int, int]:
    cells = [row[tag] for row in table.values() if tag in row]
    return len(cells), sum(c[0] for c in cells), sum(c[1] for c in cells)


def _blank(table: Table, tag: str, reason: str) -> TagEffect:
    return TagEffect(tag, *_totals(table, tag), reason=reason)


def framing_tag_effects(experiments: Sequence[Experiment], reference_tag: str) -> TagEffects:
    """Each tag against reference_tag across experiments, with Holm across tags."""
    table = _table(experiments)
    tag_sets = {frozenset(row) for row in table.values()}
    if len(tag_sets) == 1 and reference_tag in next(iter(tag_sets)):
        return _meta_effects(table, reference_tag)
    return logistic_tag_effects(table, reference_tag)


def _with_holm(effects: list[TagEffect]) -> tuple[TagEffect, ...]:
    adjusted = holm_adjust([e.p_value for e in effects])
    return tuple(replace(e, p_value_holm=p) for e, p in zip(effects, adjusted, strict=True))


def _meta_effects(table: Table, reference: str) -> TagEffects:
    tags = sorted({t for row in table.values() for t in row} - {reference})
    effects = []
    for tag in tags:
        studies = [Study(label, *row[tag], *row[reference]) for label, row in table.items()]
        meta = meta_analysis(studies)
        if meta.log_rr is None or meta.relative_lift_95 is None:
            effects.append(_blank(table, tag, "no experiment had clicks on these framings"))
            continue
        hksj = meta.se_hksj is not None and meta.relative_lift_95 == meta.relative_lift_95_hksj
        lo, hi = meta.relative_lift_95
        effects.append(
            TagEffect(
                tag,
                *_totals(table, tag),
                log_ratio=meta.log_rr,
                se=meta.se_hksj if hksj else meta.se,
                ratio=math.exp(meta.log_rr),
                ratio_95=(1 + lo, 1 + hi),
                p_value=meta.p_value,
            )
        )
    return TagEffects(
        reference,
        "risk_ratio",
        "random-effects meta-analysis per tag (DerSimonian-Laird; Hartung-Knapp when k < 10)",
        _with_holm(effects),
        None,
        (),
        _totals(table, reference),
    )


def _tag_sums(rows: Table) -> dict[str, tuple[int, int]]:
    sums: dict[str, tuple[int, int]] = {}
    for row in rows.values():
        for tag, (x, n) in row.items():
            sx, sn = sums.get(tag, (0, 0))
            sums[tag] = (sx + x, sn + n)
    return sums


def _prune(table: Table, reference: str) -> tuple[Table, dict[str, str]]:
    """Drop rows with no within-experiment information, and say why for each lost tag."""
    rows = {label: dict(row) for label, row in table.items()}
    reasons: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for tag, (x, n) in _tag_sums(rows).items():
            # All-zero (or all-click) tags have no finite estimate: the MLE runs off to ±∞.
            if x in (0, n):
                reasons[tag] = (
                    "no clicks in any experiment" if x == 0 else "every impression clicked"
                )
                for row in rows.values():
                    row.pop(tag, None)
                changed = True
        for label, row in list(rows.items()):
            x = sum(c[0] for c in row.values())
            n = sum(c[1] for c in row.values())
            if len(row) < 2 or x in (0, n):
                del rows[label]
                changed = True
    # Tags linked to the reference through shared experiments form one component.
    linked = {reference}
    grew = True
    while grew:
        grew = False
        for row in rows.values():
            if linked & row.keys() and not row.keys() <= linked:
                linked |= row.keys()
                grew = True
    for tag in {t for row in table.values() for t in row} - linked - reasons.keys():
        reasons[tag] = "never compared with the reference tag, directly or through other tags"
    kept = {label: row for label, row in rows.items() if row.keys() <= linked}
    return kept, reasons


def _irls(
    x: NDArray[np.float64], clicks: NDArray[np.float64], trials: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], float] | None:
    """Binomial logit fit: coefficients, covariance (scale 1) and Pearson χ²; None if it fails."""
    beta = np.zeros(x.shape[1])
    for _ in range(MAX_ITERATIONS):
        eta = x @ beta
        mu = special.expit(eta)
        weight = trials * mu * (1 - mu)
        working = eta + (clicks - trials * mu) / weight
        info = x.T @ (weight[:, None] * x)
        new = np.linalg.solve(info, x.T @ (weight * working))
        done = float(np.max(np.abs(new - beta))) < 1e-10
        beta = new
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > MAX_COEFFICIENT:
            return None
        if done:
            mu = special.expit(x @ beta)
            weight = trials * mu * (1 - mu)
            pearson = float(((clicks - trials * mu) ** 2 / weight).sum())
            cov = np.linalg.inv(x.T @ (weight[:, None] * x))
            return beta, cov, pearson
    return None


def logistic_tag_effects(table: Table, reference: str) -> TagEffects:
    """Tag odds ratios from a logit model with experiment fixed effects (IRLS)."""
    rows, reasons = _prune(table, reference)
    tags = sorted({t for row in rows.values() for t in row} - {reference})
    labels = sorted(rows)
    cells = [(i, tag, *rows[label][tag]) for i, label in enumerate(labels) for tag in rows[label]]
    fit = None
    if tags:
        design = np.zeros((len(cells), len(labels) + len(tags)))
        for r, (i, tag, _, _) in enumerate(cells):
            design[r, i] = 1.0
            if tag != reference:
                design[r, len(labels) + tags.index(tag)] = 1.0
        y = np.array([c[2] for c in cells], dtype=float)
        n = np.array([c[3] for c in cells], dtype=float)
        try:
            fit = _irls(design, y, n)
        except np.linalg.LinAlgError:
            fit = None
    notes = []
    dispersion = None
    effects = []
    if fit is None and tags:
        reasons.update(dict.fromkeys(tags, "the model could not be fitted (perfect separation)"))
    if fit is not None:
        beta, cov, pearson = fit
        df = len(cells) - len(beta)
        # Quasi-binomial: over-dispersed arms widen the intervals; a scale below 1 never narrows.
        dispersion = max(1.0, pearson / df) if df > 0 else 1.0
        if df <= 0:
            notes.append("no residual degrees of freedom: over-dispersion cannot be checked")
        for j, tag in enumerate(tags):
            coef = float(beta[len(labels) + j])
            se = math.sqrt(dispersion * float(cov[len(labels) + j, len(labels) + j]))
            effects.append(
                TagEffect(
                    tag,
                    *_totals(table, tag),
                    log_ratio=coef,
                    se=se,
                    ratio=math.exp(coef),
                    ratio_95=(math.exp(coef - Z95 * se), math.exp(coef + Z95 * se)),
                    p_value=float(2 * stats.norm.sf(abs(coef) / se)),
                )
            )
    effects += [_blank(table, t, reasons[t]) for t in sorted(reasons) if t != reference]
    if reference in reasons:
        notes.append(f"the reference tag '{reference}' cannot be used: {reasons[reference]}")
    return TagEffects(
        reference,
        "odds_ratio",
        "binomial logit with one intercept per experiment (IRLS, quasi-binomial scale)",
        _with_holm(effects),
        dispersion,
        tuple(notes),
        _totals(table, reference),
    )
