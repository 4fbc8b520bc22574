"""League table of framing tags, shrunk so that little data cannot top it."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from campaign.analysis.proportions import Z95
from campaign.analysis.tags import TagEffects


@dataclass(frozen=True)
class LeagueRow:
    """One tag in the league table, ranked by its shrunken effect."""

    rank: int | None
    tag: str
    ratio: float | None
    shrunk_ratio: float | None
    shrunk_ratio_95: tuple[float, float] | None
    experiments: int
    clicks: int
    impressions: int


def league_table(effects: TagEffects) -> list[LeagueRow]:
    """Tags ranked by effects shrunk toward "no different from the reference".

    Prior: log ratio ~ N(0, τ²), with τ² estimated by moments (DerSimonian–Laird
    style, weights 1/se², clipped at 0). A tag measured on little data has a wide
    se, so it is pulled most of the way to the reference and cannot top the table
    on a lucky handful of clicks. The reference sits at 1; tags without an
    estimate come last, unranked.
    """
    usable = [e for e in effects.effects if e.log_ratio is not None and e.se]
    theta = np.array([e.log_ratio for e in usable], dtype=float)
    var = np.array([e.se for e in usable], dtype=float) ** 2
    tau2 = 0.0
    if usable:
        q0 = float((theta**2 / var).sum())
        tau2 = max(0.0, (q0 - len(usable)) / float((1 / var).sum()))
    ref = effects.reference_totals
    scored = [(0.0, 0.0, LeagueRow(None, effects.reference, 1.0, 1.0, (1.0, 1.0), *ref))]
    for e, t, v in zip(usable, theta, var, strict=True):
        factor = tau2 / (tau2 + v)
        centre = float(t * factor)
        half = Z95 * math.sqrt(float(v * factor))
        ci = (math.exp(centre - half), math.exp(centre + half))
        row = LeagueRow(
            None, e.tag, e.ratio, math.exp(centre), ci, e.experiments, e.clicks, e.impressions
        )
        scored.append((centre, -float(v), row))
    ranked = sorted(scored, key=lambda s: (s[0], s[1]), reverse=True)
    table = [replace(row, rank=i + 1) for i, (_, _, row) in enumerate(ranked)]
    table += [
        LeagueRow(None, e.tag, None, None, None, e.experiments, e.clicks, e.impressions)
        for e in effects.effects
        if e not in usable
    ]
    return table
