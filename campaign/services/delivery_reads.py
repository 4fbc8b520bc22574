"""Reading deliveries and their attempts for the API, always inside one organisation."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaign.models import DELIVERY_STATUSES, Delivery, Post
from campaign.services import ServiceError


def find_deliveries(
    session: Session,
    organisation_id: int,
    states: list[str] | None = None,
    limit: int = 100,
    after_id: int | None = None,
) -> list[Delivery]:
    """Deliveries of the organisation by id, optionally in the given states, with attempts."""
    unknown = [s for s in states or [] if s not in DELIVERY_STATUSES]
    if unknown:
        raise ServiceError(
            f"unknown state {unknown[0]!r}; use one of {', '.join(DELIVERY_STATUSES)}"
        )
    query = (
        select(Delivery)
        .join(Post, Post.id == Delivery.post_id)
        .where(Post.organisation_id == organisation_id)
        .options(
            selectinload(Delivery.attempt_log),
            selectinload(Delivery.channel),
            selectinload(Delivery.post),
        )
        .order_by(Delivery.id)
        .limit(limit)
    )
    if states:
        query = query.where(Delivery.status.in_(states))
    if after_id is not None:
        query = query.where(Delivery.id > after_id)
    return list(session.scalars(query))
