"""Vacancy sources: managing them, polling feeds (conditional GET, incremental re-polls, errors
that stay with their source, SSRF refusals, claims), withdrawal with the drop warning, CSV."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import responses
from sqlalchemy import select

from campaign.config import Settings
from campaign.models import Role, Vacancy, VacancySource
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services import vacancy_sources as sources
from campaign.services.audit import Actor
from tests.factories import make_org

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vacancies"
NOW = dt.datetime(2027, 3, 4, 9, 0, tzinfo=dt.UTC)
SETTINGS = Settings()


def _rss(*items: tuple[str, str]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>https://jobs.example.org/v/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid><description>About {title}</description></item>'
        for guid, title in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://jobs.example.org/</link><description>d</description>{body}"
        "</channel></rss>"
    ).encode()


def _actor(org, role=Role.MANAGER):
    return Actor(organisation_id=org.id, label=f"{role.value}@x", user_id=None, role=role.value)


@pytest.fixture(scope="module")
def org_id(factory):
    with factory.begin() as session:
        return make_org(session, f"poll-{id(factory)}", NOW).id


def _make(factory, org_id, url, **extra):
    with factory.begin() as session:
        values = {"next_poll_at": NOW, "created_at": NOW, **extra}
        source = VacancySource(
            organisation_id=org_id, name=url.rsplit("/", 1)[-1], kind="feed", url=url, **values
        )
        session.add(source)
        session.flush()
        return source.id


def _source(factory, source_id) -> VacancySource:
    with factory() as session:
        return session.get(VacancySource, source_id)


def _vacancies(factory, source_id) -> list[Vacancy]:
    with factory() as session:
        query = select(Vacancy).where(Vacancy.source_id == source_id).order_by(Vacancy.id)
        return list(session.scalars(query))


@responses.activate
def test_poll_ingests_then_uses_conditional_get(factory, org_id):
    url = "https://feeds.example.org/a/jobsacuk.rss"
    source_id = _make(factory, org_id, url)
    responses.get(
        url,
        body=(FIXTURES / "jobsacuk.rss").read_bytes(),
        headers={"ETag": '"v1"', "Last-Modified": "Wed, 03 Mar 2027 09:00:00 GMT"},
        content_type="application/rss+xml",
    )
    outcome = sources.poll_source(factory, SETTINGS, source_id, NOW)
    assert (outcome.status, outcome.items, outcome.new, outcome.updated) == ("ok", 2, 2, 0)
    assert outcome.line() == (
        f"source {source_id} (jobsacuk.rss): ok, 2 items, 2 new, 0 updated, 0 withdrawn, 0 errors"
    )
    stored = _source(factory, source_id)
    assert (stored.etag, stored.last_modified) == ('"v1"', "Wed, 03 Mar 2027 09:00:00 GMT")
    assert (stored.last_status, stored.last_error, stored.last_items, stored.last_new) == (
        "ok",
        None,
        2,
        2,
    )
    assert stored.next_poll_at == NOW + dt.timedelta(minutes=60)
    assert stored.claimed_until is None
    assert [v.title for v in _vacancies(factory, source_id)] == [
        "Lecturer in Marine Biology",
        "Technician (Fixed Term)",
    ]
    assert sorted(json.loads(stored.item_hashes).values()) == [
        v.id for v in _vacancies(factory, source_id)
    ]

    responses.replace(
        responses.GET,
        url,
        status=304,
        match=[
            responses.matchers.header_matcher(
                {"If-None-Match": '"v1"', "If-Modified-Since": "Wed, 03 Mar 2027 09:00:00 GMT"}
            )
        ],
    )
    later = NOW + dt.timedelta(hours=1)
    again = sources.poll_source(factory, SETTINGS, source_id, later)
    assert (again.status, again.line()) == (
        "not_modified",
        f"source {source_id} (jobsacuk.rss): not_modified",
    )
    stored = _source(factory, source_id)
    assert (stored.last_status, stored.last_polled_at, stored.last_items) == (
        "not_modified",
        later,
        2,
    )
    assert len(_vacancies(factory, source_id)) == 2


@responses.activate
def test_an_edited_item_in_a_changed_feed_is_parsed_alone_and_updated(factory, org_id):
    url = "https://feeds.example.org/b/edits.rss"
    source_id = _make(factory, org_id, url)
    responses.get(url, body=_rss(("a", "Alpha"), ("b", "Beta"), ("c", "Gamma")))
    sources.poll_source(factory, SETTINGS, source_id, NOW)
    ids = [v.id for v in _vacancies(factory, source_id)]
    responses.replace(
        responses.GET, url, body=_rss(("c", "Gamma"), ("b", "Beta II"), ("a", "Alpha"))
    )
    later = NOW + dt.timedelta(hours=1)
    outcome = sources.poll_source(factory, SETTINGS, source_id, later)
    assert (outcome.items, outcome.new, outcome.updated, outcome.unchanged) == (3, 0, 1, 2)
    found = _vacancies(factory, source_id)
    assert [v.id for v in found] == ids
    assert [v.title for v in found] == ["Alpha", "Beta II", "Gamma"]
    assert all(v.last_seen_at == later for v in found)  # unparsed items were touched too


@responses.activate
def test_withdrawal_after_n_polls_and_the_drop_warning(factory, org_id):
    url = "https://feeds.example.org/c/withdraw.rss"
    source_id = _make(factory, org_id, url, withdraw_after_polls=2)
    five = [(str(n), f"Job {n}") for n in range(5)]
    responses.get(url, body=_rss(*five))
    sources.poll_source(factory, SETTINGS, source_id, NOW)
    # Four of five gone at once: a warning, and nothing is withdrawn on this poll.
    responses.replace(responses.GET, url, body=_rss(five[0]))
    t1 = NOW + dt.timedelta(hours=1)
    outcome = sources.poll_source(factory, SETTINGS, source_id, t1)
    assert outcome.warnings == [
        "the feed has 1 items, down from 5 at the last poll; check the source"
    ]
    assert outcome.withdrawn == 0
    assert [v.missing_polls for v in _vacancies(factory, source_id)] == [0, 0, 0, 0, 0]
    assert _source(factory, source_id).warning_list == outcome.warnings
    # Steady at one item now: two successive polls without the others withdraw them.
    t2, t3 = NOW + dt.timedelta(hours=2), NOW + dt.timedelta(hours=3)
    assert sources.poll_source(factory, SETTINGS, source_id, t2).withdrawn == 0
    assert sources.poll_source(factory, SETTINGS, source_id, t3).withdrawn == 4
    assert [v.status for v in _vacancies(factory, source_id)] == ["open"] + ["withdrawn"] * 4
    # Back in the feed, they are open again.
    responses.replace(responses.GET, url, body=_rss(*five))
    sources.poll_source(factory, SETTINGS, source_id, NOW + dt.timedelta(hours=4))
    assert [v.status for v in _vacancies(factory, source_id)] == ["open"] * 5


@responses.activate
def test_a_malformed_source_errors_alone_and_the_others_carry_on(factory, org_id):
    bad_url = "https://feeds.example.org/d/malformed.rss"
    good_url = "https://feeds.example.org/d/good.rss"
    gone_url = "https://feeds.example.org/d/gone.rss"
    bad = _make(factory, org_id, bad_url)
    good = _make(factory, org_id, good_url)
    gone = _make(factory, org_id, gone_url)
    hostile = _make(factory, org_id, "https://feeds.example.org/d/xxe.rss")
    responses.get(bad_url, body=(FIXTURES / "malformed.rss").read_bytes())
    responses.get("https://feeds.example.org/d/xxe.rss", body=(FIXTURES / "xxe.rss").read_bytes())
    responses.get(good_url, body=_rss(("g", "Good job")))
    responses.get(gone_url, status=404)
    outcomes = {o.source_id: o for o in sources.poll_all(factory, SETTINGS, NOW, progress=None)}
    assert outcomes[good].status == "ok" and outcomes[good].new == 1
    assert outcomes[bad].status == "error" and outcomes[bad].error
    assert outcomes[gone].error == "HTTP 404 Not Found"
    assert outcomes[hostile].status == "error" and outcomes[hostile].error
    assert _source(factory, hostile).last_error == outcomes[hostile].error
    stored = _source(factory, bad)
    assert stored.last_status == "error" and stored.last_error == outcomes[bad].error
    assert stored.consecutive_errors == 1 and stored.etag is None
    assert stored.next_poll_at == NOW + dt.timedelta(minutes=60)
    assert _source(factory, good).last_status == "ok"
    assert outcomes[bad].line() == f"source {bad} (malformed.rss): error: {stored.last_error}"


def test_an_address_the_guard_refuses_is_the_sources_error(factory, org_id):
    source_id = _make(factory, org_id, "http://127.0.0.1:9/feed.xml")
    outcome = sources.poll_source(factory, SETTINGS, source_id, NOW)
    assert outcome.status == "error"
    stored = _source(factory, source_id)
    assert stored.last_status == "error" and stored.last_error == outcome.error
    assert "127.0.0.1" in stored.last_error


@responses.activate
def test_poll_due_polls_only_due_enabled_feeds_and_claims_them(factory, org_id):
    url = "https://feeds.example.org/e/due.rss"
    responses.get(url, body=_rss(("x", "X")))
    due = _make(factory, org_id, url)
    _make(factory, org_id, url, next_poll_at=NOW + dt.timedelta(minutes=5))
    _make(factory, org_id, url, enabled=False)
    held = _make(factory, org_id, url, claimed_until=NOW + dt.timedelta(minutes=1))
    polled = [o.source_id for o in sources.poll_due(factory, SETTINGS, NOW)]
    assert due in polled and held not in polled
    with factory() as session:
        ours = select(VacancySource.id).where(VacancySource.url == url)
        polled_ours = [i for i in polled if i in set(session.scalars(ours))]
    assert polled_ours == [due]
    # Claimed by another worker: polling it now is skipped, not doubled.
    skipped = sources.poll_source(factory, SETTINGS, held, NOW)
    assert (skipped.status, skipped.error) == ("skipped", "another worker is polling it")
    # The claim lapses.
    later = NOW + dt.timedelta(minutes=2)
    assert sources.poll_source(factory, SETTINGS, held, later).status == "ok"


@responses.activate  # nothing else may reach the network if another source is due
def test_two_workers_polling_one_source_at_once_poll_it_once(factory, org_id):
    import threading

    from campaign.vacancies.fetch import FetchResult

    url = "https://feeds.example.org/g/race.rss"
    source_id = _make(factory, org_id, url)
    entered, release = threading.Event(), threading.Event()

    def slow_fetch(address, **_kwargs):
        entered.set()
        release.wait(30)
        return FetchResult(address, status=200, body=_rss(("r", "Race")), final_url=address)

    outcomes = []
    first = threading.Thread(
        target=lambda: outcomes.append(
            sources.poll_source(factory, SETTINGS, source_id, NOW, fetcher=slow_fetch)
        )
    )
    first.start()
    assert entered.wait(30)
    second = sources.poll_due(factory, SETTINGS, NOW)
    assert source_id not in [o.source_id for o in second]
    assert sources.poll_source(factory, SETTINGS, source_id, NOW).status == "skipped"
    release.set()
    first.join(30)
    assert [o.status for o in outcomes] == ["ok"]
    assert [v.title for v in _vacancies(factory, source_id)] == ["Race"]


def test_a_crash_inside_a_poll_is_recorded_on_that_source(factory, org_id):
    source_id = _make(factory, org_id, "https://feeds.example.org/f/crash.rss")

    def broken_fetch(*_args, **_kwargs):
        raise RuntimeError("boom")

    outcome = sources.poll_source(factory, SETTINGS, source_id, NOW, fetcher=broken_fetch)
    assert outcome.error == "internal error while polling (RuntimeError); see the worker log"
    stored = _source(factory, source_id)
    assert (stored.last_status, stored.claimed_until) == ("error", None)


# --- managing sources (rolled back with `db`) ----------------------------------------------


def test_managers_add_and_change_sources_with_audit(db):
    org = make_org(db, "sources-manage", NOW)
    source = sources.create_source(
        db, _actor(org), sources.SourceInput("Careers feed", "feed", " https://x.example/f "), NOW
    )
    assert (source.url, source.next_poll_at, source.enabled) == ("https://x.example/f", NOW, True)
    source.etag = '"e"'
    changed = sources.update_source(
        db,
        _actor(org),
        source.id,
        sources.SourceInput("Careers", "feed", "https://x.example/g", 30, 5, True),
        NOW,
    )
    assert (changed.name, changed.poll_interval_minutes, changed.withdraw_after_polls) == (
        "Careers",
        30,
        5,
    )
    assert changed.etag is None  # a new URL forgets the old validators
    sources.set_enabled(db, _actor(org), source.id, False, NOW)
    assert not source.enabled
    with pytest.raises(ServiceError, match="disabled"):
        sources.request_poll(db, _actor(org), source.id, NOW)
    from campaign.models import AuditEvent

    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.subject_type == "vacancy_source", AuditEvent.subject_id == source.id)
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "vacancy_source.created",
        "vacancy_source.updated",
        "vacancy_source.disabled",
    ]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (sources.SourceInput("", "feed", "https://x.example/f"), "name", "name"),
        (sources.SourceInput("A", "feed", ""), "url", "needs the URL"),
        (sources.SourceInput("A", "feed", "ftp://x.example/f"), "url", "http://"),
        (sources.SourceInput("A", "feed", "https://x.example/f", 1), "poll_interval_minutes", "5"),
        (
            sources.SourceInput("A", "feed", "https://x.example/f", 60, 0),
            "withdraw_after_polls",
            "1 to 100",
        ),
        (sources.SourceInput("A", "push"), "kind", "feed"),
    ],
)
def test_bad_source_input_names_the_field(db, data, field, words):
    org = make_org(db, "sources-bad", NOW)
    with pytest.raises(sources.FieldError, match=words) as caught:
        sources.create_source(db, _actor(org), data, NOW)
    assert caught.value.field == field


def test_staff_cannot_manage_and_other_orgs_are_not_found(db):
    org, other = make_org(db, "sources-a", NOW), make_org(db, "sources-b", NOW)
    data = sources.SourceInput("Feed", "feed", "https://x.example/f")
    with pytest.raises(PermissionDenied):
        sources.create_source(db, _actor(org, Role.STAFF), data, NOW)
    source = sources.create_source(db, _actor(org), data, NOW)
    with pytest.raises(NotFound):
        sources.update_source(db, _actor(other), source.id, data, NOW)
    with pytest.raises(NotFound):
        sources.get_source(db, other.id, source.id)


def test_csv_upload_ingests_and_reports_bad_rows(db):
    org = make_org(db, "sources-csv", NOW)
    source = sources.create_source(db, _actor(org), sources.SourceInput("Spreadsheet", "csv"), NOW)
    body = (FIXTURES / "export.csv").read_bytes()
    outcome = sources.upload_csv(db, _actor(org), source.id, body, NOW, max_bytes=10_000)
    assert (outcome.items, outcome.new, outcome.item_errors) == (5, 3, 2)
    assert outcome.warnings == [
        "item 5: line 5: link 'javascript:alert(1)' is not an http(s) URL",
        "item 6: line 6: no title",
    ]
    again = sources.upload_csv(db, _actor(org), source.id, body, NOW, max_bytes=10_000)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)
    assert source.last_status == "ok" and source.last_items == 5
    with pytest.raises(sources.FieldError, match="larger than 10 bytes"):
        sources.upload_csv(db, _actor(org), source.id, body, NOW, max_bytes=10)
    with pytest.raises(sources.FieldError, match="could not be read"):
        sources.upload_csv(db, _actor(org), source.id, b"", NOW, max_bytes=10_000)
    with pytest.raises(PermissionDenied):
        sources.upload_csv(db, _actor(org, Role.STAFF), source.id, body, NOW, max_bytes=10_000)


@pytest.mark.parametrize(
    ("interval", "errors", "retry_after", "expected"),
    [
        (60, 1, None, dt.timedelta(minutes=60)),
        (60, 2, None, dt.timedelta(minutes=120)),
        (60, 4, None, dt.timedelta(minutes=480)),
        (60, 40, None, dt.timedelta(hours=24)),  # at most a day
        (2000, 3, None, dt.timedelta(minutes=2000)),  # never sooner than the interval
        (5, 1, "600", dt.timedelta(minutes=10)),  # the server's seconds
        (60, 1, "30", dt.timedelta(minutes=60)),  # a shorter Retry-After does not hurry us
        (5, 1, "Thu, 04 Mar 2027 11:00:00 GMT", dt.timedelta(hours=2)),  # an HTTP date
        (5, 1, "99999999999", dt.timedelta(hours=24)),  # capped
        (5, 1, "Wed, 03 Mar 2027 11:00:00 GMT", dt.timedelta(minutes=5)),  # already past
        (5, 1, "soon", dt.timedelta(minutes=5)),  # unreadable: ignored
    ],
)
def test_a_failing_feed_waits_longer_each_time(interval, errors, retry_after, expected):
    assert sources.retry_delay(interval, errors, retry_after, NOW) == expected


@responses.activate
def test_a_failing_feed_backs_off_honours_retry_after_and_recovers(factory, org_id):
    url = "https://feeds.example.org/backoff/jobs.rss"
    source_id = _make(factory, org_id, url, poll_interval_minutes=30)
    at = NOW
    for expected in (30, 60, 120):
        responses.get(url, status=500)
        sources.poll_source(factory, SETTINGS, source_id, at, due_only=True)
        stored = _source(factory, source_id)
        assert stored.next_poll_at == at + dt.timedelta(minutes=expected)
        # Not due before then: a due-only poll skips it.
        early = sources.poll_source(factory, SETTINGS, source_id, stored.next_poll_at
                                    - dt.timedelta(seconds=1), due_only=True)  # fmt: skip
        assert early.status == "skipped"
        at = stored.next_poll_at
        responses.reset()
    responses.get(url, status=429, headers={"Retry-After": "36000"})
    outcome = sources.poll_source(factory, SETTINGS, source_id, at, due_only=True)
    assert outcome.error == "HTTP 429 Too Many Requests"
    stored = _source(factory, source_id)
    assert stored.consecutive_errors == 4
    assert stored.next_poll_at == at + dt.timedelta(hours=10)  # the server asked for 10 hours
    at = stored.next_poll_at
    responses.reset()
    responses.get(url, body=_rss(("b1", "Back again")))
    assert sources.poll_source(factory, SETTINGS, source_id, at, due_only=True).status == "ok"
    stored = _source(factory, source_id)
    assert stored.consecutive_errors == 0
    assert stored.next_poll_at == at + dt.timedelta(minutes=30)
