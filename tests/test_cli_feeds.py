"""`campaign feeds poll` and the worker's poll_feeds tick, on a fresh database of each kind."""

from __future__ import annotations

import datetime as dt

import pytest
import responses
from sqlalchemy import select

from campaign import create_app
from campaign.cli import cli
from campaign.db import utcnow
from campaign.migrate import upgrade
from campaign.models import Vacancy, VacancySource
from campaign.web.context import state
from campaign.worker import jobs
from tests.conftest import settings_for
from tests.factories import make_org

GOOD = "https://feeds.example.org/good.rss"
BAD = "https://feeds.example.org/bad.rss"
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    b"<link>https://jobs.example.org/</link><description>d</description>"
    b"<item><title>Analyst</title><link>https://jobs.example.org/v/1</link>"
    b'<guid isPermaLink="false">1</guid></item>'
    b"<item><title>Clerk</title><link>https://jobs.example.org/v/2</link>"
    b'<guid isPermaLink="false">2</guid></item>'
    b"</channel></rss>"
)


@pytest.fixture
def fresh_app(db_kind, fresh_database_url, tmp_path):
    url = fresh_database_url(db_kind)
    upgrade(url)
    application = create_app(settings_for(url, tmp_path))
    yield application
    state(application).engine.dispose()


def _sources(app):
    now = utcnow()
    with state(app).session_factory.begin() as session:
        org = make_org(session, "feeds-cli", now)
        made = []
        for name, url, enabled in (("Good", GOOD, True), ("Bad", BAD, True), ("Off", GOOD, False)):
            source = VacancySource(
                organisation_id=org.id, name=name, kind="feed", url=url, enabled=enabled,
                created_at=now,
            )  # fmt: skip
            session.add(source)
            session.flush()
            made.append(source.id)
        return org.id, made


def _invoke(app, *args):
    return app.test_cli_runner().invoke(cli, list(args))


@responses.activate
def test_feeds_poll_prints_one_line_per_source_and_exits_0(fresh_app):
    _org, (good, bad, _off) = _sources(fresh_app)
    responses.get(GOOD, body=FEED)
    responses.get(BAD, body=b"<rss><channel><item><title>broken")
    result = _invoke(fresh_app, "feeds", "poll")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"source {good} (Good): ok, 2 items, 2 new, 0 updated, 0 withdrawn, 0 errors"
    assert lines[1].startswith(f"source {bad} (Bad): error: ")
    assert lines[2] == "feeds poll: 2 source(s) polled, 1 with errors"
    assert len(lines) == 3  # the disabled source is not polled

    again = _invoke(fresh_app, "feeds", "poll", "--source", str(good))
    assert again.exit_code == 0
    assert again.output.splitlines() == [
        f"source {good} (Good): ok, 2 items, 0 new, 0 updated, 0 withdrawn, 0 errors",
        "feeds poll: 1 source(s) polled, 0 with errors",
    ]


def test_feeds_poll_of_an_unknown_source_says_so(fresh_app):
    result = _invoke(fresh_app, "feeds", "poll", "--source", "999")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "source 999 (?): error: no such source",
        "feeds poll: 1 source(s) polled, 1 with errors",
    ]


@responses.activate
def test_the_tick_polls_due_sources_and_expires_closed_vacancies(fresh_app):
    org_id, (good, bad, _off) = _sources(fresh_app)
    responses.get(GOOD, body=FEED)
    responses.get(BAD, status=500)
    factory = state(fresh_app).session_factory
    jobs.poll_feeds(factory, state(fresh_app).settings)
    with factory.begin() as session:
        polled = {s.id: s.last_status for s in session.scalars(select(VacancySource))}
        assert (polled[good], polled[bad]) == ("ok", "error")
        first = session.scalars(select(Vacancy).where(Vacancy.source_id == good)).first()
        first.closes_at = utcnow() - dt.timedelta(minutes=1)
    # Not due again yet, but the closed vacancy is expired by the same tick.
    jobs.poll_feeds(factory, state(fresh_app).settings)
    with factory() as session:
        statuses = sorted(session.scalars(select(Vacancy.status)).all())
        assert statuses == ["expired", "open"]
        assert all(v.organisation_id == org_id for v in session.scalars(select(Vacancy)))
    assert len(responses.calls) == 2  # each source fetched once: the second tick found none due
