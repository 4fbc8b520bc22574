"""Valid objects with defaults you can override, built through the services where they exist."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from campaign.models import (
    Campaign,
    Channel,
    Delivery,
    Message,
    Organisation,
    Post,
    Role,
    User,
    Variant,
)
from campaign.services.accounts import create_user
from campaign.services.organisations import create_organisation
from campaign.services.publishing import EngineRules
from campaign.services.tokens import create_token

PASSWORD = "correct-horse-battery"

# Engine timings for tests that drive dispatch directly: no lookup delay, small caps.
ENGINE_RULES = EngineRules(
    lease=dt.timedelta(seconds=60),
    grace=dt.timedelta(minutes=15),
    max_attempts=3,
    max_lookups=2,
    batch_size=50,
    backoff_base=30.0,
    backoff_max=600.0,
    lookup_delay=dt.timedelta(0),
)


def make_org(
    db: Session, slug: str, now: dt.datetime, timezone: str = "Europe/London"
) -> Organisation:
    return create_organisation(db, slug, slug.replace("-", " ").title(), timezone, now)


def make_user(
    db: Session,
    org: Organisation,
    role: Role,
    hasher: Any,
    now: dt.datetime,
    email: str | None = None,
) -> User:
    email = email or f"{role.value}-{uuid.uuid4().hex[:6]}@{org.slug}.example"
    return create_user(db, org.id, email, PASSWORD, role, "", hasher, None, now)


def make_campaign(
    db: Session, org: Organisation, now: dt.datetime, name: str = "Exam season"
) -> Campaign:
    campaign = Campaign(
        organisation_id=org.id, name=name, description="Why study pays", created_at=now
    )
    message = Message(
        campaign=campaign, title="Outcomes", link_url="https://example.ac.uk/o", created_at=now
    )
    Variant(
        message=message,
        label="Bare",
        text="https://example.ac.uk/o",
        audience="students",
        created_at=now,
    )
    db.add(campaign)
    db.flush()
    return campaign


def make_channel(
    db: Session, org: Organisation, now: dt.datetime, audience: str = "students"
) -> Channel:
    channel = Channel(
        organisation_id=org.id,
        kind="outbox",
        display_name=f"Outbox {audience}",
        audience=audience,
        created_at=now,
    )
    db.add(channel)
    db.flush()
    return channel


def make_post(
    db: Session, org: Organisation, channel: Channel, due: dt.datetime, now: dt.datetime
) -> Post:
    post = Post(
        organisation_id=org.id, text="Hello", status="approved", scheduled_for=due, created_at=now
    )
    post.deliveries.append(
        Delivery(channel=channel, due_at=due, idempotency_key=uuid.uuid4().hex, updated_at=now)
    )
    db.add(post)
    db.flush()
    return post


@dataclass
class OrgWorld:
    org: Organisation
    staff: User
    manager: User
    admin: User
    campaign: Campaign
    channel: Channel
    token_id: int


@dataclass
class World:
    home: OrgWorld
    other: OrgWorld


def _org_world(db: Session, slug: str, hasher: Any, now: dt.datetime) -> OrgWorld:
    org = make_org(db, slug, now)
    users = {
        role: make_user(db, org, role, hasher, now, f"{role.value}@{slug}.example") for role in Role
    }
    campaign = make_campaign(db, org, now)
    channel = make_channel(db, org, now)
    make_post(db, org, channel, now + dt.timedelta(hours=2), now)
    token, _plain = create_token(db, org.id, "feed", ["read"], None, now)
    return OrgWorld(
        org, users[Role.STAFF], users[Role.MANAGER], users[Role.ADMIN], campaign, channel, token.id
    )


def build_world(db: Session, hasher: Any, now: dt.datetime) -> World:
    return World(
        home=_org_world(db, "home-uni", hasher, now), other=_org_world(db, "other-uni", hasher, now)
    )
