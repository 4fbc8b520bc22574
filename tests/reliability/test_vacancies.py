"""R19: the same feed polled by two workers at once, items reordered and edited, one missing.

A real HTTP server on loopback serves an RSS feed whose body changes between rounds (items
reordered, titles and closing dates edited, one item added, one left out, one round unchanged)
while keeping the GUIDs, with honest conditional-GET headers (a new ETag exactly when the body
changes). In every round two workers, each with its own engine, try to poll the source at the
same moment: one through the worker's `poll_due`, the other through `campaign feeds poll`'s
`poll_all`. The server holds the fetch of whichever won the claim until the other has tried
and given up, so the two always overlap. Between rounds two alert planners run at once (as the
worker's alerts tick does: cancel stale alerts, then plan) with one rule matching everything.

Checked from the database, on SQLite and PostgreSQL: one vacancy per GUID whose fields are
those of the latest version served, the source's counts, and at most one alert and one post per
vacancy and rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaign.config import Settings
from campaign.db import make_engine, make_session_factory
from campaign.migrate import upgrade
from campaign.models import Delivery, Post, QueueSlot, Role, Vacancy, VacancySource
from campaign.models.alerts import VacancyAlert
from campaign.services import alert_rules, alerts
from campaign.services import vacancy_sources as sources
from campaign.services.alert_rules import RuleInput
from campaign.services.alerts import RuleFilters
from campaign.services.audit import Actor
from campaign.services.vacancy_sources import normalise_items
from campaign.vacancies.detect import parse_document
from tests import factories

pytestmark = pytest.mark.reliability

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)  # a Monday; London is on GMT
ROUND = dt.timedelta(hours=2)  # each round's clock: past the hourly poll interval
WAIT = 30.0  # seconds any wait may take before the test fails (never reached when working)
SETTINGS = Settings(network={"allow_private_hosts": ["127.0.0.1"]})
TEMPLATE = "{{ title }} at {{ employer }}, closes {{ closes_on }} {{ url }}"


@dataclass(frozen=True)
class Job:
    guid: str
    title: str
    closes: str  # an ISO date; the end of that day in London


def _feed(jobs: list[Job]) -> bytes:
    items = "".join(
        f"<item><title>{j.title}</title><link>https://jobs.example.org/v/{j.guid}</link>"
        f'<guid isPermaLink="false">{j.guid}</guid><author>Northwind Analytics</author>'
        f"<description>About the {j.title} role.</description>"
        f"<job:closingDate>{j.closes}</job:closingDate></item>"
        for j in jobs
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:job="https://jobs.example.org/ns"><channel><title>Northwind jobs</title>'
        f"<link>https://jobs.example.org/</link><description>Vacancies</description>{items}"
        "</channel></rss>"
    ).encode()


A = Job("a-100", "Data Analyst", "2027-04-30")
B = Job("b-200", "Marketing Intern", "2027-04-20")
C = Job("c-300", "Junior Developer", "2027-05-10")
D = Job("d-400", "Graduate Surveyor", "2027-04-25")
B2 = Job("b-200", "Marketing Intern (paid)", "2027-04-20")  # title edited
C2 = Job("c-300", "Junior Developer", "2027-05-31")  # closing date moved
E = Job("e-500", "Research Assistant", "2027-06-01")  # added
D2 = Job("d-400", "Graduate Surveyor", "2027-05-02")  # closing date moved again
VERSIONS: list[list[Job]] = [
    [A, B, C, D],
    [D, C, B2, A],  # reordered, B's title and C's closing date edited
    [E, B2, D, C2],  # E added, A left out, reordered again
    [E, B2, D, C2],  # the same body again: 304 Not Modified
    [C2, D2, E, B2],  # reordered, D's closing date edited; A missing for a second full poll
    [B2, C2, D2, E],  # reordered only
]
LATEST = {j.guid: j for j in VERSIONS[-1]}
LAST_SEEN_A = VERSIONS[1]  # A was last listed in the second version


class FeedServer(ThreadingHTTPServer):
    """Serves `body` at any path with an ETag of its bytes; each answer waits for `gate`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.body = b""
        self.gate = threading.Event()
        self.answers: list[int] = []
        self.gate_timeouts = 0

    def serve(self, body: bytes) -> None:
        with self.lock:
            self.body = body
        self.gate.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/jobs.rss"


