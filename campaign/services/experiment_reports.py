"""The experiment report: stored figures at the report age, through the analysis engine.

Per arm the posts published and measured, then `compare` (clicks per impression) or
`compare_per_post` (networks without impressions). The experiment's verdict rule is honoured:
"planned" gives no verdict before every arm reaches the planned sample and then judges once on
the Holm-adjusted p-values; "sequential" takes the engine's always-valid verdict. Statistics come
from campaign.analysis only; this module picks, counts and words.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from campaign.models import Experiment, ExperimentArm, ExperimentSlot, Organisation, Variant
from campaign.services import NotFound
from campaign.services.experiment_reads import (
    CLICKS_PER_IMPRESSION,
    ArmTotals,
    arm_totals,
)

if TYPE_CHECKING:
    from campaign.analysis import CompareResult, PerPostComparison

VERDICT_HEADINGS = {
    "better": "A framing did better",
    "worse": "A framing did worse",
    "no_clear_difference": "No clear difference",
    "not_enough_data": "Not enough evidence yet",
}
REPORT_METHOD = {
    "age": "each post's figures are the latest snapshot read at or before the report age",
    "clicks": (
        "tracked-link clicks made up to the report age after publishing; where a delivery has "
        "no tracked link, the network's own link-click figure from the same snapshot"
    ),
    "impressions": "the network's impressions in that snapshot",
    "left_out": (
        "for clicks per impression, posts without impressions at the age (Mastodon, Bluesky, "
        "outbox or manual posts without figures), or with more clicks than impressions, are "
        "left out and counted"
    ),
    "slots": "channel, weekday or weekend, and part of the day (in the organisation's time zone)",
    "verdict_rule_planned": (
        "planned: no verdict before every arm reaches the planned sample; then one look, "
        "better or worse when the Holm-adjusted p-value (post-level, within time slots where "
        "the engine gives one) is at most alpha"
    ),
    "verdict_rule_sequential": "sequential: the engine's always-valid verdict (mixture SPRT)",
    "per_post": (
        "clicks per post: mean tracked clicks per post, quasi-Poisson; the engine has no "
        "always-valid rule here, so both verdict rules judge once at the planned posts per arm"
    ),
}


@dataclass(frozen=True)
class ExperimentInfo:
    """The experiment as the report shows it."""

    id: int
    name: str
    hypothesis: str
    status: str
    primary_metric: str
    verdict_rule: str
    alpha: float
    minimum_lift: float
    baseline_rate: float | None
    planned_posts_per_arm: int
    planned_impressions_per_arm: int | None
    report_age_seconds: int
    decision: str | None
    chosen_arm: str | None
    learning: str
    created_at: dt.datetime
    approved_at: dt.datetime | None
    concluded_at: dt.datetime | None


@dataclass(frozen=True)
class ArmRow:
    """One arm's line in the report."""

    name: str
    control: bool
    variant: str | None
    tags: tuple[str, ...]
    slots: int
    posts_published: int
    posts_measured: int
    impressions: int | None
    clicks: int
    rate: float | None
    wilson_95: tuple[float, float] | None
    prob_best: float | None
    clicks_per_post: float | None
    clicks_per_post_95: tuple[float, float] | None


@dataclass(frozen=True)
class Progress:
    """How far the smallest arm is towards the plan, and how much more is needed."""

    unit: str
    planned: int | None
    have: int
    complete: bool
    more_needed: int | None
    sentence: str


@dataclass(frozen=True)
class ExperimentReport:
    experiment: ExperimentInfo
    age_seconds: int
    metric: str
    arms: tuple[ArmRow, ...]
    totals: tuple[ArmTotals, ...]
    comparison: CompareResult | PerPostComparison | None
    verdict: str
    verdict_sentence: str
    summary: str
    progress: Progress
    left_out: int
    warnings: tuple[str, ...]
    method: dict[str, str] = field(default_factory=dict)

    @property
    def heading(self) -> str:
        return VERDICT_HEADINGS[self.verdict]


def age_label(seconds: int) -> str:
    """86400 as '24h', 604800 as '7d', 5400 as '90m'."""
    if seconds % 86400 == 0 and seconds >= 7 * 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def parse_age(text: str) -> int:
    """'24h', '7d', '90m' or a number of seconds; ValueError naming the problem otherwise."""
    cleaned = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (cleaned[:-1], cleaned[-1]) if cleaned[-1:] in units else (cleaned, "s")
    if not (number.isascii() and number.isdigit()) or int(number) <= 0:
        raise ValueError(f"age {text!r} is not a whole number of s, m, h or d (e.g. 24h or 7d)")
    seconds = int(number) * units[unit]
    if seconds > 366 * 86400:
        raise ValueError(f"age {text!r} is more than a year")
    return seconds


def load_experiment(session: Session, experiment_id: int, organisation_id: int) -> Experiment:
    """The experiment with its arms, variants and slots; NotFound outside the organisation."""
    # One statement: the experiment, its arms, their variants and tags (a handful of rows).
    found = (
        session.scalars(
            select(Experiment)
            .where(Experiment.id == experiment_id, Experiment.organisation_id == organisation_id)
            .options(
                joinedload(Experiment.arms)
                .joinedload(ExperimentArm.variant)
                .joinedload(Variant.framing_tags),
            )
        )
        .unique()
        .one_or_none()
    )
    if found is None:
        raise NotFound(f"there is no experiment {experiment_id} in this organisation")
    return found


