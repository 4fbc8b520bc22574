"""An experiment's life: planned, approved (its posts made), running, concluded or abandoned.

Everything that decides the verdict (arms, metric, report age, rule, planned sample, slots and
their seeded assignment) is fixed while the experiment is `planned`; a manager's approval
freezes it and makes one approved post per slot through `posts.create_post`. Every state change
is in the audit trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from campaign.models import (
    AuditEvent,
    Campaign,
    Channel,
    Delivery,
    Experiment,
    ExperimentArm,
    ExperimentSlot,
    FramingTag,
    Message,
    Organisation,
    Post,
    Role,
    Variant,
)
from campaign.models.experiment import DECISIONS, MAX_ARMS, MIN_ARMS, PRIMARY_METRICS
from campaign.services import NotFound, PermissionDenied, ServiceError, posts, scheduling
from campaign.services import experiment_plans as plans
from campaign.services import experiment_slots as slots
from campaign.services.audit import Actor, record
from campaign.services.experiment_plans import PowerPlan
from campaign.services.local_time import format_local
from campaign.services.posts import PostInput

VERDICT_RULES = ("planned", "sequential")
DECISION_LABELS = {
    "adopt_variant": "Adopt a variant",
    "keep_control": "Keep the control",
    "no_difference": "No meaningful difference",
    "inconclusive": "Inconclusive",
}
METRIC_LABELS = {
    "clicks_per_impression": "Tracked-link clicks per impression",
    "clicks_per_post": "Tracked-link clicks per post",
}
MAX_REPORT_AGE_SECONDS = 90 * 86400
MAX_TEXT = 20_000


@dataclass(frozen=True)
class ExperimentInput:
    """What a person (or the API) asks for; the first variant is the control."""

    name: str
    message_id: int
    variant_ids: tuple[int, ...]
    channel_ids: tuple[int, ...]
    hypothesis: str = ""
    primary_metric: str | None = None  # None: clicks per impression unless no channel has them
    report_age_seconds: int = 86400
    verdict_rule: str = "planned"
    alpha: float = 0.05
    minimum_lift: float = 0.5
    baseline_rate: float | None = None  # None: the organisation's history, else an assumption
    impressions_per_post: int | None = None  # the same
    posts_per_arm: int | None = None  # None: what the power calculation asks for
    times: tuple[str, ...] = ()  # listed times for every channel; empty: the queue slots


@dataclass
class Draft:
    """A checked input: what would be saved, or the reasons it cannot be."""

    message: Message | None = None
    variants: list[Variant] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    metric: str = "clicks_per_impression"
    metric_note: str | None = None
    plan: PowerPlan | None = None
    slot_times: list[slots.SlotTime] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown, but the save goes ahead


@dataclass(frozen=True)
class ArmProgress:
    arm: ExperimentArm
    scheduled: int
    published: int
    planned: int


class Refused(ServiceError):
    """The experiment cannot be saved; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = list(problems)


# --- reading -------------------------------------------------------------------------------


def get_experiment(session: Session, organisation_id: int, experiment_id: int) -> Experiment:
    """The experiment with its arms and slots; NotFound for another organisation's."""
    found = session.scalar(
        select(Experiment)
        .where(Experiment.id == experiment_id, Experiment.organisation_id == organisation_id)
        .options(
            selectinload(Experiment.arms).selectinload(ExperimentArm.variant),
            selectinload(Experiment.slots).selectinload(ExperimentSlot.channel),
        )
    )
    if found is None:
        raise NotFound("no such experiment")
    return found


def list_experiments(
    session: Session, organisation_id: int, status: str | None = None
) -> list[Experiment]:
    """The organisation's experiments, newest first, optionally of one status."""
    query = (
        select(Experiment)
        .where(Experiment.organisation_id == organisation_id)
        .options(selectinload(Experiment.arms))
        .order_by(Experiment.created_at.desc(), Experiment.id.desc())
    )
    if status is not None:
        query = query.where(Experiment.status == status)
    return list(session.scalars(query))