class _Handler(BaseHTTPRequestHandler):
    server: FeedServer

    def do_GET(self) -> None:
        with self.server.lock:
            body = self.server.body
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        # Hold the answer until the other worker has tried to poll and given up.
        if not self.server.gate.wait(WAIT):
            with self.server.lock:
                self.server.gate_timeouts += 1
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            status = 304
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)
            status = 200
        with self.server.lock:
            self.server.answers.append(status)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def server() -> Iterator[FeedServer]:
    httpd = FeedServer()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.gate.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(WAIT)


@pytest.fixture(scope="module")
def database(db_kind: str, fresh_database_url: Any) -> str:
    url: str = fresh_database_url(db_kind)
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def engines(database: str) -> Iterator[list[sessionmaker[Session]]]:
    """Three session factories on three engines: the test's own and one per worker."""
    made = [make_engine(database) for _ in range(3)]
    yield [make_session_factory(engine) for engine in made]
    for engine in made:
        engine.dispose()


def _setup(factory: sessionmaker[Session], url: str, slug: str) -> tuple[int, int, int]:
    """An organisation with a manager, a channel with queue slots, a feed source polled hourly
    that withdraws after two missed polls, and a rule alerting every vacancy."""
    hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    with factory.begin() as session:
        org = factories.make_org(session, slug, NOW)
        user = factories.make_user(session, org, Role.MANAGER, hasher, NOW)
        channel = factories.make_channel(session, org, NOW)
        for weekday in range(7):
            for hour in (10, 14, 18):
                session.add(QueueSlot(channel_id=channel.id, weekday=weekday,
                                      at=dt.time(hour, 0), created_at=NOW))  # fmt: skip
        source = VacancySource(
            organisation_id=org.id, name="Northwind", kind="feed", url=url,
            poll_interval_minutes=60, withdraw_after_polls=2, next_poll_at=NOW, created_at=NOW,
        )  # fmt: skip
        session.add(source)
        session.flush()
        data = RuleInput(name="Everything", filters=RuleFilters(), channel_ids=(channel.id,))
        actor = Actor(org.id, user.email, user.id, "manager")
        rule = alert_rules.create_rule(session, org.id, data, actor, NOW, "Plain", TEMPLATE)
        return org.id, source.id, rule.id


def _together(*jobs: Any) -> list[Any]:
    """Run each job in its own thread, released together by a barrier; their results."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(WAIT)
            results[index] = jobs[index]()
        except BaseException as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 3)
    assert not any(t.is_alive() for t in threads), "a worker thread did not finish"
    assert errors == [], errors
    return results


def _poller(
    factory: sessionmaker[Session], server: FeedServer, source_id: int, now: dt.datetime, via: str
) -> Any:
    """One worker's attempt; when it does not poll the source it opens the server's gate."""

    def attempt() -> sources.PollOutcome:
        if via == "poll_due":  # the worker's feeds tick
            found = [
                o for o in sources.poll_due(factory, SETTINGS, now) if o.source_id == source_id
            ]
            outcome = found[0] if found else sources.PollOutcome(source_id, "?", "skipped")
        else:  # `campaign feeds poll --source N`
            [outcome] = sources.poll_all(factory, SETTINGS, now, source_id=source_id)
        if outcome.status == "skipped":
            server.gate.set()
        return outcome

    return attempt


def _planner(factory: sessionmaker[Session], org_id: int, now: dt.datetime) -> Any:
    """What the worker's alerts tick does, in one transaction: cancel stale alerts, plan."""

    def plan() -> alerts.PlanReport:
        with factory.begin() as session:
            alerts.cancel_stale(session, now)
            return alerts.plan_alerts(session, now, org_id)

    return plan


def _expected(jobs: list[Job], url: str, source_id: int, now: dt.datetime) -> dict[str, Any]:
    """Each GUID's normalised item, as an ingest of this version alone would store it."""
    parsed = parse_document(_feed(jobs), content_type="application/rss+xml", source_url=url)
    assert parsed.error is None
    items, problems = normalise_items(
        parsed.items, tz="Europe/London", now=now, source_url=url, scope=str(source_id)
    )
    assert problems == []
    return {item.external_id or j.guid: item for item, j in zip(items, jobs, strict=True)}


