"""The vacancy API: pushing with per-item results, listing, sources, scopes and isolation."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from campaign.models import Vacancy, VacancySource
from campaign.services.tokens import create_token
from tests.conftest import NOW


def _headers(db, org_id, scopes, name="integration"):
    _token, plain = create_token(db, org_id, name, scopes, None, NOW)
    return {"Authorization": f"Bearer {plain}"}


@pytest.fixture
def writer(db, world):
    return _headers(db, world.home.org.id, ["vacancies:write"])


@pytest.fixture
def reader(db, world):
    return _headers(db, world.home.org.id, ["read"], "reader")


def _item(external_id="R-1", **extra):
    item = {
        "external_id": external_id,
        "title": "Graduate Analyst",
        "employer": "Northgate Ltd",
        "url": f"https://careers.northgate.example/jobs/{external_id}",
        "location": "Leeds",
        "salary": "£27,000 - £31,000 pa",
        "closing_date": "2026-04-30",
        "description": "<p>Join us.</p><script>alert(1)</script>",
        "tags": ["finance", "graduate"],
    }
    item.update(extra)
    return item


def _count(db, org_id):
    return db.scalar(
        select(func.count()).select_from(Vacancy).where(Vacancy.organisation_id == org_id)
    )


def test_push_one_vacancy_creates_it(client, db, world, writer):
    response = client.post("/api/v1/vacancies", json=_item(), headers=writer)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "refused": 0}
    (result,) = body["results"]
    assert (result["index"], result["external_id"], result["result"]) == (0, "R-1", "created")
    vacancy = db.get(Vacancy, result["id"])
    assert vacancy.organisation_id == world.home.org.id
    assert (vacancy.title, vacancy.employer, vacancy.location) == (
        "Graduate Analyst",
        "Northgate Ltd",
        "Leeds",
    )
    assert vacancy.description_html == "<p>Join us.</p>"
    assert str(vacancy.salary_min) == "27000.00" and vacancy.salary_period == "year"
    assert vacancy.closes_at.isoformat() == "2026-04-30T22:59:59+00:00"  # end of day, BST
    assert vacancy.tag_list == ["finance", "graduate"]
    source = db.get(VacancySource, body["source_id"])
    assert (source.kind, source.organisation_id, source.name) == (
        "push",
        world.home.org.id,
        "API: integration",
    )


def test_batch_upserts_by_external_id_with_per_item_results(client, db, world, writer):
    first = client.post(
        "/api/v1/vacancies", json={"items": [_item("R-1"), _item("R-2")]}, headers=writer
    )
    assert first.json["counts"]["created"] == 2
    batch = [
        _item("R-1"),  # unchanged
        _item("R-2", title="Senior Analyst"),  # updated
        _item("R-3", url="https://careers.northgate.example/jobs/R-3b"),  # created
        _item("R-4", url="javascript:alert(1)"),  # refused: not http(s)
        {"external_id": "R-5", "title": "No employer or url"},  # refused: missing fields
        _item("R-6", closing_date="2026-02-31"),  # refused: impossible date
        "not an object",
    ]
    response = client.post("/api/v1/vacancies", json={"items": batch}, headers=writer)
    assert response.status_code == 200
    results = response.json["results"]
    assert [r["result"] for r in results] == [
        "unchanged",
        "updated",
        "created",
        "refused",
        "refused",
        "refused",
        "refused",
    ]
    assert results[0]["id"] == first.json["results"][0]["id"]
    assert results[1]["id"] == first.json["results"][1]["id"]
    assert results[3]["reason"] == "url: must be an absolute http or https URL"
    assert results[4]["reason"].startswith("employer: Field required")
    assert results[5]["reason"] == (
        "closing_date: closing date 2026-02-31 is impossible; no closing date set"
    )
    assert results[6]["external_id"] is None and results[6]["reason"]
    assert response.json["counts"] == {"created": 1, "updated": 1, "unchanged": 1, "refused": 4}
    assert _count(db, world.home.org.id) == 3
    assert db.get(Vacancy, results[1]["id"]).title == "Senior Analyst"


def test_a_repeat_in_one_batch_is_refused_as_a_duplicate(client, db, world, writer):
    response = client.post(
        "/api/v1/vacancies", json={"items": [_item("D-1"), _item("D-1")]}, headers=writer
    )
    results = response.json["results"]
    assert [r["result"] for r in results] == ["created", "refused"]
    assert results[1]["reason"] == "the same vacancy as item 0 of this batch"
    assert _count(db, world.home.org.id) == 1


def test_batches_are_bounded_and_bodies_checked(client, writer):
    too_many = {"items": [_item(f"X-{n}") for n in range(1001)]}
    assert client.post("/api/v1/vacancies", json=too_many, headers=writer).status_code == 422
    assert client.post("/api/v1/vacancies", json={"items": []}, headers=writer).status_code == 422
    bad = client.post("/api/v1/vacancies", data="nope", headers=writer)
    assert bad.status_code == 422 and bad.json["error"]["message"]
    listed = client.post("/api/v1/vacancies", json=[_item()], headers=writer)
    assert listed.status_code == 422


def test_push_needs_the_write_scope(client, reader):
    response = client.post("/api/v1/vacancies", json=_item(), headers=reader)
    assert response.status_code == 403
    assert client.post("/api/v1/vacancies", json=_item()).status_code == 401


def test_idempotency_key_replays_the_answer(client, db, world, writer):
    headers = {**writer, "Idempotency-Key": "push-1"}
    first = client.post("/api/v1/vacancies", json=_item(), headers=headers)
    again = client.post("/api/v1/vacancies", json=_item(), headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json and first.json["results"][0]["result"] == "created"
    other = client.post("/api/v1/vacancies", json=_item("Z"), headers=headers)
    assert other.status_code == 409


def test_a_token_sees_only_its_organisations_vacancies(client, db, world, writer, reader):
    client.post("/api/v1/vacancies", json=_item("H-1"), headers=writer)
    other_writer = _headers(db, world.other.org.id, ["vacancies:write"], "other")
    other = client.post("/api/v1/vacancies", json=_item("H-1"), headers=other_writer)
    assert other.json["results"][0]["result"] == "created"  # never matched across orgs
    listed = client.get("/api/v1/vacancies", headers=reader).json
    assert [v["external_id"] for v in listed["items"]] == ["H-1"]
    assert listed["items"][0]["id"] != other.json["results"][0]["id"]
    assert listed["total"] == 1 and listed["next_offset"] is None
    sources = client.get("/api/v1/vacancy-sources", headers=reader).json["items"]
    assert [s["name"] for s in sources] == ["API: integration"]


def test_list_filters_by_status_and_pages(client, db, world, writer, reader):
    items = [
        _item(f"P-{n}", closing_date="2026-03-01" if n == 0 else "2026-09-01") for n in range(3)
    ]
    client.post("/api/v1/vacancies", json={"items": items}, headers=writer)
    open_page = client.get("/api/v1/vacancies?status=open&limit=1", headers=reader).json
    assert (
        open_page["total"] == 2 and open_page["next_offset"] == 1 and len(open_page["items"]) == 1
    )
    expired = client.get("/api/v1/vacancies?status=expired", headers=reader).json
    assert [v["external_id"] for v in expired["items"]] == ["P-0"]
    assert expired["items"][0]["status"] == "expired"
    assert client.get("/api/v1/vacancies?status=all", headers=reader).json["total"] == 3
    assert client.get("/api/v1/vacancies?status=closed", headers=reader).status_code == 422
    shown = open_page["items"][0]
    assert shown["salary_min"] == "27000.00" and shown["closes_at"].endswith("Z")
    assert shown["flags"] == [] and shown["tags"] == ["finance", "graduate"]


def test_admin_adds_a_source_and_others_cannot(client, db, world, reader):
    admin = _headers(db, world.home.org.id, ["admin"], "admin")
    body = {"name": "Northgate feed", "url": "https://careers.northgate.example/feed.xml"}
    created = client.post("/api/v1/vacancy-sources", json=body, headers=admin)
    assert created.status_code == 201
    assert created.json["kind"] == "feed" and created.json["poll_interval_minutes"] == 60
    assert created.json["next_poll_at"] is not None
    assert client.post("/api/v1/vacancy-sources", json=body, headers=reader).status_code == 403
    no_url = client.post("/api/v1/vacancy-sources", json={"name": "x"}, headers=admin)
    assert no_url.status_code == 422 and no_url.json["error"]["details"]["field"] == "url"
    bad_kind = {"name": "x", "kind": "push"}
    assert client.post("/api/v1/vacancy-sources", json=bad_kind, headers=admin).status_code == 422


def test_a_disabled_push_source_refuses_pushes(client, db, world, writer):
    first = client.post("/api/v1/vacancies", json=_item(), headers=writer)
    source = db.get(VacancySource, first.json["source_id"])
    source.enabled = False
    db.flush()
    response = client.post("/api/v1/vacancies", json=_item("R-9"), headers=writer)
    assert response.status_code == 409
    assert "disabled" in response.json["error"]["message"]


def test_the_openapi_document_lists_the_vacancy_operations(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/vacancies"])
    assert {"post", "get"} <= set(paths["/api/v1/vacancy-sources"])
