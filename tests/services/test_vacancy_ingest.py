"""Ingesting normalised vacancies: exact records, updates, cross-source de-duplication, expiry,
withdrawal and re-opening."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaign.models import Vacancy, VacancyListing, VacancySource
from campaign.services import NotFound
from campaign.services import vacancies as service
from campaign.services.vacancy_sources import normalise_items
from campaign.vacancies.detect import parse_document
from tests.factories import make_org

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vacancies"
NOW = dt.datetime(2027, 3, 4, 9, 0, tzinfo=dt.UTC)
FEED_URL = "https://jobs.example.org/feed"


def _source(db, org, name="Feed", kind="feed", url=FEED_URL, **extra):
    source = VacancySource(
        organisation_id=org.id, name=name, kind=kind, url=url, created_at=NOW, **extra
    )
    db.add(source)
    db.flush()
    return source


def _items(source, body: bytes, now=NOW, url=FEED_URL):
    parsed = parse_document(body, source_url=url)
    assert parsed.error is None
    items, problems = normalise_items(
        parsed.items, tz="Europe/London", now=now, source_url=url, scope=str(source.id)
    )
    assert problems == []
    return items


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _all(db, org):
    query = select(Vacancy).where(Vacancy.organisation_id == org.id).order_by(Vacancy.id)
    return list(db.scalars(query))


def _count(db, org) -> int:
    query = select(func.count()).select_from(Vacancy).where(Vacancy.organisation_id == org.id)
    return db.scalar(query)


def _rss(*items: tuple[str, str, str]) -> bytes:
    """A small RSS feed of (guid, title, description) items at jobs.example.org."""
    body = "".join(
        f"<item><title>{title}</title><link>https://jobs.example.org/v/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid><description>{text}</description></item>'
        for guid, title, text in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://jobs.example.org/</link><description>d</description>{body}"
        "</channel></rss>"
    ).encode()


def test_csv_export_becomes_exact_records(db):
    org = make_org(db, "ingest-csv", NOW)
    source = _source(db, org, kind="csv", url=None)
    result = service.ingest(db, source, _items(source, _fixture("export.csv")), NOW)
    assert result.outcomes == ["created", "created", "created"]
    assert (result.new, result.updated) == (3, 0)
    rows = _all(db, org)
    assert [r.id for r in rows] == result.ids
    surveyor, intern, sales = rows
    assert (surveyor.external_id, surveyor.title, surveyor.employer, surveyor.location) == (
        "007",
        "Graduate Surveyor",
        "Ashby & Stone LLP",
        "Derby",
    )
    assert surveyor.url == "https://jobs.example.org/s/007"
    assert surveyor.closes_at == dt.datetime(2027, 5, 14, 22, 59, 59, tzinfo=dt.UTC)
    assert (surveyor.salary_text, surveyor.salary_min, surveyor.salary_max) == (
        "£25k-£28k",
        Decimal("25000.00"),
        Decimal("28000.00"),
    )
    assert surveyor.salary_currency == "GBP"
    assert surveyor.status == "open" and surveyor.flag_list == []
    assert (surveyor.source_id, surveyor.first_seen_at, surveyor.last_seen_at) == (
        source.id,
        NOW,
        NOW,
    )
    assert surveyor.guid_key == f"id:{source.id}:007"
    assert surveyor.url_key == "https://jobs.example.org/s/007"
    assert intern.flag_list == ["unpaid"] and intern.closes_at is None
    assert sales.flag_list == ["commission", "invalid_date"]
    assert sales.warning_list == ["closing date 31/02/2027 is impossible; no closing date set"]
    assert sales.closes_at is None and sales.salary_text == "OTE £40k"


def test_rss_feed_records_and_reingest_is_unchanged(db):
    org = make_org(db, "ingest-rss", NOW)
    source = _source(db, org)
    first = service.ingest(db, source, _items(source, _fixture("jobsacuk.rss")), NOW)
    assert first.outcomes == ["created", "created"]
    lecturer, technician = _all(db, org)
    assert (lecturer.title, lecturer.employer) == (
        "Lecturer in Marine Biology",
        "University of Saltmarsh",
    )
    assert lecturer.url == "https://jobboard.example.ac.uk/job/AB123/lecturer-in-marine-biology"
    assert (lecturer.salary_min, lecturer.salary_max) == (Decimal("38205.00"), Decimal("45585.00"))
    assert technician.flag_list == ["salary_missing"]

    later = NOW + dt.timedelta(hours=1)
    again = service.ingest(db, source, _items(source, _fixture("jobsacuk.rss"), later), later)
    assert again.outcomes == ["unchanged", "unchanged"]
    assert again.ids == first.ids
    db.expire_all()
    assert [r.last_seen_at for r in _all(db, org)] == [later, later]
    assert [r.updated_at for r in _all(db, org)] == [NOW, NOW]


def test_an_edited_item_updates_its_record_and_never_duplicates(db):
    org = make_org(db, "ingest-edit", NOW)
    source = _source(db, org)
    service.ingest(db, source, _items(source, _rss(("j1", "Analyst", "Old text"))), NOW)
    later = NOW + dt.timedelta(hours=2)
    edited = _rss(("j1", "Senior Analyst", "New text. Closing date: 30 April 2027"))
    result = service.ingest(db, source, _items(source, edited, later), later)
    assert result.outcomes == ["updated"]
    db.expire_all()
    (vacancy,) = _all(db, org)
    assert vacancy.title == "Senior Analyst" and vacancy.description_text.startswith("New text")
    assert vacancy.closes_at == dt.datetime(2027, 4, 30, 22, 59, 59, tzinfo=dt.UTC)
    assert (vacancy.first_seen_at, vacancy.updated_at, vacancy.last_seen_at) == (NOW, later, later)
    # Reordered and mixed with a new item, the edited item is still one record.
    mixed = _rss(("j2", "Clerk", "x"), ("j1", "Senior Analyst", "Newer text"))
    result = service.ingest(db, source, _items(source, mixed, later), later)
    assert result.outcomes == ["created", "updated"]
    assert _count(db, org) == 2


def test_duplicates_within_one_document_make_one_record(db):
    org = make_org(db, "ingest-dup", NOW)
    source = _source(db, org)
    body = _rss(("j1", "Analyst", "a"), ("j1", "Analyst", "a"))
    result = service.ingest(db, source, _items(source, body), NOW)
    assert result.outcomes == ["created", "duplicate"]
    assert result.ids[0] == result.ids[1]
    assert _count(db, org) == 1


def test_the_same_job_in_two_sources_is_one_vacancy(db):
    org = make_org(db, "ingest-cross", NOW)
    engineering = _source(db, org, "Engineering", url="https://jobs.greystone.example/engineering")
    finance = _source(db, org, "Finance", url="https://jobs.greystone.example/finance")
    first = service.ingest(
        db, engineering, _items(engineering, _fixture("multi_feed_engineering.rss")), NOW
    )
    second = service.ingest(db, finance, _items(finance, _fixture("multi_feed_finance.rss")), NOW)
    assert first.outcomes == ["created"]
    assert second.outcomes[0] in ("updated", "unchanged") and second.ids == first.ids
    (vacancy,) = _all(db, org)
    assert vacancy.title == "Graduate Project Accountant"
    assert (vacancy.employer, vacancy.location) == ("Greystone Group", "Newcastle")
    # The record keeps the keys of the source that found it.
    assert vacancy.guid_key == "url:https://jobs.greystone.example/vacancy/5501"


def test_matching_by_fingerprint_across_sources(db):
    org = make_org(db, "ingest-fp", NOW)
    csv_source = _source(db, org, "CSV", kind="csv", url=None)
    feed = _source(db, org, "Feed")
    service.ingest(db, csv_source, _items(csv_source, _fixture("export.csv")), NOW)
    # The same employer, title and location under another id and URL updates the record.
    body = (
        "id,Title,URL,Employer,Location,Salary,Closing Date\n"
        "X-1,Graduate  Surveyor,https://elsewhere.example/s/1,Ashby and Stone LLP,derby,"
        "£25k-£28k,21/05/2027\n"
    ).encode()
    result = service.ingest(db, feed, _items(feed, body), NOW)
    assert result.outcomes == ["updated"]
    assert _count(db, org) == 3
    surveyor = db.get(Vacancy, result.ids[0])
    db.refresh(surveyor)
    assert (surveyor.external_id, surveyor.title) == ("X-1", "Graduate Surveyor")
    assert surveyor.url == "https://elsewhere.example/s/1"
    assert surveyor.url_key == "https://jobs.example.org/s/007"  # the CSV source's keys stay
    assert surveyor.closes_at == dt.datetime(2027, 5, 21, 22, 59, 59, tzinfo=dt.UTC)


@pytest.mark.parametrize("scan", [True, False], ids=["organisation-scan", "key-lists"])
def test_large_batches_find_the_same_candidates_either_way(db, monkeypatch, scan):
    """A batch with more keys than one IN list reads the organisation's keys in one query
    unless the organisation holds far more records; both ways match the same records, and
    never another organisation's."""
    other = make_org(db, "ingest-many-other", NOW)
    org = make_org(db, "ingest-many", NOW)
    elsewhere = _source(db, other, "CSV", kind="csv", url=None)
    service.ingest(db, elsewhere, _items(elsewhere, _fixture("export.csv")), NOW)
    csv_source = _source(db, org, "CSV", kind="csv", url=None)
    service.ingest(db, csv_source, _items(csv_source, _fixture("export.csv")), NOW)
    monkeypatch.setattr(service, "_CHUNK", 1)  # every batch counts as large
    monkeypatch.setattr(service, "SCAN_FACTOR", 100 if scan else 0)
    feed = _source(db, org, "Feed")
    body = (
        "id,Title,URL,Employer,Location,Salary,Closing Date\n"
        "X-1,Graduate  Surveyor,https://elsewhere.example/s/1,Ashby and Stone LLP,derby,"
        "£25k-£28k,21/05/2027\n"
        "X-2,Night Porter,https://elsewhere.example/s/2,Ashby and Stone LLP,Derby,,21/05/2027\n"
    ).encode()
    result = service.ingest(db, feed, _items(feed, body), NOW)
    assert result.outcomes == ["updated", "created"]
    assert (_count(db, org), _count(db, other)) == (4, 3)
    surveyor = db.get(Vacancy, result.ids[0])
    assert surveyor.organisation_id == org.id
    assert [r.external_id for r in _all(db, other) if r.external_id.startswith("X-")] == []


