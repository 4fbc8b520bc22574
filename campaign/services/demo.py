"""The demo organisation: users of each role, outbox channels and contextualised campaigns."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import (
    Campaign,
    Channel,
    Delivery,
    FramingTag,
    KeyDate,
    Message,
    Organisation,
    Post,
    QueueSlot,
    Role,
    Variant,
)
from campaign.services import posts
from campaign.services.accounts import create_user
from campaign.services.audit import Actor
from campaign.services.demo_experiments import add_experiments
from campaign.services.demo_history import add_history
from campaign.services.demo_vacancies import add_vacancy_demo
from campaign.services.organisations import create_organisation
from campaign.services.posts import PostInput

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
    {
        "name": "Spring internships",
        "description": "Get second-years applying for summer internships before the spring deadlines.",
        "message": {
            "title": "Internship applications",
            "link_url": "https://www.example.ac.uk/careers/internships",
            "intent": "Second-year students start an internship application this month.",
            "context": "Most summer internships close in February; many students only look in May.",
        },
        "variants": (
            (
                "Statistic",
                "7 in 10 summer internships close before March. If you want one this summer, start now: https://www.example.ac.uk/careers/internships",
                ("statistic", "deadline_urgency"),
            ),
            (
                "Call to action",
                "Second year? Spend 20 minutes today shortlisting three internships, and we will check your application: https://www.example.ac.uk/careers/internships",
                ("call_to_action", "context"),
            ),
        ),
    },
)

# Weekly queue slots per channel audience: (weekday, hour, minute), in the organisation's zone.
_QUEUE = {"students": ((1, 10, 0), (3, 12, 30)), "graduates": ((2, 9, 30),)}


def load_demo(
    session: Session,
    hasher: PasswordHasher,
    now: dt.datetime,
    link_base_url: str = "http://127.0.0.1:5000",
    metric_ages: Sequence[str] = ("1h", "24h", "7d"),
) -> tuple[Organisation, bool]:
    """Load the demo organisation unless it exists; returns it and whether it was created.

    `link_base_url` is the app's public address, for the tracked links in its published
    history; `metric_ages` the ages at which that history's figures were read.
    """
    existing = session.scalar(select(Organisation).where(Organisation.slug == DEMO_SLUG))
    if existing is not None:
        return existing, False
    org = create_organisation(
        session, DEMO_SLUG, "Demo University Careers Service", "Europe/London", now
    )
    users = {}
    for login in DEMO_LOGINS:
        users[Role(login.role)] = create_user(
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
    # Posts to graduates go out only once a manager approves them.
    channels["graduates"].requires_approval = True
    session.add_all([*channels.values(), manual])
    session.flush()
    for audience, slots in _QUEUE.items():
        session.add_all(
            QueueSlot(channel_id=channels[audience].id, weekday=d, at=dt.time(h, m), created_at=now)
            for d, h, m in slots
        )
    session.add_all(_key_dates(org, now))
    tags = {
        tag.key: tag
        for tag in session.scalars(select(FramingTag).where(FramingTag.organisation_id == org.id))
    }
    staff = Actor(org.id, users[Role.STAFF].email, users[Role.STAFF].id, Role.STAFF.value)
    framings = [_add_campaign(session, org, spec, tags, now, staff) for spec in _CAMPAIGNS]
    # Two rounds through every framing fill about a term of the students' queue; a repeat
    # comes weeks after its first outing, well outside the duplicate guard's window.
    for _round in range(2):
        for variants in framings:
            for variant in variants:
                _queue(session, org, variant, (channels["students"].id,), staff, now)
    # The first message is also offered to graduates, whose channel needs approval.
    _queue(session, org, framings[0][0], (channels["graduates"].id,), staff, now)
    _add_soon_posts(session, org, channels["students"], manual, now)
    manager = Actor(org.id, users[Role.MANAGER].email, users[Role.MANAGER].id, Role.MANAGER.value)
    add_vacancy_demo(session, org, manager, channels["graduates"], now)
    # Weeks of published history, with clicks and figures (made last, so the planned posts
    # keep the first ids).
    history = add_history(session, channels["students"], framings, now, link_base_url, metric_ages)
    session.flush()
    add_experiments(session, org, channels["students"], framings, history, staff, manager, now)
    return org, True


def _key_dates(org: Organisation, now: dt.datetime) -> list[KeyDate]:
    """A UK academic year (September to August) around today, with boosts and blackouts."""
    year = now.date().year if now.date().month >= 9 else now.date().year - 1
    spans = (
        ("Autumn term", "term", "none", (year, 9, 28), (year, 12, 11)),
        ("Autumn careers fair", "careers_fair", "boost", (year, 10, 15), (year, 10, 15)),
        ("Graduate scheme deadlines peak", "deadline", "boost", (year, 11, 23), (year, 11, 30)),
        ("Winter closure", "other", "blackout", (year, 12, 24), (year + 1, 1, 1)),
        ("Spring term", "term", "none", (year + 1, 1, 11), (year + 1, 3, 19)),
        ("Internship fair", "careers_fair", "boost", (year + 1, 2, 10), (year + 1, 2, 10)),
        ("Summer term", "term", "none", (year + 1, 4, 19), (year + 1, 6, 18)),
        ("Exam period", "exams", "blackout", (year + 1, 5, 10), (year + 1, 5, 28)),
        ("Finalists' results", "results", "boost", (year + 1, 7, 2), (year + 1, 7, 2)),
    )
    return [
        KeyDate(
            organisation_id=org.id,
            title=title,
            kind=kind,
            effect=effect,
            starts_on=dt.date(*start),
            ends_on=dt.date(*end),
            created_at=now,
        )
        for title, kind, effect, start, end in spans
    ]


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
    now: dt.datetime,
    staff: Actor,
) -> list[Variant]:
    message_spec = spec["message"]
    assert isinstance(message_spec, dict)
    campaign = Campaign(
        organisation_id=org.id,
        name=str(spec["name"]),
        description=str(spec["description"]),
        goal=str(message_spec["intent"]),
        audience="students",
        owner_id=staff.user_id,
        created_at=now,
    )
    message = Message(campaign=campaign, created_at=now, **message_spec)
    session.add_all([campaign, message])
    variants = spec["variants"]
    assert isinstance(variants, tuple)
    found = [
        Variant(
            message=message,
            label=label,
            text=text,
            audience="students",
            framing_tags=[tags[key] for key in tag_keys],
            created_at=now,
        )
        for label, text, tag_keys in variants
    ]
    session.add_all(found)
    session.flush()
    return found


def _queue(
    session: Session,
    org: Organisation,
    variant: Variant,
    channel_ids: tuple[int, ...],
    staff: Actor,
    now: dt.datetime,
) -> None:
    data = PostInput(
        text=variant.text,
        channel_ids=channel_ids,
        use_queue=True,
        link_url=variant.message.link_url,
        variant_id=variant.id,
    )
    posts.create_post(session, org, data, staff, now, submit=True)
