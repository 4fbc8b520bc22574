"""The demo organisation: users of each role, outbox channels and contextualised campaigns."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import (
    Campaign,
    Channel,
    Delivery,
    FramingTag,
    Message,
    Organisation,
    Post,
    Role,
    Variant,
)
from campaign.services.accounts import create_user
from campaign.services.organisations import create_organisation

DEMO_SLUG = "demo"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin("staff@demo.example", "demo-staff-password", Role.STAFF.value),
    DemoLogin("manager@demo.example", "demo-manager-password", Role.MANAGER.value),
    DemoLogin("admin@demo.example", "demo-admin-password", Role.ADMIN.value),
)

_CAMPAIGNS = (
    {
        "name": "Exam season: is it worth it?",
        "description": "Reassure students during exams that study pays off, with the earnings evidence.",
        "message": {
            "title": "Graduate earnings premium",
            "link_url": "https://www.example.ac.uk/careers/graduate-outcomes",
            "intent": "Students open the graduate outcomes page during exam season.",
            "context": "Exams start in May; students doubt whether a degree pays off.",
        },
        "variants": (
            (
                "Bare link",
                "Graduate outcomes for our courses: https://www.example.ac.uk/careers/graduate-outcomes",
                ("bare_link",),
            ),
            (
                "Context",
                "With exams coming up, you may wonder if all this study is worth it. Most graduates earn more over their lifetime. See what our graduates went on to do: https://www.example.ac.uk/careers/graduate-outcomes",
                ("context", "statistic"),
            ),
            (
                "Question",
                "Is all this revision worth it? Here is what happened to last year's graduates: https://www.example.ac.uk/careers/graduate-outcomes",
                ("question", "context"),
            ),
        ),
    },
    {
        "name": "Autumn careers fair",
        "description": "Drive bookings for the autumn careers fair, 120 employers on campus.",
        "message": {
            "title": "Careers fair bookings",
            "link_url": "https://www.example.ac.uk/careers/fair",
            "intent": "Final-year students book a fair slot before places run out.",
            "context": "The fair is on 15 October; bookings close on 10 October.",
        },
        "variants": (
            (
                "Deadline",
                "Bookings for the careers fair close on Friday. 120 employers, one afternoon: https://www.example.ac.uk/careers/fair",
                ("deadline_urgency", "call_to_action"),
            ),
            (
                "Story",
                "Last year Amira met her graduate employer at our fair. This year 120 employers are coming: https://www.example.ac.uk/careers/fair",
                ("story",),
            ),
        ),
    },
)


def load_demo(
    session: Session, hasher: PasswordHasher, now: dt.datetime
) -> tuple[Organisation, bool]:
    """Load the demo organisation unless it exists; returns it and whether it was created."""
    existing = session.scalar(select(Organisation).where(Organisation.slug == DEMO_SLUG))
    if existing is not None:
        return existing, False
    org = create_organisation(
        session, DEMO_SLUG, "Demo University Careers Service", "Europe/London", now
    )
    for login in DEMO_LOGINS:
        create_user(
            session,
            org.id,
            login.email,
            login.password,
            Role(login.role),
            f"Demo {login.role}",
            hasher,
            None,
            now,
        )
    channels = {
        audience: Channel(
            organisation_id=org.id,
            kind="outbox",
            audience=audience,
            display_name=f"Outbox: {audience}",
            created_at=now,
        )
        for audience in ("students", "graduates", "employers")
    }
    manual = Channel(
        organisation_id=org.id,
        kind="manual",
        audience="graduates",
        display_name="LinkedIn page (posted by hand)",
        created_at=now,
    )
    session.add_all([*channels.values(), manual])
    tags = {
        tag.key: tag
        for tag in session.scalars(select(FramingTag).where(FramingTag.organisation_id == org.id))
    }
    for offset, spec in enumerate(_CAMPAIGNS):
        _add_campaign(
            session, org, spec, tags, channels["students"], now + dt.timedelta(days=offset + 1), now
        )
    _add_soon_posts(session, org, channels["students"], manual, now)
    session.flush()
    return org, True


def _add_soon_posts(
    session: Session, org: Organisation, outbox: Channel, manual: Channel, now: dt.datetime
) -> None:
    """Posts due minutes after loading, so a newcomer sees the worker publish and remind."""
    soon = (
        (
            outbox,
            2,
            "Welcome back! Drop-in careers appointments run every weekday, 10:00 to 16:00, "
            "in the Student Hub: https://www.example.ac.uk/careers/drop-in",
        ),
        (
            manual,
            5,
            "Graduates: our free careers support lasts three years after you finish. "
            "Book a call with an adviser: https://www.example.ac.uk/careers/graduates",
        ),
    )
    for channel, minutes, text in soon:
        due = now + dt.timedelta(minutes=minutes)
        post = Post(
            organisation_id=org.id,
            text=text,
            link_url=text.rsplit(" ", 1)[-1],
            status="approved",
            scheduled_for=due,
            created_at=now,
        )
        post.deliveries.append(
            Delivery(channel=channel, due_at=due, idempotency_key=uuid.uuid4().hex, updated_at=now)
        )
        session.add(post)


def _add_campaign(
    session: Session,
    org: Organisation,
    spec: Mapping[str, object],
    tags: dict[str, FramingTag],
    channel: Channel,
    first_slot: dt.datetime,
    now: dt.datetime,
) -> None:
    campaign = Campaign(
        organisation_id=org.id,
        name=str(spec["name"]),
        description=str(spec["description"]),
        created_at=now,
    )
    message_spec = spec["message"]
    assert isinstance(message_spec, dict)
    message = Message(campaign=campaign, created_at=now, **message_spec)
    session.add_all([campaign, message])
    variants = spec["variants"]
    assert isinstance(variants, tuple)
    for index, (label, text, tag_keys) in enumerate(variants):
        variant = Variant(
            message=message,
            label=label,
            text=text,
            audience=channel.audience,
            framing_tags=[tags[key] for key in tag_keys],
            created_at=now,
        )
        # Local 10:00 on successive days keeps the demo's posts in comparable slots.
        slot = (
            (first_slot + dt.timedelta(days=index))
            .astimezone(org.zone)
            .replace(hour=10, minute=0, second=0, microsecond=0)
        )
        post = Post(
            organisation_id=org.id,
            variant=variant,
            text=text,
            link_url=message.link_url,
            status="approved",
            scheduled_for=slot,
            created_at=now,
        )
        post.deliveries.append(
            Delivery(channel=channel, due_at=slot, idempotency_key=uuid.uuid4().hex, updated_at=now)
        )
        session.add_all([variant, post])