def library(
    session: Session,
    organisation_id: int,
    text: str = "",
    tag: str = "",
    audience: str = "",
) -> list[Experiment]:
    """Concluded and abandoned experiments (failed ideas too), by text, framing tag, audience."""
    query = (
        select(Experiment)
        .where(
            Experiment.organisation_id == organisation_id,
            Experiment.status.in_(("concluded", "abandoned")),
        )
        .options(
            selectinload(Experiment.arms)
            .selectinload(ExperimentArm.variant)
            .selectinload(Variant.framing_tags)
        )
        .order_by(Experiment.concluded_at.desc(), Experiment.id.desc())
    )
    words = text.strip()[:200]
    if words:
        pattern = f"%{_escape_like(words.lower())}%"
        query = query.where(
            or_(
                Experiment.name.ilike(pattern, escape="\\"),
                Experiment.hypothesis.ilike(pattern, escape="\\"),
                Experiment.learning.ilike(pattern, escape="\\"),
            )
        )
    arm_variants = select(ExperimentArm.experiment_id).join(
        Variant, Variant.id == ExperimentArm.variant_id
    )
    if tag.strip():
        tagged = arm_variants.join(Variant.framing_tags).where(FramingTag.key == tag.strip())
        query = query.where(Experiment.id.in_(tagged))
    if audience.strip():
        query = query.where(
            Experiment.id.in_(arm_variants.where(Variant.audience == audience.strip()))
        )
    return list(session.scalars(query))


def progress(session: Session, experiment: Experiment) -> list[ArmProgress]:
    """Per arm: posts made, posts published (on any channel), and the planned posts."""
    post_ids = {s.post_id: s.arm_id for s in experiment.slots if s.post_id is not None}
    published: dict[int | None, int] = {}
    scheduled: dict[int | None, int] = {}
    if post_ids:
        rows = session.execute(
            select(Delivery.post_id, Delivery.status).where(Delivery.post_id.in_(list(post_ids)))
        )
        for post_id, status in rows:
            arm_id = post_ids[post_id]
            if status == "published":
                published[arm_id] = published.get(arm_id, 0) + 1
            elif status in ("scheduled", "publishing", "unknown", "needs_review"):
                scheduled[arm_id] = scheduled.get(arm_id, 0) + 1
    return [
        ArmProgress(
            arm,
            scheduled.get(arm.id, 0),
            published.get(arm.id, 0),
            experiment.planned_posts_per_arm,
        )
        for arm in experiment.arms
    ]