def test_organisations_never_share_records(db):
    one, two = make_org(db, "ingest-one", NOW), make_org(db, "ingest-two", NOW)
    source_one, source_two = _source(db, one), _source(db, two)
    body = _fixture("jobsacuk.rss")
    service.ingest(db, source_one, _items(source_one, body), NOW)
    result = service.ingest(db, source_two, _items(source_two, body), NOW)
    assert result.outcomes == ["created", "created"]
    assert (_count(db, one), _count(db, two)) == (2, 2)
    vacancy = _all(db, one)[0]
    with pytest.raises(NotFound):
        service.get_vacancy(db, two.id, vacancy.id)
    assert service.get_vacancy(db, one.id, vacancy.id) is vacancy


def test_expiry_happens_at_the_closing_time(db):
    org = make_org(db, "ingest-expire", NOW)
    source = _source(db, org, kind="csv", url=None)
    service.ingest(db, source, _items(source, _fixture("export.csv")), NOW)
    closes = dt.datetime(2027, 5, 14, 22, 59, 59, tzinfo=dt.UTC)
    assert service.expire(db, closes - dt.timedelta(seconds=1)) == []
    surveyor = _all(db, org)[0]
    assert service.expire(db, closes, organisation_id=org.id) == [surveyor.id]
    db.expire_all()
    assert [r.status for r in _all(db, org)] == ["expired", "open", "open"]
    assert service.expire(db, closes + dt.timedelta(days=1), organisation_id=org.id) == []


