"""What people do about publishing: see deliveries, cancel, mark posted, publish again, channels.

The worker changes deliveries concurrently, so every change here is a compare-and-set: one
conditional UPDATE on the status the caller saw. On PostgreSQL it waits for a claiming
transaction's row lock and then sees the new status; a claim (SKIP LOCKED) skips a row that is
being changed here. Functions flush and never commit; every query is scoped to the organisation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Select, and_, func, select, update
from sqlalchemy.orm import Session, aliased, selectinload
from sqlalchemy.orm.util import identity_key

from campaign.models import Channel, Delivery, OutboxEntry, Post, Role
from campaign.services import NotFound, PermissionDenied, ServiceError, audit, links, publishing
from campaign.services.audit import Actor

VIEWS = ("upcoming", "attention", "published", "manual_due")
ATTENTION_STATUSES = ("failed", "missed", "needs_review", "unknown")
HEALTH_STATUSES = ("published", "failed", "missed", "needs_review", "unknown")
MANUAL_LEAD = dt.timedelta(hours=1)
HEALTH_WINDOW = dt.timedelta(days=7)
MAX_URL_LENGTH = 2000

# Why a delivery in each state cannot be cancelled or marked, in plain words.
_STATE_PHRASES = {
    "published": "already published",
    "cancelled": "already cancelled",
    "failed": "marked as failed, so nothing more will be sent",
    "missed": "marked as missed, so nothing more will be sent",
    "needs_review": "waiting for someone to check the account",
    "scheduled": "still scheduled",
    "waiting": "a later part of a thread, waiting for the part before it to be posted first",
}
_IN_FLIGHT_MESSAGE = (
    "This post is being published right now, so it can no longer be changed or cancelled."
)


@dataclass(frozen=True)
class TimelineEntry:
    """One post on an outbox channel's timeline."""

    id: int
    channel_id: int
    channel_name: str
    text: str
    link_url: str | None
    published_at: dt.datetime
    # A thread's reply: the timeline entry it answers (None for a post of its own).
    reply_to_entry: int | None = None


@dataclass(frozen=True)
class ChannelHealth:
    """A channel's state and its last seven days of outcomes."""

    channel: Channel
    counts: dict[str, int]
    last_published_at: dt.datetime | None
    latest_failure: str | None


def _in_org(organisation_id: int) -> ColumnElement[bool]:
    return Delivery.post_id.in_(select(Post.id).where(Post.organisation_id == organisation_id))


def _deliveries(organisation_id: int) -> Select[Delivery]:
    """The organisation's deliveries, each with its post and channel loaded."""
    return (
        select(Delivery)
        .where(_in_org(organisation_id))
        .options(selectinload(Delivery.post), selectinload(Delivery.channel))
    )


def list_deliveries(
    session: Session,
    organisation_id: int,
    view: str,
    limit: int = 100,
    *,
    now: dt.datetime | None = None,
) -> list[Delivery]:
    """One of the posts page's lists, with post and channel loaded; manual_due needs `now`."""
    query = _deliveries(organisation_id)
    if view == "upcoming":
        query = query.where(Delivery.status.in_(("scheduled", "publishing"))).order_by(
            Delivery.due_at, Delivery.id
        )
    elif view == "attention":
        query = query.where(Delivery.status.in_(ATTENTION_STATUSES)).order_by(
            Delivery.updated_at.desc(), Delivery.id.desc()
        )
    elif view == "published":
        query = query.where(Delivery.status == "published").order_by(
            Delivery.published_at.desc(), Delivery.id.desc()
        )
    elif view == "manual_due" and now is not None:
        query = _manual_due(query, now).order_by(Delivery.due_at, Delivery.id)
    else:
        raise ServiceError(f"unknown list {view!r}; use one of {', '.join(VIEWS)} (with now)")
    return list(session.scalars(query.limit(limit)))


def _manual_due(query: Select[Any], now: dt.datetime) -> Select[Any]:
    return query.where(
        Delivery.status == "scheduled",
        Delivery.due_at <= now + MANUAL_LEAD,
        Delivery.channel_id.in_(select(Channel.id).where(Channel.kind == "manual")),
    )


def count_manual_due(session: Session, organisation_id: int, now: dt.datetime) -> int:
    """How many manual deliveries are due by hand now or within the next hour."""
    query = _manual_due(select(func.count(Delivery.id)).where(_in_org(organisation_id)), now)
    return int(session.scalar(query) or 0)