def history(session: Session, organisation_id: int, experiment_id: int) -> list[AuditEvent]:
    """The experiment's audit trail, oldest first."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.organisation_id == organisation_id,
                AuditEvent.subject_type == "experiment",
                AuditEvent.subject_id == experiment_id,
            )
            .order_by(AuditEvent.id)
        )
    )


def explain_plan(session: Session, experiment: Experiment) -> list[str]:
    """The power calculation in words, as it was made when the experiment was planned."""
    created = session.scalar(
        select(AuditEvent).where(
            AuditEvent.subject_type == "experiment",
            AuditEvent.subject_id == experiment.id,
            AuditEvent.action == "experiment.created",
        )
    )
    detail = created.detail if created is not None and isinstance(created.detail, dict) else {}
    words = [str(s) for s in detail.get("plan") or []]
    if detail.get("metric_note"):
        words.append(str(detail["metric_note"]))
    if words:
        return words
    rate = f" on a {experiment.baseline_rate:.2%} baseline" if experiment.baseline_rate else ""
    shown = experiment.planned_impressions_per_arm
    return [
        f"Planned for a {experiment.minimum_lift:.0%} lift{rate} at alpha {experiment.alpha:g}: "
        f"{experiment.planned_posts_per_arm} posts per arm"
        + (f", about {shown:,} impressions per arm." if shown else ".")
    ]


# --- planning -------------------------------------------------------------------------------


def check(
    session: Session, organisation: Organisation, data: ExperimentInput, now: dt.datetime
) -> Draft:
    """Everything that decides whether `data` can be saved, without saving anything."""
    draft = Draft()
    problems = draft.problems
    if not data.name.strip():
        problems.append("Give the experiment a name.")
    elif len(data.name.strip()) > 200:
        problems.append("The name is too long: at most 200 characters.")
    if not data.hypothesis.strip():
        problems.append("Write the hypothesis: what you expect, and why.")
    draft.message = get_message(session, organisation.id, data.message_id)
    draft.variants = _variants(draft.message, data.variant_ids, problems)
    draft.channels, channel_problems = _channels(session, organisation.id, data.channel_ids)
    problems += channel_problems
    if data.verdict_rule not in VERDICT_RULES:
        problems.append("Choose the verdict rule: the planned sample, or sequential.")
    if data.primary_metric is not None and data.primary_metric not in PRIMARY_METRICS:
        problems.append("Choose the primary metric: clicks per impression or clicks per post.")
    if not 3600 <= data.report_age_seconds <= MAX_REPORT_AGE_SECONDS:
        problems.append("Compare posts at an age from 1 hour to 90 days.")
    draft.metric = data.primary_metric or plans.default_metric(draft.channels)
    draft.metric_note = plans.metric_note(draft.metric, draft.channels)
    if problems:
        return draft
    past = plans.history(
        session, organisation.id, [c.id for c in draft.channels], data.report_age_seconds
    )
    try:
        draft.plan = plans.power_plan(
            len(draft.variants), data.verdict_rule, data.alpha, data.minimum_lift,
            data.baseline_rate, data.impressions_per_post, past, data.posts_per_arm,
        )  # fmt: skip
        draft.slot_times = _slot_times(session, organisation, data, draft, now)
        slots.check_count(len(draft.slot_times), len(draft.variants))
        draft.warnings += _blackout_warnings(session, organisation, draft.slot_times)
    except ServiceError as exc:
        problems.append(str(exc))
    return draft


def get_message(session: Session, organisation_id: int, message_id: int) -> Message:
    """A message of this organisation with its variants; NotFound otherwise."""
    found = session.scalar(
        select(Message)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.id == message_id, Campaign.organisation_id == organisation_id)
        .options(selectinload(Message.variants))
    )
    if found is None:
        raise NotFound("no such message")
    return found


def _variants(message: Message, wanted: Sequence[int], problems: list[str]) -> list[Variant]:
    ids = list(dict.fromkeys(wanted))
    of_message = {v.id: v for v in message.variants}
    if any(i not in of_message for i in ids):
        problems.append("Choose variants of this message only.")
    chosen = [of_message[i] for i in ids if i in of_message]
    if not MIN_ARMS <= len(chosen) <= MAX_ARMS:
        problems.append(
            f"Choose {MIN_ARMS} to {MAX_ARMS} variants (the first one is the control); "
            f"{len(chosen)} chosen."
        )
    return chosen


def _channels(
    session: Session, organisation_id: int, wanted: Sequence[int]
) -> tuple[list[Channel], list[str]]:
    ids = list(dict.fromkeys(wanted))
    if not ids:
        return [], ["Choose at least one channel."]
    found = {
        c.id: c
        for c in session.scalars(
            select(Channel).where(Channel.id.in_(ids), Channel.organisation_id == organisation_id)
        )
    }
    problems = [f"Channel {i} does not exist." for i in ids if i not in found]
    problems += [
        f"{c.display_name} is disabled; choose another channel."
        for c in found.values()
        if c.status == "disabled"
    ]
    return [found[i] for i in ids if i in found], problems


def _slot_times(
    session: Session,
    organisation: Organisation,
    data: ExperimentInput,
    draft: Draft,
    now: dt.datetime,
) -> list[slots.SlotTime]:
    assert draft.plan is not None
    arms, channels = len(draft.variants), draft.channels
    if data.times:
        times = slots.listed_times(data.times, organisation.timezone, now)
        return [slots.SlotTime(c.id, t) for c in channels for t in times]
    # Enough whole blocks on every channel for the planned posts per arm across the channels.
    blocks = -(-draft.plan.posts_per_arm // len(channels))
    slots.check_count(blocks * arms * len(channels), arms)
    found: list[slots.SlotTime] = []
    for channel in channels:
        times = slots.queue_times(
            session, channel, organisation.timezone, now, blocks * arms, set()
        )
        found += [slots.SlotTime(channel.id, t) for t in times]
    return found


def _blackout_warnings(
    session: Session, organisation: Organisation, chosen: Sequence[slots.SlotTime]
) -> list[str]:
    covering = scheduling.blackouts_covering(
        session, organisation.id, organisation.timezone, [s.at for s in chosen]
    )
    if not covering:
        return []
    names = ", ".join(scheduling.describe_key_date(k) for k in covering)
    return [
        f"Some times fall inside the blackout {names}: approval will refuse them, so list "
        "times outside it."
    ]


def create_experiment(
    session: Session,
    organisation: Organisation,
    data: ExperimentInput,
    actor: Actor,
    now: dt.datetime,
    seed: int | None = None,
) -> Experiment:
    """Save a planned experiment, its arms, slots and seeded assignment; refused with reasons."""
    _require(actor, Role.STAFF, "plan experiments")
    draft = check(session, organisation, data, now)
    if draft.problems:
        raise Refused(draft.problems)
    assert draft.plan is not None and draft.message is not None
    plan = draft.plan
    experiment = Experiment(
        organisation_id=organisation.id,
        message_id=draft.message.id,
        name=data.name.strip(),
        hypothesis=data.hypothesis.strip()[:MAX_TEXT],
        primary_metric=draft.metric,
        report_age_seconds=data.report_age_seconds,
        alpha=plan.alpha,
        minimum_lift=plan.minimum_lift,
        baseline_rate=plan.baseline_rate,
        planned_posts_per_arm=plan.posts_per_arm,
        planned_impressions_per_arm=plan.required_impressions_per_arm,
        verdict_rule=data.verdict_rule,
        seed=slots.new_seed() if seed is None else seed,
        status="planned",
        learning="",
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    for position, variant in enumerate(draft.variants):
        experiment.arms.append(
            ExperimentArm(variant_id=variant.id, name=variant.label[:120], position=position)
        )
    ordered = sorted(draft.slot_times, key=lambda s: (s.channel_id, s.at))
    per_channel: dict[int, int] = {}
    for slot in ordered:
        position = per_channel.get(slot.channel_id, 0)
        per_channel[slot.channel_id] = position + 1
        experiment.slots.append(
            ExperimentSlot(channel_id=slot.channel_id, scheduled_at=slot.at, position=position)
        )
    session.add(experiment)
    session.flush()
    _assign(experiment)
    session.flush()
    _audit(
        session, actor, "experiment.created", experiment, now,
        arms=[a.name for a in experiment.arms], channels=[c.display_name for c in draft.channels],
        primary_metric=experiment.primary_metric, verdict_rule=experiment.verdict_rule,
        planned_posts_per_arm=experiment.planned_posts_per_arm,
        planned_impressions_per_arm=experiment.planned_impressions_per_arm,
        slots=len(experiment.slots), seed=experiment.seed,
        plan=plan.sentences(), metric_note=draft.metric_note,
    )  # fmt: skip
    return experiment


def _assign(experiment: Experiment) -> None:
    ordered = sorted(experiment.slots, key=lambda s: (s.channel_id, s.scheduled_at))
    choice = slots.assign(
        [slots.SlotTime(s.channel_id, s.scheduled_at) for s in ordered],
        len(experiment.arms),
        experiment.seed,
    )
    for slot, arm_index in zip(ordered, choice, strict=True):
        slot.arm_id = experiment.arms[arm_index].id


def assignment(experiment: Experiment) -> list[int | None]:
    """The arm id of each slot, in (channel, time) order: what the seed decided."""
    ordered = sorted(experiment.slots, key=lambda s: (s.channel_id, s.scheduled_at))
    return [s.arm_id for s in ordered]


# --- changing -------------------------------------------------------------------------------


def update_experiment(
    session: Session,
    organisation: Organisation,
    experiment_id: int,
    name: str,
    hypothesis: str,
    actor: Actor,
    now: dt.datetime,
) -> Experiment:
    """Change the name and hypothesis while planned; refused once approved."""
    _require(actor, Role.STAFF, "change experiments")
    experiment = _locked(session, organisation.id, experiment_id)
    _still_planned(experiment, "changed")
    if not name.strip() or len(name.strip()) > 200:
        raise ServiceError("Give the experiment a name of at most 200 characters.")
    if not hypothesis.strip():
        raise ServiceError("Write the hypothesis: what you expect, and why.")
    before = {"name": experiment.name, "hypothesis": experiment.hypothesis}
    experiment.name, experiment.hypothesis = name.strip(), hypothesis.strip()[:MAX_TEXT]
    experiment.updated_at = now
    session.flush()
    _audit(session, actor, "experiment.edited", experiment, now, before=before)
    return experiment


def redraw(
    session: Session,
    organisation: Organisation,
    experiment_id: int,
    actor: Actor,
    now: dt.datetime,
    seed: int | None = None,
) -> Experiment:
    """Draw the assignment again with a new seed (a different one where one is possible)."""
    _require(actor, Role.STAFF, "re-draw assignments")
    experiment = _locked(session, organisation.id, experiment_id)
    _still_planned(experiment, "re-drawn")
    before, old_seed = assignment(experiment), experiment.seed
    for attempt in range(20):
        experiment.seed = seed if seed is not None and attempt == 0 else slots.new_seed()
        _assign(experiment)
        if assignment(experiment) != before:
            break
    experiment.updated_at = now
    session.flush()
    _audit(session, actor, "experiment.redrawn", experiment, now,
           old_seed=old_seed, seed=experiment.seed)  # fmt: skip
    return experiment


def approve(
    session: Session, organisation: Organisation, experiment_id: int, actor: Actor, now: dt.datetime
) -> Experiment:
    """Freeze the plan and make one approved post per slot with its arm's variant."""
    _require(actor, Role.MANAGER, "approve experiments")
    experiment = _locked(session, organisation.id, experiment_id)
    _still_planned(experiment, "approved")
    message = session.get(Message, experiment.message_id) if experiment.message_id else None
    arms = {a.id: a for a in experiment.arms}
    problems: list[str] = []
    for slot in sorted(experiment.slots, key=lambda s: (s.scheduled_at, s.channel_id)):
        arm = arms.get(slot.arm_id) if slot.arm_id is not None else None
        if arm is None or arm.variant is None:
            problems.append(f"A slot on {slot.channel.display_name} has no variant; re-draw.")
            continue
        data = PostInput(
            text=arm.variant.text,
            channel_ids=(slot.channel_id,),
            when=slot.scheduled_at.isoformat(),
            link_url=message.link_url if message else None,
            variant_id=arm.variant_id,
        )
        try:
            saved = posts.create_post(session, organisation, data, actor, now, submit=True)
        except ServiceError as exc:
            shown = format_local(slot.scheduled_at, organisation.timezone)
            reasons = exc.problems if isinstance(exc, posts.Refused) else [str(exc)]
            problems += [f"{slot.channel.display_name}, {shown}: {r}" for r in reasons]
            continue
        slot.post_id = saved.post.id
    if problems:
        raise Refused(problems)
    experiment.status = "running"
    experiment.approved_by_id, experiment.approved_at = actor.user_id, now
    experiment.updated_at = now
    session.flush()
    _audit(session, actor, "experiment.approved", experiment, now,
           posts=len(experiment.slots), seed=experiment.seed)  # fmt: skip
    return experiment