def test_an_item_already_closed_is_stored_expired(db):
    org = make_org(db, "ingest-closed", NOW)
    source = _source(db, org, kind="csv", url=None)
    late = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
    service.ingest(db, source, _items(source, _fixture("export.csv"), late), late)
    assert [r.status for r in _all(db, org)] == ["expired", "open", "open"]


def test_an_expired_vacancy_with_a_later_closing_date_is_open_again(db):
    org = make_org(db, "ingest-reopen", NOW)
    source = _source(db, org, kind="csv", url=None)
    service.ingest(db, source, _items(source, _fixture("export.csv")), NOW)
    after = dt.datetime(2027, 5, 20, tzinfo=dt.UTC)
    service.expire(db, after)
    body = _fixture("export.csv").replace(b"14/05/2027", b"14/06/2027")
    result = service.ingest(db, source, _items(source, body, after), after)
    assert result.outcomes[0] == "updated" and result.reopened == 1
    db.expire_all()
    surveyor = _all(db, org)[0]
    assert surveyor.status == "open"
    assert surveyor.closes_at == dt.datetime(2027, 6, 14, 22, 59, 59, tzinfo=dt.UTC)
    # Unchanged and still past its date, an expired vacancy stays expired.
    service.expire(db, dt.datetime(2027, 7, 1, tzinfo=dt.UTC))
    again = service.ingest(
        db, source, _items(source, body, after), dt.datetime(2027, 7, 2, tzinfo=dt.UTC)
    )
    assert again.reopened == 0
    db.expire_all()
    assert _all(db, org)[0].status == "expired"