def count_attention(session: Session, organisation_id: int) -> dict[str, int]:
    """How many deliveries are in each state that needs a person, zeros included."""
    rows = session.execute(
        select(Delivery.status, func.count(Delivery.id))
        .where(_in_org(organisation_id), Delivery.status.in_(ATTENTION_STATUSES))
        .group_by(Delivery.status)
    )
    return {status: 0 for status in ATTENTION_STATUSES} | {s: int(n) for s, n in rows}


def get_delivery(session: Session, organisation_id: int, delivery_id: int) -> Delivery:
    """One delivery of this organisation with its post, channel and attempts; NotFound otherwise."""
    found = session.scalar(
        _deliveries(organisation_id)
        .where(Delivery.id == delivery_id)
        .options(selectinload(Delivery.attempt_log))
    )
    if found is None:
        raise NotFound("no such delivery")
    return found


@dataclass(frozen=True)
class _Seen:
    status: str
    kind: str
    channel_status: str
    last_error: str | None
    post_status: str


def _current(session: Session, organisation_id: int, delivery_id: int) -> _Seen:
    """The delivery's state and its channel's, read afresh from the database."""
    row = session.execute(
        select(Delivery.status, Channel.kind, Channel.status, Delivery.last_error, Post.status)
        .join(Channel, Channel.id == Delivery.channel_id)
        .join(Post, Post.id == Delivery.post_id)
        .where(Delivery.id == delivery_id, _in_org(organisation_id))
    ).first()
    if row is None:
        raise NotFound("no such delivery")
    return _Seen(*row)


def _compare_and_set(
    session: Session, delivery_id: int, expected: str, now: dt.datetime, **values: object
) -> bool:
    """Change the delivery only if it is still in `expected`; False if someone moved it first."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == expected)
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    # The UPDATE bypassed the identity map; a loaded copy must not show the old state.
    loaded = session.identity_map.get(identity_key(Delivery, delivery_id))
    if loaded is not None:
        session.expire(loaded)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _audit(
    session: Session,
    organisation_id: int,
    actor: Actor,
    action: str,
    delivery_id: int,
    now: dt.datetime,
    **detail: object,
) -> None:
    audit.record(session, actor, action, "delivery", delivery_id, now, organisation_id, **detail)


def _refuse(status: str, doing: str) -> ServiceError:
    if status in ("publishing", "unknown"):
        return ServiceError(_IN_FLIGHT_MESSAGE)
    phrase = _STATE_PHRASES.get(status, status.replace("_", " "))
    return ServiceError(f"This post cannot be {doing}: it is {phrase}.")


def cancel_delivery(
    session: Session, organisation_id: int, delivery_id: int, actor: Actor, now: dt.datetime
) -> None:
    """Cancel a scheduled delivery (or a thread part waiting its turn), atomically against a
    worker claiming it. Cancelling a thread's first post stops its later parts; cancelling a
    later part passes over it (the next part answers the one before it)."""
    seen = _current(session, organisation_id, delivery_id)
    if seen.status not in ("scheduled", "waiting") or not _compare_and_set(
        session, delivery_id, seen.status, now, status="cancelled", next_attempt_at=None
    ):
        raise _refuse(_current(session, organisation_id, delivery_id).status, "cancelled")
    _audit(session, organisation_id, actor, "delivery.cancelled", delivery_id, now)
    publishing.advance_threads(session, now)


def check_post_url(url: str) -> str:
    """The address of a published post, trimmed; ServiceError naming what is wrong otherwise."""
    cleaned = (url or "").strip()
    if not cleaned:
        raise ServiceError("Enter the address (URL) of the published post.")
    if len(cleaned) > MAX_URL_LENGTH:
        raise ServiceError(f"The address is too long: at most {MAX_URL_LENGTH:,} characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in cleaned):
        raise ServiceError("The address must not contain spaces or line breaks.")
    parts = urlsplit(cleaned)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ServiceError("The address must be a web address starting with https:// or http://.")
    return cleaned


def mark_posted(
    session: Session,
    organisation_id: int,
    delivery_id: int,
    url: str,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """Record that a person posted it (a manual delivery, or one that needed a check)."""
    seen = _current(session, organisation_id, delivery_id)
    checked = check_post_url(url)
    by_hand = seen.kind == "manual" and seen.status in ("scheduled", "missed")
    if seen.status in ("scheduled", "missed") and not by_hand:
        raise ServiceError("This channel publishes by itself; only manual posts are marked here.")
    if not (by_hand or seen.status == "needs_review") or not _compare_and_set(
        session,
        delivery_id,
        seen.status,
        now,
        status="published",
        external_url=checked,
        published_at=now,
        posted_by_id=actor.user_id,
        last_error=None,
        next_attempt_at=None,
        lease_token=None,
        lease_expires_at=None,
    ):
        raise _refuse(_current(session, organisation_id, delivery_id).status, "marked as posted")
    publishing.advance_threads(session, now)  # the thread's next part may go now
    _audit(
        session,
        organisation_id,
        actor,
        "delivery.marked_posted",
        delivery_id,
        now,
        previous=seen.status,
        url=checked,
    )


def _require(actor: Actor, role: Role, doing: str) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(role)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied(f"Only a {role.value} or above can {doing}.")


def publish_again(
    session: Session, organisation_id: int, delivery_id: int, actor: Actor, now: dt.datetime
) -> None:
    """A manager sends a failed, missed or unconfirmed delivery again now, with the same key;
    a thread's later parts stopped because of it wait again to follow it."""
    _require(actor, Role.MANAGER, "publish a post again")
    seen = _current(session, organisation_id, delivery_id)
    again = seen.status in ("needs_review", "failed", "missed")
    # Either would only make it missed again a few minutes later: say so now instead.
    if again and seen.kind != "manual" and seen.channel_status != "active":
        raise ServiceError(
            f"Its channel is {seen.channel_status.replace('_', ' ')}: resume the channel first,"
            " or the post will be missed again."
        )
    if again and seen.post_status != "approved":
        raise ServiceError("The post is not approved, so it cannot be published; approve it first.")
    if not again or not _compare_and_set(
        session,
        delivery_id,
        seen.status,
        now,
        status="scheduled",
        due_at=now,
        next_attempt_at=None,
        attempts=0,
        lookups=0,
        last_error=None,
        lease_token=None,
        lease_expires_at=None,
    ):
        raise _refuse(_current(session, organisation_id, delivery_id).status, "published again")
    revived = publishing.revive_thread(session, delivery_id, now)
    _audit(
        session,
        organisation_id,
        actor,
        "delivery.republished",
        delivery_id,
        now,
        previous=seen.status,
        error=seen.last_error,
        **({"thread_parts_waiting_again": revived} if revived else {}),
    )