def conclude(
    session: Session,
    organisation: Organisation,
    experiment_id: int,
    decision: str,
    chosen_arm_id: int | None,
    learning: str,
    actor: Actor,
    now: dt.datetime,
) -> Experiment:
    """Record the decision and what was learnt; posts not yet sent are cancelled."""
    _require(actor, Role.MANAGER, "conclude experiments")
    experiment = _locked(session, organisation.id, experiment_id)
    if experiment.status != "running":
        raise ServiceError(
            f"Only a running experiment can be concluded; this one is {experiment.status}."
        )
    if decision not in DECISIONS:
        raise ServiceError("Choose the decision: " + ", ".join(DECISION_LABELS.values()) + ".")
    if not learning.strip():
        raise ServiceError("Write what you learnt: failed ideas are worth keeping too.")
    arms = {a.id: a for a in experiment.arms}
    if decision == "adopt_variant":
        if chosen_arm_id not in arms or arms[chosen_arm_id].is_control:
            raise ServiceError("Choose which variant (not the control) to adopt.")
    elif decision == "keep_control":
        chosen_arm_id = experiment.arms[0].id
    else:
        chosen_arm_id = None
    experiment.status, experiment.decision = "concluded", decision
    experiment.chosen_arm_id = chosen_arm_id
    experiment.learning = learning.strip()[:MAX_TEXT]
    experiment.concluded_by_id, experiment.concluded_at = actor.user_id, now
    experiment.updated_at = now
    cancelled = _cancel_unsent(session, organisation, experiment, actor, now)
    session.flush()
    _audit(session, actor, "experiment.concluded", experiment, now, decision=decision,
           chosen_arm=arms[chosen_arm_id].name if chosen_arm_id else None,
           cancelled_posts=cancelled)  # fmt: skip
    return experiment


