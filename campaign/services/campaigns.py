"""Reading campaigns, messages and variants within one organisation."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from campaign.models import Campaign, Channel, Delivery, Message, Post, Variant
from campaign.services import NotFound


def list_campaigns(
    session: Session, organisation_id: int, limit: int | None = None, *, archived: bool = False
) -> list[Campaign]:
    """Active campaigns (or, with `archived`, the archived ones), newest first, with messages,
    variants and tags loaded."""
    query = (
        select(Campaign)
        .where(Campaign.organisation_id == organisation_id, Campaign.archived.is_(archived))
        .options(
            selectinload(Campaign.messages)
            .selectinload(Message.variants)
            .selectinload(Variant.framing_tags)
        )
        .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def get_campaign(session: Session, organisation_id: int, campaign_id: int) -> Campaign:
    """One campaign of this organisation, with messages and variants; NotFound otherwise."""
    found = session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.organisation_id == organisation_id)
        .options(
            selectinload(Campaign.messages)
            .selectinload(Message.variants)
            .selectinload(Variant.framing_tags)
        )
    )
    if found is None:
        raise NotFound("no such campaign")
    return found


def list_channels(session: Session, organisation_id: int) -> list[Channel]:
    return list(
        session.scalars(
            select(Channel).where(Channel.organisation_id == organisation_id).order_by(Channel.id)
        )
    )


def list_upcoming_deliveries(
    session: Session, organisation_id: int, limit: int = 50
) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery)
            .join(Post)
            .where(Post.organisation_id == organisation_id)
            .options(selectinload(Delivery.post), selectinload(Delivery.channel))
            .order_by(Delivery.due_at)
            .limit(limit)
        )
    )


def count_by_status(session: Session, organisation_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Delivery.status, func.count(Delivery.id))
        .join(Post)
        .where(Post.organisation_id == organisation_id)
        .group_by(Delivery.status)
    )
    return {status: count for status, count in rows}


def count_archived(session: Session, organisation_id: int) -> int:
    query = select(func.count()).where(
        Campaign.organisation_id == organisation_id, Campaign.archived.is_(True)
    )
    return session.scalar(query) or 0