def manual_text(session: Session, delivery: Delivery, link_base_url: str) -> str:
    """The exact text staff paste into the network for a manual delivery: each URL in it is
    its tracked link, made now if need be (in the caller's transaction; the caller commits)."""
    if delivery.channel.kind != "manual":
        return delivery.post.text
    published = links.ensure_links(session, [delivery.id], link_base_url)
    return published[delivery.id].text if delivery.id in published else delivery.post.text


def list_timeline(
    session: Session, organisation_id: int, channel_id: int | None = None, limit: int = 100
) -> list[TimelineEntry]:
    """The organisation's outbox timeline, newest first; a foreign channel is NotFound."""
    query = (
        select(OutboxEntry, Channel.display_name)
        .join(Channel, Channel.id == OutboxEntry.channel_id)
        .where(Channel.organisation_id == organisation_id, Channel.kind == "outbox")
    )
    if channel_id is not None:
        owned = session.scalar(
            select(Channel.id).where(
                Channel.id == channel_id,
                Channel.organisation_id == organisation_id,
                Channel.kind == "outbox",
            )
        )
        if owned is None:
            raise NotFound("no such outbox channel")
        query = query.where(Channel.id == channel_id)
    rows = session.execute(
        query.add_columns(Delivery.id)
        .outerjoin(Delivery, Delivery.idempotency_key == OutboxEntry.idempotency_key)
        .order_by(OutboxEntry.published_at.desc(), OutboxEntry.id.desc())
        .limit(limit)
    ).all()
    answers = _replied_entries(session, [d for _e, _n, d in rows if d is not None])
    return [
        TimelineEntry(
            e.id, e.channel_id, name, e.text, e.link_url, e.published_at,
            answers.get(delivery_id) if delivery_id is not None else None,
        )
        for e, name, delivery_id in rows
    ]  # fmt: skip


def _replied_entries(session: Session, delivery_ids: list[int]) -> dict[int, int]:
    """For outbox deliveries that are thread replies: the timeline entry each answers (the
    nearest earlier published part of its thread)."""
    me, other = aliased(Delivery), aliased(Delivery)
    rows = session.execute(
        select(me.id, other.part, other.external_id)
        .join(other, and_(other.post_id == me.post_id, other.channel_id == me.channel_id))
        .where(
            me.id.in_(delivery_ids),
            me.part > 0,
            other.part < me.part,
            other.status == "published",
        )
        .order_by(me.id, other.part)
    ).all()
    found: dict[int, int] = {}
    for delivery_id, _part, external_id in rows:
        prefix, _, number = (external_id or "").partition("-")
        if prefix == "outbox" and number.isdigit():
            found[delivery_id] = int(number)  # the last (nearest) one wins
    return found