def abandon(
    session: Session,
    organisation: Organisation,
    experiment_id: int,
    reason: str,
    actor: Actor,
    now: dt.datetime,
) -> Experiment:
    """Stop a planned or running experiment with a reason; posts not yet sent are cancelled."""
    _require(actor, Role.MANAGER, "abandon experiments")
    experiment = _locked(session, organisation.id, experiment_id)
    if experiment.status not in ("planned", "running"):
        raise ServiceError(f"This experiment is already {experiment.status}.")
    if not reason.strip():
        raise ServiceError("Say why it is abandoned, so the library keeps the lesson.")
    experiment.status = "abandoned"
    experiment.learning = reason.strip()[:MAX_TEXT]
    experiment.concluded_by_id, experiment.concluded_at = actor.user_id, now
    experiment.updated_at = now
    cancelled = _cancel_unsent(session, organisation, experiment, actor, now)
    session.flush()
    _audit(session, actor, "experiment.abandoned", experiment, now,
           reason=experiment.learning, cancelled_posts=cancelled)  # fmt: skip
    return experiment


# --- helpers --------------------------------------------------------------------------------


def _cancel_unsent(
    session: Session,
    organisation: Organisation,
    experiment: Experiment,
    actor: Actor,
    now: dt.datetime,
) -> int:
    """Cancel the experiment's posts none of whose deliveries has been tried; count them."""
    post_ids = [s.post_id for s in experiment.slots if s.post_id is not None]
    if not post_ids:
        return 0
    unsent = session.scalars(
        select(Post)
        .where(Post.id.in_(post_ids), Post.status != "cancelled")
        .options(selectinload(Post.deliveries))
    ).all()
    count = 0
    for post in unsent:
        if all(d.status == "scheduled" for d in post.deliveries):
            try:
                posts.cancel_post(session, organisation, post.id, actor, now)
            except ServiceError:
                continue  # it started publishing meanwhile: it counts as sent
            count += 1
    return count


def _locked(session: Session, organisation_id: int, experiment_id: int) -> Experiment:
    """The experiment, its row locked so two approvals or re-draws cannot interleave."""
    session.execute(
        select(Experiment.id)
        .where(Experiment.id == experiment_id, Experiment.organisation_id == organisation_id)
        .with_for_update()
    )
    found = get_experiment(session, organisation_id, experiment_id)
    session.refresh(found)
    return found


def _still_planned(experiment: Experiment, doing: str) -> None:
    if experiment.status != "planned":
        raise ServiceError(
            f"This experiment is {experiment.status}: its plan and assignment were fixed when it "
            f"was approved, so it cannot be {doing}."
        )


def _require(actor: Actor, role: Role, doing: str) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(role)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied(f"Only a {role.value} or above can {doing}.")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    experiment: Experiment,
    now: dt.datetime,
    **detail: object,
) -> None:
    record(session, actor, action, "experiment", experiment.id, now,
           organisation_id=experiment.organisation_id, **detail)  # fmt: skip