def test_withdrawal_after_n_polls_without_the_item_and_back_again(db):
    org = make_org(db, "ingest-withdraw", NOW)
    source = _source(db, org, withdraw_after_polls=2)
    both = _rss(("a", "Alpha", "x"), ("b", "Beta", "y"))
    service.ingest(db, source, _items(source, both), NOW)
    service.withdraw_missing(db, source, NOW)
    only_a = _rss(("a", "Alpha", "x"))
    times = [NOW + dt.timedelta(hours=h) for h in (1, 2)]
    service.ingest(db, source, _items(source, only_a, times[0]), times[0])
    assert service.withdraw_missing(db, source, times[0]) == []
    db.expire_all()
    assert [r.missing_polls for r in _all(db, org)] == [0, 1]
    service.ingest(db, source, _items(source, only_a, times[1]), times[1])
    beta = _all(db, org)[1]
    assert service.withdraw_missing(db, source, times[1]) == [beta.id]
    db.expire_all()
    assert [r.status for r in _all(db, org)] == ["open", "withdrawn"]
    # Listed again, it is open again.
    back = NOW + dt.timedelta(hours=3)
    result = service.ingest(db, source, _items(source, both, back), back)
    assert result.outcomes == ["unchanged", "unchanged"] and result.reopened == 1
    db.expire_all()
    assert [(r.status, r.missing_polls) for r in _all(db, org)] == [("open", 0), ("open", 0)]


def test_very_long_keys_are_stored_hashed_and_still_match(db):
    org = make_org(db, "ingest-long", NOW)
    source = _source(db, org)
    title = "Analyst " + "x" * 3000
    body = _rss(("a" * 1500, title, "t"))
    first = service.ingest(db, source, _items(source, body), NOW)
    later = NOW + dt.timedelta(hours=1)
    again = service.ingest(db, source, _items(source, body, later), later)
    assert (first.outcomes, again.outcomes) == (["created"], ["unchanged"])
    (vacancy,) = _all(db, org)
    assert vacancy.guid_key.startswith("h:") and len(vacancy.title) == 500
    assert json.loads(vacancy.tags) == []


def test_list_filters_by_status_newest_first(db):
    org = make_org(db, "ingest-list", NOW)
    source = _source(db, org, kind="csv", url=None)
    service.ingest(db, source, _items(source, _fixture("export.csv")), NOW)
    service.expire(db, dt.datetime(2027, 5, 15, tzinfo=dt.UTC))
    open_ones, total = service.list_vacancies(db, org.id, status="open")
    assert total == 2 and [v.title for v in open_ones] == ["Sales Executive", "Unpaid Intern"]
    assert service.list_vacancies(db, org.id, status="all")[1] == 3
    expired, _ = service.list_vacancies(db, org.id, status="expired")
    assert [v.title for v in expired] == ["Graduate Surveyor"]
    page, total = service.list_vacancies(db, org.id, status="all", limit=1, offset=1)
    assert total == 3 and len(page) == 1
    with pytest.raises(ValueError, match="unknown status"):
        service.list_vacancies(db, org.id, status="closed")


