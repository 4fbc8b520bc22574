"""Never after closing, end to end: a queued alert whose vacancy closes is cancelled by the
worker's dispatch housekeeping and never published, on SQLite and PostgreSQL.

Vacancies come from a feed source polled through `poll_source` (only the HTTP fetch replaced),
alerts are planned by `alerts.plan_alerts` into ordinary posts, and the worker's own jobs run:
`jobs.poll_feeds` (which expires vacancies past their closing time) and `jobs.publish_due` (the
dispatch tick: housekeeping, which cancels stale alerts, then one claim-and-publish pass) on the
database clock, against the fake network.

The clock: alerts are planned "ten minutes ago" (the services take `now`) into queue slots a
few minutes before the database's present, so by the time the worker ticks their deliveries are
due, inside the grace window, and would be published if nothing cancelled them. One vacancy
stays open as the control: its alert is published in the same pass.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from campaign.channels.base import ChannelContext
from campaign.channels.fake import FakeAdapter, FakeNetwork
from campaign.config import Settings
from campaign.db import database_now
from campaign.models import AuditEvent, Delivery, Post, QueueSlot, Role, Vacancy, VacancySource
from campaign.models.alerts import VacancyAlert
from campaign.services import alert_rules, alerts
from campaign.services import vacancy_sources as sources
from campaign.services.alert_rules import RuleInput
from campaign.services.alerts import RuleFilters
from campaign.services.audit import Actor
from campaign.vacancies.fetch import FetchResult
from campaign.worker import jobs
from campaign.worker.dispatch import Dispatcher
from tests import factories
from tests.factories import ENGINE_RULES

URL = "https://careers.northwind.example/jobs.rss"
SETTINGS = Settings()
TEMPLATE = "{{ title }} at {{ employer }} {{ url }}"


@pytest.fixture(autouse=True)
def _empty(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        session.execute(text("DELETE FROM organisations"))


def _feed(items: list[tuple[str, str, str]]) -> bytes:
    """RSS with (guid, title, closing date or date-time) items."""
    body = "".join(
        f"<item><title>{title}</title><link>https://careers.northwind.example/v/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid><author>Northwind Analytics</author>'
        f"<description>About the role.</description><job:closingDate>{closes}</job:closingDate>"
        "</item>"
        for guid, title, closes in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:job="https://careers.northwind.example/ns"><channel><title>Northwind</title>'
        f"<link>https://careers.northwind.example/</link><description>Jobs</description>{body}"
        "</channel></rss>"
    ).encode()


def _serving(body: bytes) -> Any:
    def fetch(url: str, **_kwargs: Any) -> FetchResult:
        return FetchResult(
            url, status=200, body=body, final_url=url, content_type="application/rss+xml"
        )

    return fetch


def _dispatcher(factory: sessionmaker[Session], network: FakeNetwork) -> Dispatcher:
    def build(_channel: Any) -> FakeAdapter:
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    return Dispatcher(factory, build, "expiry-worker", ENGINE_RULES)


def _world(factory: sessionmaker[Session], base: dt.datetime) -> tuple[int, int, int]:
    """An organisation on UTC with a manager, a channel with four queue slots 6 to 3 minutes
    before `base`, a feed source that withdraws after one missed poll, and a rule for all."""
    hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    with factory.begin() as session:
        org = factories.make_org(session, f"expiry-{uuid.uuid4().hex[:8]}", base, "Etc/UTC")
        user = factories.make_user(session, org, Role.MANAGER, hasher, base)
        channel = factories.make_channel(session, org, base)
        for minutes in (6, 5, 4, 3):
            at = base - dt.timedelta(minutes=minutes)
            session.add(QueueSlot(channel_id=channel.id, weekday=at.weekday(), at=at.time(),
                                  created_at=base))  # fmt: skip
        source = VacancySource(
            organisation_id=org.id, name="Northwind", kind="feed", url=URL,
            poll_interval_minutes=60, withdraw_after_polls=1, next_poll_at=base, created_at=base,
        )  # fmt: skip
        session.add(source)
        session.flush()
        data = RuleInput(name="Everything", filters=RuleFilters(), channel_ids=(channel.id,))
        actor = Actor(org.id, user.email, user.id, "manager")
        alert_rules.create_rule(session, org.id, data, actor, base, "Plain", TEMPLATE)
        return org.id, channel.id, source.id


def _alert_posts(factory: sessionmaker[Session], org_id: int) -> dict[str, Post]:
    """Each vacancy's alert post, by the vacancy's GUID."""
    with factory() as session:
        rows = session.execute(
            select(Vacancy.external_id, Post)
            .join(VacancyAlert, VacancyAlert.vacancy_id == Vacancy.id)
            .join(Post, Post.id == VacancyAlert.post_id)
            .where(Vacancy.organisation_id == org_id)
        ).all()
        for _, post in rows:
            list(post.deliveries)  # loaded while the session is open
        return {guid: post for guid, post in rows}


def test_a_closed_or_withdrawn_vacancys_queued_alert_is_cancelled_by_the_worker_not_published(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session:
        present = database_now(session)
    base = present.replace(second=0, microsecond=0)
    planned_at = base - dt.timedelta(minutes=10)
    org_id, _channel_id, source_id = _world(factory, base)
    later = (base + dt.timedelta(days=10)).date().isoformat()
    # "lapse" closes two minutes before `base`: after every slot, before the worker's tick.
    lapse_at = (base - dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first = _feed(
        [
            ("keep", "Graduate Analyst", later),
            ("close", "Marketing Intern", later),
            ("gone", "Junior Developer", later),
            ("lapse", "Research Assistant", lapse_at),
        ]
    )
    polled = sources.poll_source(
        factory, SETTINGS, source_id, planned_at - dt.timedelta(minutes=5), fetcher=_serving(first)
    )
    assert (polled.status, polled.new) == ("ok", 4), polled.line()

    with factory.begin() as session:
        report = alerts.plan_alerts(session, planned_at, org_id)
    assert report.problems == [] and report.refused == [] and len(report.posts) == 4
    queued = _alert_posts(factory, org_id)
    assert sorted(queued) == ["close", "gone", "keep", "lapse"]
    for post in queued.values():
        assert post.status == "approved"
        [delivery] = post.deliveries
        assert delivery.status == "scheduled"
        assert base - dt.timedelta(minutes=6) <= delivery.due_at <= base - dt.timedelta(minutes=3)
    assert queued["lapse"].deliveries[0].due_at < base - dt.timedelta(minutes=2)  # before closing

    # The employer closes one vacancy early (its closing date is now yesterday) and takes
    # another down; the feed is polled again before the slots come.
    yesterday = (base - dt.timedelta(days=1)).date().isoformat()
    second = _feed(
        [
            ("keep", "Graduate Analyst", later),
            ("close", "Marketing Intern", yesterday),
            ("lapse", "Research Assistant", lapse_at),
        ]
    )
    repolled = sources.poll_source(
        factory, SETTINGS, source_id, planned_at + dt.timedelta(minutes=1),
        fetcher=_serving(second),
    )  # fmt: skip
    assert (repolled.status, repolled.updated, repolled.withdrawn) == ("ok", 1, 1)

    # The worker: its feeds tick expires what has passed its closing time (the database clock
    # is past "lapse"'s), then its dispatch tick runs housekeeping and one publishing pass.
    jobs.poll_feeds(factory, SETTINGS)
    with factory() as session:
        statuses = dict(
            session.execute(
                select(Vacancy.external_id, Vacancy.status).where(Vacancy.organisation_id == org_id)
            ).all()
        )
    assert statuses == {"keep": "open", "close": "expired", "gone": "withdrawn", "lapse": "expired"}
    network = FakeNetwork()
    dispatcher = _dispatcher(factory, network)
    report_pass = jobs.publish_due(dispatcher)

    after = _alert_posts(factory, org_id)
    assert [call.delivery_id for call in network.publish_calls] == [after["keep"].deliveries[0].id]
    assert report_pass.counts["published"] == 1
    assert network.publish_calls[0].text.startswith("Graduate Analyst at Northwind Analytics")
    assert after["keep"].deliveries[0].status == "published"
    for guid in ("close", "gone", "lapse"):
        assert after[guid].status == "cancelled", guid
        assert [d.status for d in after[guid].deliveries] == ["cancelled"], guid

    # Why, in the audit log: the worker cancelled them because of the vacancy.
    with factory() as session:
        labels = dict(
            session.execute(
                select(AuditEvent.subject_id, AuditEvent.actor_label).where(
                    AuditEvent.action == "post.cancelled",
                    AuditEvent.subject_id.in_([after[g].id for g in ("close", "gone", "lapse")]),
                )
            ).all()
        )
    assert "“Marketing Intern” is expired" in labels[after["close"].id]
    assert "“Junior Developer” is withdrawn" in labels[after["gone"].id]
    assert "“Research Assistant” is expired" in labels[after["lapse"].id]

    # Later ticks publish nothing more: the cancelled deliveries stay cancelled.
    jobs.publish_due(dispatcher)
    assert len(network.publish_calls) == 1
    with factory() as session:
        left = session.scalars(
            select(Delivery.status).join(Post).where(Post.organisation_id == org_id)
        ).all()
    assert sorted(left) == ["cancelled", "cancelled", "cancelled", "published"]
