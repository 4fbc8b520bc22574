"""The demo's vacancy alerts end to end: example feeds in, rules, caps, and the outbox out.

`campaign demo` polls the app's built-in example feeds (no network) and plans alerts through the
real services; `campaign publish-due` then publishes them into the outbox, within the alerts
channel's caps. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaign.models import Channel, Delivery, OutboxEntry, Post, Vacancy, VacancySource
from campaign.models.alerts import AlertRule, VacancyAlert
from campaign.services import demo_vacancies
from campaign.vacancies import examples
from campaign.vacancies.fetch import fetch_example
from campaign.web.context import state
from tests.conftest import AuthActions
from tests.test_cli import fresh_app, invoke, migrated_app  # noqa: F401  (fixtures)

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def demo(migrated_app):  # noqa: F811
    result = invoke(migrated_app, "demo")
    assert result.exit_code == 0, result.output
    return migrated_app, result.output


def _alerts_channel(session):
    return session.scalar(select(Channel).where(Channel.display_name == "Outbox: vacancy alerts"))


def test_the_demo_polls_its_example_feeds_and_shows_the_broken_one_as_an_error(demo):
    app, output = demo
    assert "Example University job board (RSS)): ok, 8 items, 8 new" in output
    assert "Old partner feed (broken)): error: the feed is not well-formed XML" in output
    with state(app).session_factory() as session:
        sources = {s.url: s for s in session.scalars(select(VacancySource))}
        assert set(sources) == {url for _name, url, _minutes in demo_vacancies.SOURCES}
        broken = sources["example:broken-feed.xml"]
        assert broken.last_status == "error" and "not well-formed" in (broken.last_error or "")
        page = sources["example:employer-job-page.html"]
        # The page's broken JSON-LD block is reported; its good block is still read.
        assert page.last_status == "ok" and page.last_items == 2
        titles = {v.title: v for v in session.scalars(select(Vacancy))}
        assert "Marketing & Events Intern (Summer)" in titles  # decoded exactly once
        assert titles["Graduate Accountant"].status == "expired"
        closing = titles["Junior Software Engineer"].closes_at
        assert closing is not None  # from "Closing date: dd/mm/yyyy" in the text
    auth = AuthActions(app.test_client())
    assert auth.login("manager@demo.example", "demo-manager-password").status_code == 302
    page = auth.client.get("/vacancies/sources")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Old partner feed (broken)" in html and "not well-formed XML" in html


def test_alerts_are_planned_within_caps_and_quiet_hours_and_risky_roles_wait(demo):
    app, output = demo
    assert "vacancy alert posts planned" in output
    with state(app).session_factory() as session:
        channel = _alerts_channel(session)
        rows = session.execute(
            select(Vacancy.title, VacancyAlert.status, Post.status, Delivery.due_at)
            .join(VacancyAlert, VacancyAlert.vacancy_id == Vacancy.id)
            .join(AlertRule, AlertRule.id == VacancyAlert.rule_id)
            .join(Post, Post.id == VacancyAlert.post_id)
            .join(Delivery, Delivery.post_id == Post.id)
            .where(AlertRule.mode == "single", Delivery.channel_id == channel.id)
        ).all()
    titles = {title: post_status for title, _a, post_status, _d in rows}
    assert "Graduate Accountant" not in titles  # closed: never alerted
    assert titles["Volunteer Events Assistant"] == "pending_approval"  # unpaid
    assert titles["Graduate Sales Executive"] == "pending_approval"  # commission
    assert titles["Graduate Data Analyst"] == "approved"
    due = sorted(d for *_rest, d in rows)
    assert len(due) >= 5
    per_day: dict[dt.date, int] = {}
    for earlier, later in itertools.pairwise(due):
        assert later - earlier >= dt.timedelta(hours=1)  # at most one an hour
    for at in due:
        local = at.astimezone(LONDON)
        assert dt.time(8, 0) <= local.time() < dt.time(21, 0)  # quiet overnight
        per_day[local.date()] = per_day.get(local.date(), 0) + 1
    assert max(per_day.values()) <= 4


def test_the_first_due_alert_goes_to_the_outbox_with_a_tracked_link_and_the_cap_holds(demo):
    app, _output = demo
    st = state(app)
    with st.session_factory.begin() as session:
        channel = _alerts_channel(session)
        due = session.scalars(
            select(Delivery)
            .join(Post)
            .where(Delivery.channel_id == channel.id, Post.status == "approved")
            .order_by(Delivery.due_at)
        ).all()
        assert len(due) >= 3
        # Time passes: the first three alerts fall due together; the channel allows one an hour.
        for delivery in due[:3]:
            delivery.due_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        ids, channel_id = [d.id for d in due[:3]], channel.id
    result = invoke(app, "publish-due")
    assert result.exit_code == 0, result.output
    with st.session_factory() as session:
        states = [session.get(Delivery, i).status for i in ids]
        assert states.count("published") == 1, states
        entry = session.scalar(select(OutboxEntry).where(OutboxEntry.channel_id == channel_id))
        assert entry is not None and "/l/" in entry.text
        assert "jobs.example" not in entry.text and "placements.example" not in entry.text


def test_an_example_feed_answers_conditional_gets_and_unknown_names_clearly():
    first = fetch_example("example:graduate-roles.rss", today=dt.date(2026, 12, 3))
    assert first.ok and first.status == 200 and first.etag
    again = fetch_example("example:graduate-roles.rss", etag=first.etag, today=dt.date(2026, 12, 3))
    assert again.not_modified
    next_day = fetch_example(
        "example:graduate-roles.rss", etag=first.etag, today=dt.date(2026, 12, 4)
    )
    assert not next_day.not_modified and next_day.body != first.body
    missing = fetch_example("example:../../etc/passwd")
    assert missing.error is not None and "no example feed called" in missing.error
    assert all(examples.problem(examples.SCHEME + name) is None for name in examples.FEEDS)