def _listing(guid: str, link: str, title: str, text: str = "Apply by email.") -> bytes:
    """An RSS feed of one item with its own GUID, link and title."""
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<link>https://jobs.example.org/</link><description>d</description>"
        f"<item><title>{title}</title><link>{link}</link>"
        f'<guid isPermaLink="false">{guid}</guid><description>{text}</description></item>'
        "</channel></rss>"
    ).encode()


SHARED_LINK = "https://careers.kestrel.example/jobs/analyst"


@pytest.mark.parametrize("first_after_edit", ["second-source", "owner"])
def test_a_job_two_sources_list_stays_one_vacancy_when_its_title_changes(db, first_after_edit):
    """The job is found by the owner's GUID, then by the second source's URL; after the title
    changes (so the URL no longer matches the record's title) either source polling first
    updates the same vacancy."""
    org = make_org(db, f"ingest-retitle-{first_after_edit}", NOW)
    owner = _source(db, org, "Kestrel", url="https://careers.kestrel.example/feed")
    second = _source(db, org, "Aggregator", url="https://aggregator.example/feed")

    def poll(source, guid, title, now):
        body = _listing(guid, SHARED_LINK, title, f"{source.name} listing.")
        return service.ingest(db, source, _items(source, body, now), now)

    created = poll(owner, "k-1", "Data Analyst", NOW)
    assert created.outcomes == ["created"]
    matched = poll(second, "agg-77", "Data Analyst", NOW + dt.timedelta(hours=1))
    assert matched.outcomes == ["updated"] and matched.ids == created.ids

    later = NOW + dt.timedelta(days=1)
    order = [second, owner] if first_after_edit == "second-source" else [owner, second]
    guids = {owner.id: "k-1", second.id: "agg-77"}
    for step, source in enumerate(order):
        result = poll(
            source, guids[source.id], "Senior Data Analyst", later + dt.timedelta(hours=step)
        )
        assert result.outcomes == ["updated"], source.name
        assert result.ids == created.ids, source.name
    (vacancy,) = _all(db, org)
    assert vacancy.title == "Senior Data Analyst"
    # Seen again unchanged, from either source: still the one record.
    again = poll(second, "agg-77", "Senior Data Analyst", later + dt.timedelta(hours=3))
    assert again.ids == created.ids and _count(db, org) == 1


def test_a_pushed_id_matched_by_link_keeps_its_vacancy_when_the_title_changes(db):
    org = make_org(db, "ingest-retitle-push", NOW)
    feed = _source(db, org, "Kestrel", url="https://careers.kestrel.example/feed")
    pushed = _source(db, org, "Push", kind="push", url=None)
    created = service.ingest(
        db, feed, _items(feed, _listing("k-1", SHARED_LINK, "Data Analyst")), NOW
    )

    def push(title, now):
        body = f"id,Title,URL,Employer\nP-5,{title},{SHARED_LINK},\n".encode()
        return service.ingest(db, pushed, _items(pushed, body, now), now, by_external_id=True)

    first = push("Data Analyst", NOW + dt.timedelta(hours=1))
    assert first.ids == created.ids
    retitled = push("Lead Data Analyst", NOW + dt.timedelta(days=1))
    assert retitled.outcomes == ["updated"] and retitled.ids == created.ids
    assert _count(db, org) == 1


def test_a_listing_is_not_remembered_for_a_guid_the_batch_uses_for_two_links(db):
    org = make_org(db, "ingest-retitle-badguid", NOW)
    owner = _source(db, org, "Kestrel", url="https://careers.kestrel.example/feed")
    second = _source(db, org, "Aggregator", url="https://aggregator.example/feed")
    service.ingest(db, owner, _items(owner, _listing("k-1", SHARED_LINK, "Data Analyst")), NOW)
    two = _listing("same", SHARED_LINK, "Data Analyst").replace(
        b"</channel>",
        b"<item><title>Porter</title><link>https://aggregator.example/p</link>"
        b'<guid isPermaLink="false">same</guid></item></channel>',
    )
    result = service.ingest(db, second, _items(second, two), NOW)
    assert result.outcomes == ["updated", "created"]
    assert db.scalar(select(func.count()).select_from(VacancyListing)) == 0
