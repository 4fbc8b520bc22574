"""A post's life: checked at draft time, scheduled onto channels, submitted, approved, cancelled.

A post always has a time and at least one channel, so it has one delivery per channel from the
start. The publishing engine claims a delivery only while its post is `approved`, which is what
makes "unapproved posts never publish" hold even against a stale page or a racing request.

Every change locks the post's deliveries first (`FOR UPDATE` on PostgreSQL; SQLite transactions
here start with BEGIN IMMEDIATE) and proceeds only if none has started publishing, so an edit
or a cancel either wins against the worker's claim or is refused with the reason.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaign.models import (
    AuditEvent,
    Campaign,
    Channel,
    Delivery,
    Message,
    Organisation,
    Post,
    Role,
    Variant,
)
from campaign.services import NotFound, PermissionDenied, ServiceError, scheduling
from campaign.services.audit import Actor, record
from campaign.services.local_time import Resolved, format_local, parse_local
from campaign.services.text_rules import ChannelLimits, TextCheck, check_text, normalised

MAX_LINK_LENGTH = 2000
# "Add to queue" passes over at most this many slots that fall inside blackouts.
MAX_BLACKED_OUT_SLOTS = 60
# Nothing is scheduled further ahead than this (and far-off years cannot overflow a datetime).
MAX_AHEAD = dt.timedelta(days=5 * 366)
# Deliveries in these states can still be given a new time or text: nothing was sent.
_CHANGEABLE = frozenset({"scheduled", "waiting", "cancelled"})
# A thread has at most this many replies after its first post.
MAX_THREAD_PARTS = 25
_EDITABLE_POSTS = frozenset({"draft", "pending_approval", "approved", "rejected"})


@dataclass(frozen=True)
class PostInput:
    """What a person (or the API, or a CSV row) asks for."""

    text: str
    channel_ids: tuple[int, ...]
    when: str | None = None  # wall time in the organisation's zone, or ISO 8601 with an offset
    use_queue: bool = False  # each channel's next free queue slot instead of `when`
    link_url: str | None = None
    variant_id: int | None = None
    blackout_override: str | None = None  # the reason, when it must go out inside a blackout


@dataclass
class Plan:
    """The checked input: per-channel verdicts, the times, and what stands in the way."""

    text: str
    channels: list[Channel]
    checks: list[TextCheck]
    times: dict[int, Resolved]  # channel id -> when
    problems: list[str] = field(default_factory=list)  # any of these refuses the save
    warnings: list[str] = field(default_factory=list)  # shown, but the save goes ahead
    notes: list[str] = field(default_factory=list)  # e.g. moved out of a DST gap
    blackout_override: str | None = None
    x_price: str | None = None  # dollars, when an X channel is chosen

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_time(self) -> dt.datetime | None:
        return min((r.utc for r in self.times.values()), default=None)


class PublishingNow(ServiceError):
    """A delivery of the post is being published right now (the API answers 409)."""


class Refused(ServiceError):
    """The post cannot be saved; `problems` lists every reason, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Saved:
    post: Post
    warnings: list[str]
    notes: list[str]


# --- reading -------------------------------------------------------------------------------


def get_post(session: Session, organisation_id: int, post_id: int) -> Post:
    found = session.scalar(
        select(Post)
        .where(Post.id == post_id, Post.organisation_id == organisation_id)
        .options(selectinload(Post.deliveries).selectinload(Delivery.channel))
    )
    if found is None:
        raise NotFound("no such post")
    return found


