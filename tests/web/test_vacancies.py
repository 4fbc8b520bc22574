"""The Vacancies pages: the list, one vacancy, the sources page and managing sources."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from campaign.models import Vacancy, VacancySource
from campaign.services import vacancies as records
from campaign.services.vacancy_sources import normalise_items
from campaign.vacancies.detect import parse_document
from tests.conftest import NOW

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vacancies"


def _source(db, org, name="Careers feed", kind="feed", url="https://jobs.example.org/feed"):
    source = VacancySource(organisation_id=org.id, name=name, kind=kind, url=url, created_at=NOW)
    db.add(source)
    db.flush()
    return source


def _load(db, source, fixture="export.csv"):
    parsed = parse_document((FIXTURES / fixture).read_bytes(), source_url=source.url or "")
    items, _ = normalise_items(
        parsed.items, tz="Europe/London", now=NOW, source_url="", scope=str(source.id)
    )
    return records.ingest(db, source, items, NOW)


def _vacancy(db, org, title):
    return db.scalar(
        select(Vacancy).where(Vacancy.organisation_id == org.id, Vacancy.title == title)
    )


def test_empty_list_says_what_to_do(client, auth, world, db):
    auth.login(world.home.staff.email)
    body = client.get("/vacancies").get_data(as_text=True)
    assert "there are no vacancy sources" in body and "vacancies:write" in body
    _source(db, world.home.org)
    body = client.get("/vacancies").get_data(as_text=True)
    assert "No open vacancies" in body


def test_list_shows_open_vacancies_in_the_organisations_time(client, auth, world, db):
    source = _source(db, world.home.org, "Spreadsheet", "csv", None)
    _load(db, source)
    other = _source(db, world.other.org, "Other", "csv", None)
    _load(db, other)
    _vacancy(db, world.other.org, "Graduate Surveyor").title = "Other university secret job"
    db.flush()
    auth.login(world.home.staff.email)
    body = client.get("/vacancies").get_data(as_text=True)
    assert "Graduate Surveyor" in body and "Ashby &amp; Stone LLP" in body
    assert "Fri 14 May 2027, 23:59 BST" in body  # 22:59:59 UTC, shown in Europe/London
    assert "£25k-£28k" in body and "Spreadsheet" in body
    assert "Unpaid" in body and "Commission or OTE" in body and "A date could not be read" in body
    assert "Other university secret job" not in body
    assert body.index("Sales Executive") < body.index("Graduate Surveyor")  # newest first
    records.expire(db, dt.datetime(2027, 5, 15, tzinfo=dt.UTC))
    open_now = client.get("/vacancies").get_data(as_text=True)
    assert "Graduate Surveyor" not in open_now
    expired = client.get("/vacancies?status=expired").get_data(as_text=True)
    assert "Graduate Surveyor" in expired and "Unpaid Intern" not in expired
    assert client.get("/vacancies?status=nonsense&page=x").status_code == 200


def test_detail_shows_warnings_and_the_sanitised_description(client, auth, world, db):
    source = _source(db, world.home.org, "Spreadsheet", "csv", None)
    _load(db, source)
    sales = _vacancy(db, world.home.org, "Sales Executive")
    sales.description_html = "<p>Great <strong>role</strong></p>"
    db.flush()
    auth.login(world.home.staff.email)
    body = client.get(f"/vacancies/{sales.id}").get_data(as_text=True)
    assert "closing date 31/02/2027 is impossible; no closing date set" in body
    assert "<p>Great <strong>role</strong></p>" in body
    assert "Commission or OTE" in body and "Not given" in body
    other = _source(db, world.other.org, "Other", "csv", None)
    _load(db, other)
    foreign = _vacancy(db, world.other.org, "Sales Executive")
    assert client.get(f"/vacancies/{foreign.id}").status_code == 404


def test_sources_page_shows_status_and_errors_in_words(client, auth, world, db):
    failing = _source(db, world.home.org, "Broken feed")
    failing.last_status, failing.last_error = "error", "HTTP 404 Not Found"
    failing.consecutive_errors = 3
    failing.last_polled_at = NOW
    working = _source(db, world.home.org, "Good feed")
    working.last_status, working.last_items, working.last_new, working.last_updated = (
        "ok", 12, 2, 1,
    )  # fmt: skip
    db.flush()
    auth.login(world.home.staff.email)
    body = client.get("/vacancies/sources").get_data(as_text=True)
    assert "Failing" in body and "HTTP 404 Not Found" in body and "3 times in a row" in body
    assert "12 items, 2 new, 1 updated" in body and "Working" in body
    assert "Add a source" not in body and "Poll now" not in body  # staff only read
    assert '<a href="/vacancies" aria-current="page">Vacancies</a>' in body  # the nav's area
    auth.logout()
    auth.login(world.home.manager.email)
    body = client.get("/vacancies/sources").get_data(as_text=True)
    assert "Add a source" in body and "Poll now" in body


def test_a_manager_adds_edits_polls_and_disables_a_source(client, auth, world, db):
    auth.login(world.home.manager.email)
    token = auth.csrf("/vacancies/sources/new")
    form = {
        "csrf_token": token, "name": "Northgate", "kind": "feed",
        "url": "https://careers.northgate.example/feed.xml", "poll_interval_minutes": "30",
        "withdraw_after_polls": "3", "enabled": "y",
    }  # fmt: skip
    response = client.post("/vacancies/sources/new", data=form)
    assert response.status_code == 302
    source = db.scalar(select(VacancySource).where(VacancySource.name == "Northgate"))
    assert (source.organisation_id, source.poll_interval_minutes) == (world.home.org.id, 30)

    bad = client.post("/vacancies/sources/new", data={**form, "url": "ftp://x"})
    assert bad.status_code == 200 and "must start with http" in bad.get_data(as_text=True)
    words = client.post("/vacancies/sources/new", data={**form, "poll_interval_minutes": "often"})
    assert "give a whole number" in words.get_data(as_text=True)

    edit = f"/vacancies/sources/{source.id}/edit"
    assert "Northgate" in client.get(edit).get_data(as_text=True)
    response = client.post(edit, data={**form, "name": "Northgate jobs", "csrf_token": token})
    assert response.status_code == 302 and source.name == "Northgate jobs"

    source.next_poll_at = NOW + dt.timedelta(hours=1)
    client.post(f"/vacancies/sources/{source.id}/poll", data={"csrf_token": token})
    assert source.next_poll_at == NOW
    client.post(f"/vacancies/sources/{source.id}/disable", data={"csrf_token": token})
    assert source.enabled is False
    body = client.get("/vacancies/sources").get_data(as_text=True)
    assert "Disabled" in body and "Enable" in body
    client.post(f"/vacancies/sources/{source.id}/enable", data={"csrf_token": token})
    assert source.enabled is True


def test_staff_cannot_manage_sources(client, auth, world, db):
    source = _source(db, world.home.org)
    auth.login(world.home.staff.email)
    token = auth.csrf("/vacancies")
    assert client.get("/vacancies/sources/new").status_code == 403
    assert (
        client.post(f"/vacancies/sources/{source.id}/poll", data={"csrf_token": token}).status_code
        == 403
    )


def test_uploading_a_csv_file_to_a_csv_source(client, auth, world, db):
    source = _source(db, world.home.org, "Spreadsheet", "csv", None)
    auth.login(world.home.manager.email)
    path = f"/vacancies/sources/{source.id}/upload"
    page = client.get(path).get_data(as_text=True)
    assert "closing date" in page
    token = auth.csrf(path)
    file = FileStorage(io.BytesIO((FIXTURES / "export.csv").read_bytes()), "export.csv")
    boundary, data = encode_multipart({"csrf_token": token, "file": file})
    response = client.post(
        path, data=data, content_type=f"multipart/form-data; boundary={boundary}"
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "5 rows: 3 new, 0 updated, 0 unchanged, 2 not read." in body
    assert "item 6: line 6: no title" in body
    assert db.scalar(select(Vacancy.id).where(Vacancy.title == "Unpaid Intern")) is not None
    empty = client.post(path, data={"csrf_token": token})
    assert "Choose a CSV file" in empty.get_data(as_text=True)
    feed = _source(db, world.home.org)
    refused = client.get(f"/vacancies/sources/{feed.id}/upload").get_data(as_text=True)
    assert "only to a CSV source" in refused
