"""Recording state changes in the audit trail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, an API token or the system (worker, CLI)."""

    organisation_id: int
    label: str
    user_id: int | None = None
    role: str | None = None


def list_events(
    session: Session, organisation_id: int, limit: int = 100, before_id: int | None = None
) -> list[AuditEvent]:
    """The organisation's most recent audit events, newest first, paged by id."""
    query = select(AuditEvent).where(AuditEvent.organisation_id == organisation_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    subject_type: str,
    subject_id: int | None,
    now: dt.datetime,
    organisation_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add one audit event; it is written with the caller's transaction."""
    event = AuditEvent(
        organisation_id=organisation_id
        if organisation_id is not None
        else (actor and actor.organisation_id),
        actor_user_id=actor.user_id if actor else None,
        actor_label=actor.label if actor else "system",
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=detail,
        created_at=now,
    )
    session.add(event)
    return event
