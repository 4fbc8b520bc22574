"""The demo's vacancy alerts: sources reading the app's built-in example feeds, and two rules.

`add_vacancy_demo` runs inside the demo's load transaction (sources, an alerts channel with caps,
the rules and their template variants). `start_vacancy_feeds` runs after it has committed: it
polls the demo's sources through the real poller (the feeds come from
`campaign.vacancies.examples`, never the network) and plans the alerts, so a newcomer finds
vacancies, a source in error and queued alerts straight away. The worker carries on from there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaign.config import Settings
from campaign.models import Channel, Organisation, QueueSlot, VacancySource
from campaign.services import alert_rules, alerts, vacancy_sources
from campaign.services.alert_rules import RuleInput
from campaign.services.alerts import RuleFilters
from campaign.services.audit import Actor

SOURCES = (
    ("Example University job board (RSS)", "example:graduate-roles.rss", 60),
    ("Example placements board (job XML)", "example:placements.xml", 120),
    ("Greenway Consulting careers page (JSON-LD)", "example:employer-job-page.html", 240),
    ("Old partner feed (broken)", "example:broken-feed.xml", 240),
)
SINGLE_TEMPLATES = (
    (
        "Role first",
        "New vacancy: {{ title }}{% if employer %} at {{ employer }}{% endif %}"
        "{% if location %}, {{ location }}{% endif %}.{% if salary %} {{ salary }}.{% endif %}"
        "{% if closes_on %} Closes {{ closes_on }}.{% endif %} {{ url }}",
    ),
    (
        "Deadline first",
        "{% if closes_in_days != '' and closes_in_days <= 7 %}Closing soon: {% endif %}"
        "{{ title }}{% if employer %} with {{ employer }}{% endif %}"
        "{% if closes_on %}, apply by {{ closes_on }}{% endif %}. {{ url }}",
    ),
)
ALERT_TIMES = (dt.time(9, 0), dt.time(12, 30), dt.time(17, 0))
DIGEST_TEMPLATE = (
    "Placements and internships this week ({{ count }}):\n"
    "{% for v in vacancies %}- {{ v.title }}{% if v.employer %}, {{ v.employer }}{% endif %}"
    "{% if v.closes_on %} (closes {{ v.closes_on }}){% endif %}\n{% endfor %}"
    "All of them: https://www.example.ac.uk/careers/vacancies"
)


def add_vacancy_demo(
    session: Session,
    org: Organisation,
    manager: Actor,
    graduates: Channel,
    now: dt.datetime,
) -> Channel:
    """The demo's sources, an alerts channel (capped, quiet overnight) and two rules."""
    for name, url, minutes in SOURCES:
        session.add(
            VacancySource(
                organisation_id=org.id, name=name, kind="feed", url=url,
                poll_interval_minutes=minutes, withdraw_after_polls=3, enabled=True,
                next_poll_at=now, consecutive_errors=0, created_at=now,
            )
        )  # fmt: skip
    channel = Channel(
        organisation_id=org.id,
        kind="outbox",
        audience="students",
        display_name="Outbox: vacancy alerts",
        max_posts_per_hour=1,
        max_posts_per_day=4,
        created_at=now,
    )
    session.add(channel)
    session.flush()
    # Alerts take the channel's queue: weekdays at 09:00, 12:30 and 17:00 (organisation time).
    session.add_all(
        QueueSlot(channel_id=channel.id, weekday=day, at=at, created_at=now)
        for day in range(5)
        for at in ALERT_TIMES
    )
    [single_label, single_body], second = SINGLE_TEMPLATES
    rule = alert_rules.create_rule(
        session,
        org.id,
        RuleInput(
            name="Every graduate role, as it comes in",
            filters=RuleFilters(),
            channel_ids=(channel.id,),
            quiet_start=dt.time(21, 0),
            quiet_end=dt.time(8, 0),
        ),
        manager,
        now,
        template_label=single_label,
        template_body=single_body,
    )
    alert_rules.save_template(session, org.id, rule.id, second[0], second[1], manager, now)
    alert_rules.create_rule(
        session,
        org.id,
        RuleInput(
            name="Placements digest for graduates",
            filters=RuleFilters(keywords=("placement", "intern", "internship", "summer")),
            channel_ids=(graduates.id,),
            mode="digest",
            digest_max=5,
        ),
        manager,
        now,
        template_label="Weekly list",
        template_body=DIGEST_TEMPLATE,
    )
    return channel


@dataclass
class FeedsStarted:
    """What the first poll and plan of the demo's feeds did."""

    polled: list[vacancy_sources.PollOutcome] = field(default_factory=list)
    alert_posts: list[int] = field(default_factory=list)
    held_for_review: list[int] = field(default_factory=list)


def start_vacancy_feeds(
    factory: sessionmaker[Session], settings: Settings, organisation_id: int, now: dt.datetime
) -> FeedsStarted:
    """Poll the organisation's feed sources once and plan its alerts (after the load commits)."""
    with factory() as session:
        ids: Sequence[int] = session.scalars(
            select(VacancySource.id)
            .where(VacancySource.organisation_id == organisation_id, VacancySource.kind == "feed")
            .order_by(VacancySource.id)
        ).all()
    started = FeedsStarted()
    for source_id in ids:
        started.polled.append(vacancy_sources.poll_source(factory, settings, source_id, now))
    with factory.begin() as session:
        report = alerts.plan_alerts(session, now, organisation_id=organisation_id)
    started.alert_posts, started.held_for_review = list(report.posts), list(report.review)
    return started