def _info(exp: Experiment) -> ExperimentInfo:
    return ExperimentInfo(
        exp.id,
        exp.name,
        exp.hypothesis,
        exp.status,
        exp.primary_metric,
        exp.verdict_rule,
        exp.alpha,
        exp.minimum_lift,
        exp.baseline_rate,
        exp.planned_posts_per_arm,
        exp.planned_impressions_per_arm,
        exp.report_age_seconds,
        exp.decision,
        next((a.name for a in exp.arms if a.id == exp.chosen_arm_id), None),
        exp.learning,
        exp.created_at,
        exp.approved_at,
        exp.concluded_at,
    )


@dataclass(frozen=True)
class SlotRow:
    """One experiment slot as the report needs it (read as columns, never as objects)."""

    experiment_id: int
    arm_id: int | None
    post_id: int | None
    channel_id: int


def slot_rows(session: Session, experiment_ids: Sequence[int]) -> dict[int, list[SlotRow]]:
    """Each experiment's slots in time order, in one query."""
    found: dict[int, list[SlotRow]] = {e: [] for e in experiment_ids}
    if not experiment_ids:
        return found
    rows = (
        session.connection()
        .execute(
            select(
                ExperimentSlot.experiment_id,
                ExperimentSlot.arm_id,
                ExperimentSlot.post_id,
                ExperimentSlot.channel_id,
            )
            .where(ExperimentSlot.experiment_id.in_(list(experiment_ids)))
            .order_by(ExperimentSlot.scheduled_at, ExperimentSlot.channel_id, ExperimentSlot.id)
        )
        .all()
    )
    for row in rows:
        found[row.experiment_id].append(SlotRow(*row))
    return found


def arm_posts(exp: Experiment, slots: Sequence[SlotRow]) -> list[tuple[str, list[int]]]:
    """(arm name, its slots' post ids in time order) for each arm, control first."""
    posts: dict[int, list[int]] = {arm.id: [] for arm in exp.arms}
    for slot in slots:
        if slot.arm_id in posts and slot.post_id is not None:
            posts[slot.arm_id].append(slot.post_id)
    return [(arm.name, posts[arm.id]) for arm in exp.arms]


def _slot_counts(slots: Sequence[SlotRow]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for slot in slots:
        if slot.arm_id is not None:
            counts[slot.arm_id] = counts.get(slot.arm_id, 0) + 1
    return counts


def arm_tags(arm: ExperimentArm) -> tuple[str, ...]:
    """The arm's variant's framing tag keys, sorted."""
    if arm.variant is None:
        return ()
    return tuple(sorted(tag.key for tag in arm.variant.framing_tags))


def experiment_report(
    session: Session,
    experiment_id: int,
    organisation_id: int,
    now: dt.datetime,
    age_seconds: int | None = None,
) -> ExperimentReport:
    """The report of one experiment of the organisation, at its report age unless given."""
    exp = load_experiment(session, experiment_id, organisation_id)
    org = session.get(Organisation, organisation_id)
    timezone = org.timezone if org is not None else "UTC"
    age = age_seconds if age_seconds is not None else exp.report_age_seconds
    slots = slot_rows(session, [exp.id])[exp.id]
    totals = arm_totals(session, arm_posts(exp, slots), age, exp.primary_metric, timezone)
    return build_report(exp, slots, totals, age, now)


def build_report(
    exp: Experiment,
    slots: Sequence[SlotRow],
    totals: Sequence[ArmTotals],
    age: int,
    now: dt.datetime,
) -> ExperimentReport:
    """The report from already-read totals (the framing report and benchmark reuse this)."""
    from campaign.services import experiment_verdicts as verdicts

    info = _info(exp)
    slot_counts = _slot_counts(slots)
    metric = exp.primary_metric
    comparison: CompareResult | PerPostComparison | None
    if len(totals) < 2 or not any(t.measured for t in totals):
        # No measured post at all: nothing for the engine to compare (it would show a 0-100%
        # interval per arm and warn about totals), so the report says there is no data yet.
        comparison = None
    elif metric == CLICKS_PER_IMPRESSION:
        comparison = verdicts.compare_totals(totals, exp.alpha)
    else:
        comparison = verdicts.compare_counts(totals)
    progress = verdicts.progress(info, totals, comparison)
    verdict, sentence, summary = verdicts.verdict(info, totals, comparison, progress)
    rows = verdicts.arm_rows(exp.arms, totals, comparison, slot_counts, arm_tags)
    left_out = sum(len(t.published) - len(t.measured) for t in totals)
    warnings = verdicts.warnings(info, totals, comparison, left_out, now)
    method = verdicts.method(metric)
    return ExperimentReport(
        experiment=info,
        age_seconds=age,
        metric=metric,
        arms=tuple(rows),
        totals=tuple(totals),
        comparison=comparison,
        verdict=verdict,
        verdict_sentence=sentence,
        summary=summary,
        progress=progress,
        left_out=left_out,
        warnings=tuple(warnings),
        method=method,
    )
