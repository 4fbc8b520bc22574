"""The private iCal feed: which organisation an address serves, its events, and its secret.

The secret in the address is the only credential, so it is compared in constant time, never
written to the audit trail, and replaced or removed by an admin with immediate effect: the old
address is refused from the transaction's commit on. calendar_feed.build_calendar turns the events
into iCal bytes.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from campaign.models import Delivery, Organisation, Post, Role
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services.audit import Actor, record
from campaign.services.calendar_feed import FeedEvent
from campaign.services.calendar_view import STATUS_LABELS, deliveries_between, shown_status

# Recently published posts and the year ahead, bounded in count.
FEED_PAST = dt.timedelta(days=30)
FEED_AHEAD = dt.timedelta(days=365)
FEED_MAX_EVENTS = 2000
FEED_EVENT_LENGTH = dt.timedelta(minutes=15)
_FEED_POSTS = ("draft", "pending_approval", "approved")
_FEED_TENTATIVE = frozenset({"draft", "pending_approval"})
SECRET_BYTES = 32  # token_urlsafe(32) is 43 characters; the column holds 64


# --- changing the secret --------------------------------------------------------------------


def _organisation(session: Session, actor: Actor) -> Organisation:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(Role.ADMIN)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied("Only an admin can change the calendar feed.")
    found = session.get(Organisation, actor.organisation_id)
    if found is None:
        raise NotFound("no such organisation")
    return found


def regenerate_feed_secret(session: Session, actor: Actor, now: dt.datetime) -> str:
    """Give the actor's organisation a new feed secret (its first, or a replacement)."""
    organisation = _organisation(session, actor)
    action = (
        "calendar_feed.regenerated" if organisation.calendar_secret else "calendar_feed.created"
    )
    secret = secrets.token_urlsafe(SECRET_BYTES)
    organisation.calendar_secret = secret
    session.flush()
    record(session, actor, action, "organisation", organisation.id, now)
    return secret


def turn_off_feed(session: Session, actor: Actor, now: dt.datetime) -> None:
    """Remove the feed secret, so that no address serves the organisation's calendar."""
    organisation = _organisation(session, actor)
    if organisation.calendar_secret is None:
        raise ServiceError("The calendar feed is already off.")
    organisation.calendar_secret = None
    session.flush()
    record(session, actor, "calendar_feed.turned_off", "organisation", organisation.id, now)


# --- reading the feed ---------------------------------------------------------------------


def organisation_for_secret(session: Session, secret: str) -> Organisation | None:
    """The organisation whose feed secret this is, or None; compared in constant time."""
    if not secret or len(secret) > 64:
        return None
    found = session.scalar(select(Organisation).where(Organisation.calendar_secret == secret))
    if found is None or not found.calendar_secret:
        return None
    if not hmac.compare_digest(found.calendar_secret.encode(), secret.encode()):
        return None
    return found


def feed_events(
    session: Session,
    organisation_id: int,
    now: dt.datetime,
    link: Callable[[int, int], str | None] = lambda _post_id, _delivery_id: None,
    limit: int = FEED_MAX_EVENTS,
) -> list[FeedEvent]:
    """Planned posts (drafts and those awaiting approval as tentative) and recent publications.

    From FEED_PAST ago to FEED_AHEAD from `now`, soonest first, at most `limit`. `link` gives
    the address of a post's page (post id, delivery id), or None.
    """
    query = (
        deliveries_between(organisation_id, now - FEED_PAST, now + FEED_AHEAD)
        .where(
            Delivery.status.not_in(("cancelled", "failed", "missed")),
            or_(Post.status.in_(_FEED_POSTS), Delivery.status == "published"),
        )
        .order_by(Delivery.due_at, Delivery.id)
        .limit(limit)
    )
    events = []
    for d_id, post_id, d_status, due, p_status, text, _ch_id, channel_name in session.execute(
        query
    ):
        status = shown_status(p_status, d_status)
        label = STATUS_LABELS[status]
        events.append(
            FeedEvent(
                uid=f"delivery-{d_id}@campaign",
                start_utc=due,
                duration=FEED_EVENT_LENGTH,
                summary=f"{label} on {channel_name}: {_excerpt(text, 60)}",
                description=f"{text}\n\nState: {label}\nChannel: {channel_name}",
                status="TENTATIVE" if status in _FEED_TENTATIVE else "CONFIRMED",
                url=link(post_id, d_id),
            )
        )
    return events


def _excerpt(text: str, length: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"