def test_r19_two_workers_poll_a_changing_feed_one_vacancy_per_item_no_alert_twice(
    engines: list[sessionmaker[Session]], server: FeedServer
) -> None:
    own, first, second = engines
    org_id, source_id, rule_id = _setup(own, server.url, f"r19-{id(server)}")
    statuses = []
    for round_number, jobs in enumerate(VERSIONS):
        now = NOW + round_number * ROUND
        server.serve(_feed(jobs))
        outcomes = _together(
            _poller(first, server, source_id, now, "poll_due"),
            _poller(second, server, source_id, now, "poll_all"),
        )
        polled = [o for o in outcomes if o.status != "skipped"]
        assert len(polled) == 1, [o.line() for o in outcomes]  # the other gave way
        assert polled[0].status in ("ok", "not_modified"), polled[0].line()
        statuses.append(polled[0].status)
        reports = _together(_planner(first, org_id, now), _planner(second, org_id, now))
        assert [r.problems for r in reports] == [[], []]
    assert server.gate_timeouts == 0
    assert statuses == ["ok", "ok", "ok", "not_modified", "ok", "ok"]
    assert server.answers == [200, 200, 200, 304, 200, 200]  # one fetch per round

    last = NOW + (len(VERSIONS) - 1) * ROUND
    with own() as session:
        found = session.scalars(
            select(Vacancy).where(Vacancy.organisation_id == org_id).order_by(Vacancy.id)
        ).all()
        by_guid = {v.external_id: v for v in found}
        assert len(found) == len(by_guid) == 5  # one vacancy per GUID: a, b, c, d, e
        assert sorted(by_guid) == sorted([A.guid, *LATEST])
        expected = _expected(VERSIONS[-1], server.url, source_id, last)
        for guid, item in expected.items():
            stored = by_guid[guid]
            assert (stored.title, stored.url, stored.closes_at) == (
                item.title,
                item.url,
                item.closes_at,
            )
            assert stored.content_hash == item.content_hash, guid
            assert stored.status == "open" and stored.missing_polls == 0
        assert by_guid[B.guid].title == "Marketing Intern (paid)"
        assert by_guid[C.guid].closes_at == dt.datetime(2027, 5, 31, 22, 59, 59, tzinfo=dt.UTC)
        withdrawn = by_guid[A.guid]
        assert withdrawn.status == "withdrawn"  # missed two full polls (the 304 is not one)
        assert (
            withdrawn.content_hash
            == _expected(LAST_SEEN_A, server.url, source_id, NOW)[A.guid].content_hash
        )

        source = session.get(VacancySource, source_id)
        assert source is not None
        assert (source.last_status, source.last_error, source.consecutive_errors) == ("ok", None, 0)
        assert (source.last_items, source.last_new, source.last_updated) == (4, 0, 0)
        assert source.claimed_until is None and source.last_polled_at == last
        assert source.next_poll_at == last + dt.timedelta(minutes=60)

        pairs = session.execute(
            select(VacancyAlert.vacancy_id, VacancyAlert.rule_id, func.count())
            .where(VacancyAlert.rule_id == rule_id)
            .group_by(VacancyAlert.vacancy_id, VacancyAlert.rule_id)
        ).all()
        assert {count for _, _, count in pairs} == {1}  # at most one alert per (vacancy, rule)
        assert {vacancy_id for vacancy_id, _, _ in pairs} == {v.id for v in found}
        rows = session.scalars(select(VacancyAlert).where(VacancyAlert.rule_id == rule_id)).all()
        assert all(r.status == "planned" and r.post_id is not None for r in rows)
        assert len({r.post_id for r in rows}) == len(rows)  # one post per alert
        made = session.scalars(select(Post).where(Post.organisation_id == org_id)).all()
        assert sorted(p.id for p in made) == sorted(r.post_id for r in rows)  # no orphan post
        links = [p.link_url for p in made]
        assert len(links) == len(set(links)) == 5  # no vacancy alerted twice
        deliveries = session.execute(
            select(Delivery.post_id, func.count()).join(Post).where(
                Post.organisation_id == org_id
            ).group_by(Delivery.post_id)
        ).all()  # fmt: skip
        assert {count for _, count in deliveries} == {1}
        alert_of = {r.vacancy_id: r.post_id for r in rows}
        cancelled = session.get(Post, alert_of[withdrawn.id])
        assert cancelled is not None and cancelled.status == "cancelled"
        assert {p.status for p in made if p.id != cancelled.id} == {"approved"}