def list_outbox_channels(session: Session, organisation_id: int) -> list[Channel]:
    """The organisation's outbox channels, oldest first (the timeline's filters)."""
    return list(
        session.scalars(
            select(Channel)
            .where(Channel.organisation_id == organisation_id, Channel.kind == "outbox")
            .order_by(Channel.id)
        )
    )


def channel_health(session: Session, organisation_id: int, now: dt.datetime) -> list[ChannelHealth]:
    """Each channel's status, why, its last seven days of outcomes and its latest failure."""
    channels = list(
        session.scalars(
            select(Channel).where(Channel.organisation_id == organisation_id).order_by(Channel.id)
        )
    )
    ids = [c.id for c in channels]
    counts: dict[int, dict[str, int]] = {i: dict.fromkeys(HEALTH_STATUSES, 0) for i in ids}
    for channel_id, status, n in session.execute(
        select(Delivery.channel_id, Delivery.status, func.count(Delivery.id))
        .where(
            Delivery.channel_id.in_(ids),
            Delivery.status.in_(HEALTH_STATUSES),
            Delivery.updated_at >= now - HEALTH_WINDOW,
        )
        .group_by(Delivery.channel_id, Delivery.status)
    ):
        counts[channel_id][status] = int(n)
    last_published = dict(
        session.execute(
            select(Delivery.channel_id, func.max(Delivery.published_at))
            .where(Delivery.channel_id.in_(ids), Delivery.status == "published")
            .group_by(Delivery.channel_id)
        ).all()
    )
    ranked = (
        select(
            Delivery.channel_id,
            Delivery.last_error,
            func.row_number()
            .over(
                partition_by=Delivery.channel_id,
                order_by=(Delivery.updated_at.desc(), Delivery.id.desc()),
            )
            .label("rank"),
        )
        .where(
            Delivery.channel_id.in_(ids),
            Delivery.status == "failed",
            Delivery.last_error.is_not(None),
        )
        .subquery()
    )
    failures: dict[int, str] = {
        channel_id: error
        for channel_id, error in session.execute(
            select(ranked.c.channel_id, ranked.c.last_error).where(ranked.c.rank == 1)
        )
    }
    return [
        ChannelHealth(c, counts[c.id], last_published.get(c.id), failures.get(c.id))
        for c in channels
    ]


def _set_channel_status(
    session: Session,
    organisation_id: int,
    channel_id: int,
    allowed_from: tuple[str, ...],
    to: str,
    detail: str | None,
    actor: Actor,
    now: dt.datetime,
) -> None:
    channel = session.scalar(
        select(Channel).where(Channel.id == channel_id, Channel.organisation_id == organisation_id)
    )
    if channel is None:
        raise NotFound("no such channel")
    previous, previous_detail = channel.status, channel.status_detail
    changed = 0
    if previous in allowed_from:
        result = session.execute(
            update(Channel)
            .where(Channel.id == channel_id, Channel.status == previous)
            .values(status=to, status_detail=detail)
            .execution_options(synchronize_session=False)
        )
        changed = result.rowcount  # type: ignore[attr-defined]
    session.expire(channel)
    if not changed:
        raise ServiceError(
            f"The channel is {previous.replace('_', ' ')}, so it cannot be "
            f"{'resumed' if to == 'active' else 'paused'}."
        )
    action = "channel.resumed" if to == "active" else "channel.paused"
    audit.record(
        session,
        actor,
        action,
        "channel",
        channel_id,
        now,
        organisation_id=organisation_id,
        previous=previous,
        previous_detail=previous_detail,
    )
    session.flush()


def resume_channel(
    session: Session, organisation_id: int, channel_id: int, actor: Actor, now: dt.datetime
) -> None:
    """An admin puts a paused or reconnect-needed channel back into service."""
    _require(actor, Role.ADMIN, "resume a channel")
    _set_channel_status(
        session, organisation_id, channel_id, ("paused", "needs_reauth"), "active", None, actor, now
    )


def pause_channel(
    session: Session, organisation_id: int, channel_id: int, actor: Actor, now: dt.datetime
) -> None:
    """A manager stops publishing to an active channel until an admin resumes it."""
    _require(actor, Role.MANAGER, "pause a channel")
    detail = f"Paused by {actor.label} on {now:%Y-%m-%d %H:%M} UTC."
    _set_channel_status(
        session, organisation_id, channel_id, ("active",), "paused", detail, actor, now
    )
