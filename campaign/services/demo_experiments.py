"""The demo's experiments: one concluded, one running and one planned, on the demo's history.

The demo's published history already places each message's framings in alternating order on
the students' outbox, week after week, as an experiment would. Two experiments are recorded
over it:

- the exam-season message (bare link against context and a question), run for the whole six
  weeks and concluded; its decision and note follow what its own report says at load time, so
  the demo never claims more than its figures support;
- the careers-fair message (deadline against a story), running: its past posts are published and
  its queued posts are still to come.

A third, for the internships message, is planned through the real service (power calculation
from the organisation's history, seeded assignment onto listed times) and waits for approval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.analysis import CompareResult, PerPostComparison
from campaign.models import Channel, Delivery, KeyDate, Organisation, Post, Variant
from campaign.models.experiment import Experiment, ExperimentArm, ExperimentSlot
from campaign.services import experiments
from campaign.services.audit import Actor
from campaign.services.demo_history import HistoryPost
from campaign.services.experiment_reports import experiment_report
from campaign.services.local_time import as_zone

SEED = 20261203


def add_experiments(
    session: Session,
    org: Organisation,
    channel: Channel,
    framings: Sequence[Sequence[Variant]],
    history: Sequence[HistoryPost],
    staff: Actor,
    manager: Actor,
    now: dt.datetime,
) -> list[Experiment]:
    """The three demo experiments (flushes only)."""
    exam, fair, internships = framings[0], framings[1], framings[2]
    concluded = _recorded(
        session, org, channel, exam, history, staff, manager, now,
        name="Exam season: does context beat a bare link?",
        hypothesis=(
            "Students in exam season click through more when the post says why the page "
            "matters (context, or a question) than when it is a bare link."
        ),
        with_queued=False,
    )  # fmt: skip
    _conclude(session, org, concluded, manager, now)
    running = _recorded(
        session, org, channel, fair, history, staff, manager, now,
        name="Careers fair: a student's story or the booking deadline?",
        hypothesis=(
            "A short story of a student who met their employer at the fair gets more bookings "
            "than a reminder of the deadline."
        ),
        with_queued=True,
    )  # fmt: skip
    planned = _planned(session, org, channel, internships, staff, now)
    return [concluded, running, planned]


def _recorded(
    session: Session,
    org: Organisation,
    channel: Channel,
    variants: Sequence[Variant],
    history: Sequence[HistoryPost],
    staff: Actor,
    manager: Actor,
    now: dt.datetime,
    *,
    name: str,
    hypothesis: str,
    with_queued: bool,
) -> Experiment:
    """An approved experiment over the message's published history (and its queued posts)."""
    by_variant = {v.id: v for v in variants}
    posts = [
        (h.published_at, h.variant_id, h.post_id) for h in history if h.variant_id in by_variant
    ]
    if with_queued:
        queued = session.execute(
            select(Delivery.due_at, Post.variant_id, Post.id)
            .join(Post, Post.id == Delivery.post_id)
            .where(
                Delivery.channel_id == channel.id,
                Delivery.status == "scheduled",
                Post.variant_id.in_(list(by_variant)),
            )
        ).all()
        posts += [(at, variant_id, post_id) for at, variant_id, post_id in queued if variant_id]
    posts.sort()
    started = posts[0][0] if posts else now
    per_arm = max(1, len(posts) // max(1, len(variants)))
    experiment = Experiment(
        organisation_id=org.id,
        message_id=variants[0].message_id,
        name=name,
        hypothesis=hypothesis,
        primary_metric="clicks_per_impression",
        report_age_seconds=86400,
        alpha=0.05,
        minimum_lift=0.5,
        baseline_rate=0.012,
        planned_posts_per_arm=per_arm,
        planned_impressions_per_arm=None,
        verdict_rule="sequential",
        seed=SEED,
        status="running",
        approved_by_id=manager.user_id,
        approved_at=started - dt.timedelta(days=2),
        learning="",
        created_by_id=staff.user_id,
        created_at=started - dt.timedelta(days=3),
        updated_at=now,
    )
    for position, variant in enumerate(variants):
        experiment.arms.append(
            ExperimentArm(variant_id=variant.id, name=variant.label, position=position)
        )
    session.add(experiment)
    session.flush()
    arm_of = {arm.variant_id: arm.id for arm in experiment.arms}
    for position, (at, variant_id, post_id) in enumerate(posts):
        experiment.slots.append(
            ExperimentSlot(
                channel_id=channel.id, scheduled_at=at, position=position,
                arm_id=arm_of[variant_id], post_id=post_id,
            )
        )  # fmt: skip
    session.flush()
    return experiment


def _conclude(
    session: Session, org: Organisation, experiment: Experiment, manager: Actor, now: dt.datetime
) -> None:
    """Conclude as a careful manager would: the decision follows the report's own verdict."""
    report = experiment_report(session, experiment.id, org.id, now)
    better = _better_arms(experiment, report.comparison)
    if better:
        best = better[0]
        decision, chosen = "adopt_variant", best.id
        others = [a.name for a in experiment.arms[1:] if a not in better]
        learning = (
            f"“{best.name}” beat the bare link on clicks per impression at 24 hours, on six "
            "weeks of alternating posts, so exam-season posts now open with why the page "
            "matters."
        )
        if others:
            learning += (
                f" {' and '.join(others)} did not clearly differ from the bare link: "
                "a framing that sounds engaging is not enough on its own."
            )
    else:
        decision, chosen = "inconclusive", None
        learning = (
            "Six weeks were not enough to tell the framings apart. The report says how many "
            "more impressions each would need; we will pool this with next year's run."
        )
    experiments.conclude(session, org, experiment.id, decision, chosen, learning, manager, now)


def _better_arms(
    experiment: Experiment, comparison: CompareResult | PerPostComparison | None
) -> list[ExperimentArm]:
    """The arms the report itself calls better than the control."""
    if not isinstance(comparison, CompareResult):
        return []
    names = {c.arm for c in comparison.comparisons if c.verdict == "better"}
    return [arm for arm in experiment.arms[1:] if arm.name in names]


def _planned(
    session: Session,
    org: Organisation,
    channel: Channel,
    variants: Sequence[Variant],
    staff: Actor,
    now: dt.datetime,
) -> Experiment:
    """Planned through the real service, on listed weekday times a few weeks ahead."""
    zone = as_zone(org.timezone)
    start = (now.astimezone(zone) + dt.timedelta(weeks=3)).date()
    blackouts = session.scalars(
        select(KeyDate).where(KeyDate.organisation_id == org.id, KeyDate.effect == "blackout")
    ).all()
    times: list[str] = []
    day = start
    while len(times) < 8:
        # Tuesdays and Thursdays, outside blackouts, so that a manager can approve it.
        if day.weekday() in (1, 3) and not any(k.covers(day) for k in blackouts):
            hour = 11 if len(times) % 2 == 0 else 15
            times.append(dt.datetime.combine(day, dt.time(hour, 15)).isoformat(timespec="minutes"))
        day += dt.timedelta(days=1)
    data = experiments.ExperimentInput(
        name="Internships: a statistic or a call to action?",
        message_id=variants[0].message_id,
        variant_ids=tuple(v.id for v in variants),
        channel_ids=(channel.id,),
        hypothesis=(
            "Second-years act on a concrete, small call to action more than on a statistic "
            "about deadlines."
        ),
        verdict_rule="planned",
        posts_per_arm=4,
        times=tuple(times),
    )
    return experiments.create_experiment(session, org, data, staff, now, seed=SEED)
