"""Creating and looking up organisations."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import DEFAULT_FRAMING_TAGS, FramingTag, Organisation
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services.audit import Actor, record

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$")


def create_organisation(
    session: Session, slug: str, name: str, timezone: str, now: dt.datetime
) -> Organisation:
    """A new organisation with the default framing-tag vocabulary."""
    if not SLUG_PATTERN.match(slug):
        raise ServiceError(f"slug {slug!r} must be 3-80 lowercase letters, digits or hyphens")
    if session.scalar(select(Organisation.id).where(Organisation.slug == slug)) is not None:
        raise ServiceError(f"an organisation with slug {slug!r} already exists")
    try:
        org = Organisation(
            slug=slug,
            name=name,
            timezone=timezone,
            calendar_secret=secrets.token_urlsafe(24),
            created_at=now,
        )
    except ValueError as exc:
        raise ServiceError(str(exc)) from exc
    session.add(org)
    for position, (key, label) in enumerate(DEFAULT_FRAMING_TAGS):
        session.add(FramingTag(organisation=org, key=key, label=label, position=position))
    session.flush()
    return org


def get_organisation_by_slug(session: Session, slug: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if org is None:
        raise NotFound(f"no organisation with slug {slug!r}")
    return org


MAX_DUPLICATE_WINDOW_HOURS = 24 * 60


def set_duplicate_window(
    session: Session, organisation_id: int, hours: int, actor: Actor, now: dt.datetime
) -> Organisation:
    """How far either side of a post the duplicate guard looks (0 turns it off); admins only."""
    if actor.role != "admin" or actor.organisation_id != organisation_id:
        raise PermissionDenied("Only an admin can change the duplicate guard.")
    if not 0 <= hours <= MAX_DUPLICATE_WINDOW_HOURS:
        raise ServiceError(
            f"The duplicate guard's window is between 0 (off) and {MAX_DUPLICATE_WINDOW_HOURS} "
            "hours."
        )
    org = session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound("no such organisation")
    before = org.duplicate_window_hours
    org.duplicate_window_hours = hours
    session.flush()
    record(session, actor, "organisation.duplicate_window", "organisation", org.id, now,
           organisation_id=org.id, changes={"hours": {"from": before, "to": hours}})  # fmt: skip
    return org