def history(session: Session, organisation_id: int, post_id: int) -> list[AuditEvent]:
    """The post's audit trail, oldest first."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.organisation_id == organisation_id,
                AuditEvent.subject_type == "post",
                AuditEvent.subject_id == post_id,
            )
            .order_by(AuditEvent.id)
        )
    )


def list_posts(
    session: Session,
    organisation_id: int,
    status: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[Post]:
    """Posts of the organisation by time, optionally of one status and in [start, end)."""
    query = (
        select(Post)
        .where(Post.organisation_id == organisation_id)
        .options(selectinload(Post.deliveries).selectinload(Delivery.channel))
        .order_by(Post.scheduled_for, Post.id)
        .offset(offset)
        .limit(limit)
    )
    if status is not None:
        query = query.where(Post.status == status)
    if start is not None:
        query = query.where(Post.scheduled_for >= start)
    if end is not None:
        query = query.where(Post.scheduled_for < end)
    return list(session.scalars(query))


# --- checking -------------------------------------------------------------------------------


def check(
    session: Session,
    organisation: Organisation,
    data: PostInput,
    now: dt.datetime,
    post_id: int | None = None,
    also_taken: Mapping[int, Iterable[dt.datetime]] | None = None,
) -> Plan:
    """Everything that decides whether `data` can be saved, without saving anything.

    `also_taken` holds queue times per channel id that count as used (rows of one CSV file).
    """
    text = normalised(data.text or "")
    channels, problems = _channels(session, organisation.id, data.channel_ids)
    checks = [check_text(text, ChannelLimits.of(c)) for c in channels]
    for channel, verdict in zip(channels, checks, strict=True):
        problems += [f"{channel.display_name}: {p}" for p in verdict.problems]
    plan = Plan(text=text, channels=channels, checks=checks, times={}, problems=problems)
    if data.link_url:
        plan.problems += _link_problems(data.link_url)
    if data.variant_id is not None:
        variant_of(session, organisation.id, data.variant_id)
    if any(c.kind == "x" for c in channels):
        plan.x_price = f"{scheduling.x_post_price(text):.3f}".rstrip("0").rstrip(".")
    if data.blackout_override and _has_controls(data.blackout_override):
        plan.problems.append("The blackout reason contains an invisible control character.")
    _plan_times(session, organisation, data, now, post_id, plan, also_taken or {})
    if plan.times and not plan.problems:
        _check_blackouts(session, organisation, data, plan)
        _warn_duplicates(session, organisation, plan, post_id)
    return plan


def _channels(
    session: Session, organisation_id: int, channel_ids: Sequence[int]
) -> tuple[list[Channel], list[str]]:
    if not channel_ids:
        return [], ["Choose at least one channel."]
    wanted = list(dict.fromkeys(channel_ids))
    found = {
        c.id: c
        for c in session.scalars(
            select(Channel).where(
                Channel.id.in_(wanted), Channel.organisation_id == organisation_id
            )
        )
    }
    problems = [f"Channel {i} does not exist." for i in wanted if i not in found]
    problems += [
        f"{c.display_name} is disabled; choose another channel."
        for c in found.values()
        if c.status == "disabled"
    ]
    return [found[i] for i in wanted if i in found], problems


def _link_problems(url: str) -> list[str]:
    from campaign.services.deliveries import check_post_url

    if len(url) > MAX_LINK_LENGTH:
        return [f"The link is too long: at most {MAX_LINK_LENGTH:,} characters."]
    try:
        check_post_url(url)
    except ServiceError as exc:
        return [
            str(exc)
            .replace("address of the published post", "link")
            .replace("The address", "The link")
        ]
    return []


def variant_of(session: Session, organisation_id: int, variant_id: int) -> Variant:
    """A variant of this organisation, with its message; NotFound otherwise."""
    found = session.scalar(
        select(Variant)
        .join(Message, Message.id == Variant.message_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Variant.id == variant_id, Campaign.organisation_id == organisation_id)
    )
    if found is None:
        raise NotFound("no such variant")
    return found


def _plan_times(
    session: Session,
    organisation: Organisation,
    data: PostInput,
    now: dt.datetime,
    post_id: int | None,
    plan: Plan,
    also_taken: Mapping[int, Iterable[dt.datetime]],
) -> None:
    if data.use_queue:
        for channel in plan.channels:
            try:
                found = _queue_time(
                    session, organisation, channel, now, post_id, data.blackout_override,
                    set(also_taken.get(channel.id, ())),
                )  # fmt: skip
            except ServiceError as exc:
                plan.problems.append(str(exc))
                continue
            plan.times[channel.id] = found
            if found.note:
                plan.notes.append(f"{channel.display_name}: {found.note}")
        return
    if not (data.when or "").strip():
        plan.problems.append("Choose a date and time, or add the post to the queue.")
        return
    try:
        when = parse_local(data.when or "", organisation.timezone)
    except OverflowError:
        plan.problems.append(f"{data.when!r} is too far from today to schedule.")
        return
    except ValueError as exc:
        plan.problems.append(str(exc))
        return
    if when.utc > now + MAX_AHEAD:
        plan.problems.append("That is more than five years ahead; choose a nearer time.")
        return
    if when.utc <= now:
        shown = format_local(when.utc, organisation.timezone)
        plan.problems.append(f"{shown} is in the past; choose a time from now on.")
        return
    if when.note:
        plan.notes.append(when.note)
    for channel in plan.channels:
        plan.times[channel.id] = when


def _queue_time(
    session: Session,
    organisation: Organisation,
    channel: Channel,
    now: dt.datetime,
    post_id: int | None,
    override: str | None,
    passed: set[dt.datetime],
) -> Resolved:
    """The next free queue slot; unless overridden, slots inside a blackout are passed over."""
    for _ in range(MAX_BLACKED_OUT_SLOTS):
        found = scheduling.next_queue_time(
            session, channel, organisation.timezone, now, post_id, also_taken=passed
        )
        if override or not scheduling.blackouts_covering(
            session, organisation.id, organisation.timezone, [found.utc]
        ):
            return found
        passed.add(found.utc)
    raise ServiceError(
        f"The next {MAX_BLACKED_OUT_SLOTS} queue slots of {channel.display_name} all fall in "
        "blackouts: pick a date and time, or give a reason to post inside the blackout."
    )


def _check_blackouts(
    session: Session, organisation: Organisation, data: PostInput, plan: Plan
) -> None:
    instants = [r.utc for r in plan.times.values()]
    covering = scheduling.blackouts_covering(
        session, organisation.id, organisation.timezone, instants
    )
    if not covering:
        return
    names = ", ".join(scheduling.describe_key_date(k) for k in covering)
    reason = (data.blackout_override or "").strip()
    if not reason:
        plan.problems.append(
            f"This falls inside the blackout {names}. Pick another time, or give a reason to "
            "post inside it anyway (the override is recorded)."
        )
        return
    plan.blackout_override = reason[:1000]
    plan.warnings.append(f"Posting inside the blackout {names}: {plan.blackout_override}")


def _warn_duplicates(
    session: Session, organisation: Organisation, plan: Plan, post_id: int | None
) -> None:
    window = dt.timedelta(hours=organisation.duplicate_window_hours)
    first = plan.first_time
    if first is None or window <= dt.timedelta(0):
        return
    seen: set[tuple[int, str]] = set()
    for dup in scheduling.find_duplicates(
        session, [c.id for c in plan.channels], plan.text, first, window, post_id
    ):
        if (dup.post_id, dup.channel_name) in seen:
            continue
        seen.add((dup.post_id, dup.channel_name))
        how = "The same text" if dup.identical else "Nearly the same text"
        plan.warnings.append(
            f"{how} is already planned on {dup.channel_name} for "
            f"{format_local(dup.due_at, organisation.timezone)} (post {dup.post_id})."
        )


# --- changing -------------------------------------------------------------------------------


def _require(actor: Actor, role: Role, doing: str) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(role)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied(f"Only a {role.value} or above can {doing}.")


def _is_manager(actor: Actor) -> bool:
    try:
        return actor.role is not None and Role(actor.role).covers(Role.MANAGER)
    except ValueError:
        return False


def _refuse(plan: Plan) -> None:
    if plan.problems:
        raise Refused(plan.problems)


def create_post(
    session: Session,
    organisation: Organisation,
    data: PostInput,
    actor: Actor,
    now: dt.datetime,
    submit: bool = False,
) -> Saved:
    """Save a checked post as a draft, or submit it at once; refused with every reason."""
    _require(actor, Role.STAFF, "write posts")
    plan = check(session, organisation, data, now)
    _refuse(plan)
    post = Post(
        organisation_id=organisation.id,
        variant_id=data.variant_id,
        text=plan.text,
        link_url=(data.link_url or "").strip() or None,
        status="draft",
        scheduled_for=plan.first_time,
        schedule_note=" ".join(plan.notes) or None,
        blackout_override=plan.blackout_override,
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    for channel in plan.channels:
        post.deliveries.append(
            Delivery(
                channel=channel,
                due_at=plan.times[channel.id].utc,
                idempotency_key=uuid.uuid4().hex,
                updated_at=now,
            )
        )
    session.add(post)
    session.flush()
    _audit(session, actor, "post.created", post, now, **_summary(post, plan))
    if plan.blackout_override:
        _audit(session, actor, "post.blackout_override", post, now, reason=plan.blackout_override)
    if submit:
        _submit(session, post, actor, now)
    return Saved(post, plan.warnings, plan.notes)


def add_thread_parts(
    session: Session, post: Post, texts: Sequence[str], actor: Actor, now: dt.datetime
) -> list[Delivery]:
    """Make the post the head of a thread: each text becomes a reply, in order, on every
    channel the post goes to. Each part is its own delivery (own key, attempts and state) and
    waits until the part before it is published (publishing.advance_threads).
    """
    if not texts:
        return []
    if len(texts) > MAX_THREAD_PARTS:
        raise ServiceError(f"A thread has at most {MAX_THREAD_PARTS} replies after its first post.")
    empty = [i for i, t in enumerate(texts, start=1) if not t.strip()]
    if empty:
        raise ServiceError(f"Reply {empty[0]} of the thread has no text.")
    if any(d.part > 0 for d in post.deliveries):
        raise ServiceError("This post is already a thread.")
    made = []
    for head in [d for d in post.heads if d.status != "cancelled"]:
        for number, text in enumerate(texts, start=1):
            part = Delivery(
                channel=head.channel,
                due_at=head.due_at,
                idempotency_key=uuid.uuid4().hex,
                updated_at=now,
                status="waiting",
                part=number,
                text=text,
            )
            post.deliveries.append(part)
            made.append(part)
    session.flush()
    _audit(session, actor, "post.thread", post, now, replies=len(texts))
    return made


def update_post(
    session: Session,
    organisation: Organisation,
    post_id: int,
    data: PostInput,
    actor: Actor,
    now: dt.datetime,
) -> Saved:
    """Change text, link, channels or time; refused once any delivery has started publishing."""
    _require(actor, Role.STAFF, "edit posts")
    post = _locked(session, organisation.id, post_id, "changed")
    plan = check(session, organisation, data, now, post_id=post.id)
    _refuse(plan)
    before = _summary(post, None)
    wanted = {c.id: c for c in plan.channels}
    current = {d.channel_id: d for d in post.heads}
    for channel_id in current:
        if channel_id not in wanted:
            for each in post.parts_of(channel_id):  # a thread goes with its first post
                each.status = "cancelled"
                each.updated_at = now
    for channel_id, channel in wanted.items():
        existing = current.get(channel_id)
        if existing is None:
            delivery = Delivery(channel=channel, idempotency_key=uuid.uuid4().hex)
            post.deliveries.append(delivery)
        else:
            delivery = existing
        revived = existing is not None and existing.status == "cancelled"
        delivery.due_at = plan.times[channel_id].utc
        delivery.status = "scheduled"
        delivery.next_attempt_at = None
        delivery.last_error = None
        delivery.updated_at = now
        for later in post.parts_of(channel_id)[1:]:
            # The thread's replies follow the new time; a reply cancelled on its own (its
            # vacancy closed) stays cancelled.
            if later.status == "waiting" or revived:
                later.due_at = delivery.due_at
                later.status = "waiting"
                later.last_error = None
                later.updated_at = now
    text_changed = plan.text != post.text or (data.link_url or None) != post.link_url
    post.text = plan.text
    post.link_url = (data.link_url or "").strip() or None
    if data.variant_id is not None:
        post.variant_id = data.variant_id
    post.scheduled_for = plan.first_time
    post.schedule_note = " ".join(plan.notes) or None
    post.blackout_override = plan.blackout_override
    post.updated_at = now
    if post.status == "rejected":
        post.status = "draft"
    elif post.status == "approved" and text_changed and _reapproval(post, actor):
        post.status = "pending_approval"  # what was approved is no longer what would go out
        post.approved_by_id = None
    session.flush()
    after = _summary(post, plan)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before.get(k) != after[k]}
    _audit(session, actor, "post.edited", post, now, changes=changed, status=post.status)
    if plan.blackout_override and plan.blackout_override != before.get("blackout_override"):
        _audit(session, actor, "post.blackout_override", post, now, reason=plan.blackout_override)
    return Saved(post, plan.warnings, plan.notes)


def submit_post(
    session: Session, organisation: Organisation, post_id: int, actor: Actor, now: dt.datetime
) -> Post:
    """Send a draft on: to a manager when a channel needs approval, else straight to the queue."""
    _require(actor, Role.STAFF, "submit posts")
    post = _locked(session, organisation.id, post_id, "submitted")
    if post.status not in ("draft", "rejected"):
        raise ServiceError(f"Only a draft can be submitted; this post is {_said(post.status)}.")
    _not_past(post, now, organisation)
    _submit(session, post, actor, now)
    return post


def _submit(session: Session, post: Post, actor: Actor, now: dt.datetime) -> None:
    post.submitted_by_id, post.submitted_at = actor.user_id, now
    post.review_comment = None
    _audit(session, actor, "post.submitted", post, now)
    if _needs_approval(post) and not _is_manager(actor):
        post.status = "pending_approval"
        session.flush()
        return
    post.status = "approved"
    post.approved_by_id = actor.user_id
    session.flush()
    if _needs_approval(post):
        _audit(session, actor, "post.approved", post, now, comment="approved by its manager author")
    _audit(session, actor, "post.scheduled", post, now, **_times(post))


def approve_post(
    session: Session,
    organisation: Organisation,
    post_id: int,
    actor: Actor,
    now: dt.datetime,
    comment: str = "",
) -> Post:
    _require(actor, Role.MANAGER, "approve posts")
    post = _locked(session, organisation.id, post_id, "approved")
    if post.status != "pending_approval":
        raise ServiceError(f"Only a post waiting for approval can be approved; this one is "
                           f"{_said(post.status)}.")  # fmt: skip
    _not_past(post, now, organisation)
    post.status = "approved"
    post.approved_by_id = post.reviewed_by_id = actor.user_id
    post.reviewed_at, post.review_comment = now, comment.strip()[:2000] or None
    session.flush()
    _audit(session, actor, "post.approved", post, now, comment=post.review_comment)
    _audit(session, actor, "post.scheduled", post, now, **_times(post))
    return post


def reject_post(
    session: Session,
    organisation: Organisation,
    post_id: int,
    actor: Actor,
    now: dt.datetime,
    comment: str,
) -> Post:
    _require(actor, Role.MANAGER, "reject posts")
    post = _locked(session, organisation.id, post_id, "rejected")
    if not comment.strip():
        raise ServiceError("Say why it is rejected, so its author can put it right.")
    if post.status != "pending_approval":
        raise ServiceError(f"Only a post waiting for approval can be rejected; this one is "
                           f"{_said(post.status)}.")  # fmt: skip
    post.status = "rejected"
    post.reviewed_by_id, post.reviewed_at = actor.user_id, now
    post.review_comment = comment.strip()[:2000]
    session.flush()
    _audit(session, actor, "post.rejected", post, now, comment=post.review_comment)
    return post


def cancel_post(
    session: Session, organisation: Organisation, post_id: int, actor: Actor, now: dt.datetime
) -> Post:
    """Cancel every delivery not yet sent; refused while one is being published."""
    _require(actor, Role.STAFF, "cancel posts")
    post = _locked(session, organisation.id, post_id, "cancelled", allow_sent=True)
    if post.status == "cancelled":
        raise ServiceError("This post is already cancelled.")
    cancelled = []
    for delivery in post.deliveries:
        if delivery.status in ("scheduled", "waiting") or _never_tried(delivery):
            delivery.status, delivery.updated_at = "cancelled", now
            if delivery.part == 0:
                cancelled.append(delivery.channel.display_name)
    post.status, post.updated_at = "cancelled", now
    session.flush()
    _audit(session, actor, "post.cancelled", post, now, channels=cancelled)
    return post


# --- helpers --------------------------------------------------------------------------------


def _locked(
    session: Session, organisation_id: int, post_id: int, doing: str, allow_sent: bool = False
) -> Post:
    """The post, with its deliveries locked against the worker; refused if one is on its way."""
    post = get_post(session, organisation_id, post_id)
    if post.status == "cancelled" and doing != "cancelled":
        raise ServiceError(f"This post is cancelled, so it cannot be {doing}.")
    if doing == "changed" and post.status not in _EDITABLE_POSTS:
        raise ServiceError(f"This post is {_said(post.status)}, so it cannot be changed.")
    locked = session.scalars(
        select(Delivery)
        .where(Delivery.post_id == post.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    busy = [d for d in locked if d.status == "publishing"]
    sent = [d for d in locked if d.status not in _CHANGEABLE and not _never_tried(d)]
    if busy:
        names = ", ".join(d.channel.display_name for d in busy)
        raise PublishingNow(
            f"It is being published on {names} right now, so it cannot be {doing}. "
            "Reload the page in a minute to see the outcome."
        )
    if sent and not allow_sent:
        names = ", ".join(f"{d.channel.display_name} ({_said(d.status)})" for d in sent)
        raise ServiceError(
            f"It has already gone out or been tried on {names}, so it cannot be {doing}; "
            "write a new post instead."
        )
    return post


def _never_tried(delivery: Delivery) -> bool:
    """Missed before any attempt (a draft whose time passed): nothing was sent."""
    return delivery.status == "missed" and delivery.attempts == 0


def _not_past(post: Post, now: dt.datetime, organisation: Organisation) -> None:
    due = [d.due_at for d in post.heads if d.status != "cancelled"]
    if not due:
        raise ServiceError("The post has no channel to go out on; edit it to choose one.")
    if min(due) <= now:
        shown = format_local(min(due), organisation.timezone)
        raise ServiceError(f"Its time ({shown}) has passed; edit the post to choose a new time.")


def _needs_approval(post: Post) -> bool:
    return any(d.channel.requires_approval for d in post.deliveries if d.status != "cancelled")


def _has_controls(text: str) -> bool:
    return any((ord(ch) < 32 and ch not in "\n\t") or ord(ch) == 127 for ch in text)


def _reapproval(post: Post, actor: Actor) -> bool:
    return _needs_approval(post) and not _is_manager(actor)


def _said(status: str) -> str:
    return status.replace("_", " ")


def _times(post: Post) -> dict[str, object]:
    return {
        "times": {
            d.channel.display_name: d.due_at.isoformat()
            for d in post.heads
            if d.status != "cancelled"
        }
    }


def _summary(post: Post, plan: Plan | None) -> dict[str, object]:
    channels = sorted(
        d.channel.display_name if d.channel else str(d.channel_id)
        for d in post.heads
        if d.status != "cancelled"
    )
    return {
        "text": post.text,
        "link_url": post.link_url,
        "channels": channels,
        **_times(post),
        "blackout_override": post.blackout_override,
    }


def _audit(
    session: Session, actor: Actor, action: str, post: Post, now: dt.datetime, **detail: object
) -> None:
    record(session, actor, action, "post", post.id, now, organisation_id=post.organisation_id,
           **detail)  # fmt: skip
