"""Engagement figures through /api/v1/metrics: scopes, per-item results, 422 shapes, isolation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from campaign.models import AuditEvent
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services.tokens import create_token
from tests.conftest import NOW
from tests.services.test_engagement_import import channel, publish

T0 = NOW - dt.timedelta(days=2)


@pytest.fixture
def bearer(db, world):
    def make(scopes, org=None):
        _token, plain = create_token(db, (org or world.home.org).id, "test", scopes, None, NOW)
        return {"Authorization": f"Bearer {plain}"}

    return make


@pytest.fixture
def posts(db, world):
    org = world.home.org
    single = publish(db, org, [channel(db, org, "X")], externals=["x-1"], published_at=T0)
    double = publish(
        db,
        org,
        [channel(db, org, "Bluesky"), channel(db, org, "Mastodon")],
        externals=["b-2", "m-2"],
        published_at=T0,
    )
    theirs = publish(
        db, world.other.org, [channel(db, world.other.org, "Z")], externals=["z-1"], published_at=T0
    )
    return single, double, theirs


def at(hours):
    return (T0 + dt.timedelta(hours=hours)).isoformat()


def count(db):
    return db.scalar(select(func.count(MetricSnapshot.id)))


def test_each_item_is_saved_or_refused_and_the_good_ones_are_kept(client, db, bearer, posts):
    single, double, theirs = posts
    items = [
        {"post_id": single.id, "collected_at": at(26), "impressions": 900, "clicks": 12},
        {"post_id": double.id, "collected_at": at(2), "likes": 3},
        {"external_id": "m-2", "collected_at": at(2), "likes": 3, "quotes": None},
        {"post_id": theirs.id, "collected_at": at(2), "likes": 1},
        {"external_id": "z-1", "collected_at": at(2), "likes": 1},
        {"post_id": single.id, "collected_at": at(-1), "likes": 1},
    ]
    response = client.post(
        "/api/v1/metrics", json={"items": items}, headers=bearer(["metrics:write"])
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["saved"], body["refused"]) == (2, 4)
    results = body["results"]
    assert [r["status"] for r in results] == [
        "saved",
        "refused",
        "saved",
        "refused",
        "refused",
        "refused",
    ]
    assert results[0] == {
        "index": 0,
        "status": "saved",
        "reason": None,
        "post_id": single.id,
        "delivery_id": single.deliveries[0].id,
        "window": "24h",
    }
    assert results[2]["delivery_id"] == double.deliveries[1].id and results[2]["window"] == "1h"
    assert results[1]["reason"] == (
        f"post_id: post {double.id} went out on 2 channels (Bluesky, Mastodon); use the "
        "external_id column to say which."
    )
    assert results[3]["reason"] == f"post_id: no post {theirs.id} in this organisation."
    assert results[4]["reason"] == (
        "external_id: no published post with external_id “z-1” in this organisation."
    )
    assert "is before the post went out on X" in results[5]["reason"]
    stored = db.scalars(
        select(MetricSnapshot).where(MetricSnapshot.delivery_id == single.deliveries[0].id)
    ).all()
    assert {(s.window, s.source, s.impressions, s.link_clicks) for s in stored} == {
        ("24h", "csv", 900, 12),
        ("latest", "csv", 900, 12),
    }
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "engagement.imported")).one()
    assert event.detail["saved"] == 2 and event.actor_label.startswith("API token")


def test_sending_the_same_reading_again_replaces_its_figures(client, db, bearer, posts):
    headers = bearer(["metrics:write"])
    for likes in (3, 3, 5):
        item = {"external_id": "x-1", "collected_at": at(3), "likes": likes}
        assert (
            client.post("/api/v1/metrics", json={"items": [item]}, headers=headers).status_code
            == 200
        )
    db.expire_all()
    assert count(db) == 2
    assert {s.likes for s in db.scalars(select(MetricSnapshot))} == {5}


@pytest.mark.parametrize(
    ("scopes", "status"),
    [(["read"], 403), (["posts:write"], 403), (["metrics:write"], 200), (["admin"], 200)],
)
def test_posting_needs_the_metrics_write_scope(client, db, bearer, posts, scopes, status):
    single, _, _ = posts
    item = {"post_id": single.id, "collected_at": at(3), "likes": 1}
    response = client.post("/api/v1/metrics", json={"items": [item]}, headers=bearer(scopes))
    assert response.status_code == status
    if status == 403:
        assert response.get_json()["error"]["code"] == "forbidden"
        assert count(db) == 0


def test_no_token_is_401(client, db, posts):
    item = {"external_id": "x-1", "collected_at": at(3), "likes": 1}
    response = client.post("/api/v1/metrics", json={"items": [item]})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    assert count(db) == 0
    assert client.get("/api/v1/metrics?post_id=1").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [{"collected_at": "2026-03-01T10:00:00Z", "likes": 1}]}, "items.0"),
        ({"items": [{"post_id": 1, "collected_at": "2026-03-01T10:00:00Z"}]}, "items.0"),
        ({"items": [{"post_id": 1, "collected_at": "2026-03-01T10:00:00", "likes": 1}]},
         "items.0.collected_at"),
        ({"items": [{"post_id": 1, "collected_at": "2026-03-01T10:00:00Z", "likes": -1}]},
         "items.0.likes"),
        ({"items": [{"post_id": 1, "collected_at": "2026-03-01T10:00:00Z", "views": 1}]},
         "items.0.views"),
        ({"items": [{"post_id": 0, "collected_at": "2026-03-01T10:00:00Z", "likes": 1}]},
         "items.0.post_id"),
        ({"items": [{"post_id": 1, "collected_at": "2026-03-01T10:00:00Z", "likes": 2**40}]},
         "items.0.likes"),
    ],
)  # fmt: skip
def test_malformed_bodies_are_422_in_the_error_shape(client, db, bearer, body, field):
    response = client.post("/api/v1/metrics", json=body, headers=bearer(["metrics:write"]))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input"
    assert any(key.startswith(field) for key in error["details"]), error
    assert count(db) == 0


def test_more_than_a_thousand_items_are_refused(client, bearer, posts):
    single, _, _ = posts
    item = {"post_id": single.id, "collected_at": at(3), "likes": 1}
    response = client.post(
        "/api/v1/metrics", json={"items": [item] * 1001}, headers=bearer(["metrics:write"])
    )
    assert response.status_code == 422 and "items" in response.get_json()["error"]["details"]


def test_a_non_json_body_is_422(client, bearer):
    response = client.post(
        "/api/v1/metrics",
        data="post_id=1",
        headers={**bearer(["metrics:write"]), "Content-Type": "text/plain"},
    )
    assert response.status_code in (415, 422)
    assert "error" in response.get_json()


def test_the_idempotency_key_replays_the_first_answer(client, db, bearer, posts):
    single, _, _ = posts
    headers = {**bearer(["metrics:write"]), "Idempotency-Key": "figures-2026-03-02"}
    body = {"items": [{"post_id": single.id, "collected_at": at(3), "likes": 4}]}
    first = client.post("/api/v1/metrics", json=body, headers=headers)
    again = client.post("/api/v1/metrics", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    events = db.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "engagement.imported")
    )
    assert events == 1
    other = {"items": [{"post_id": single.id, "collected_at": at(3), "likes": 5}]}
    assert client.post("/api/v1/metrics", json=other, headers=headers).status_code == 409


def test_get_returns_a_posts_snapshots_and_tracked_clicks(client, db, bearer, posts, world):
    single, double, theirs = posts
    writer, reader = bearer(["metrics:write"]), bearer(["read"])
    client.post(
        "/api/v1/metrics",
        json={"items": [{"external_id": "b-2", "collected_at": at(25), "likes": 8, "clicks": 2}]},
        headers=writer,
    )
    link = TrackedLink(
        code="zz9", delivery_id=double.deliveries[0].id, organisation_id=world.home.org.id,
        target_url="https://example.ac.uk", target_sha256="1" * 64, created_at=T0,
    )  # fmt: skip
    db.add(link)
    db.flush()
    db.add(
        LinkClick(
            link_id=link.id, clicked_at=T0, day=T0.date(), visitor_hash="a", is_first_today=True
        )
    )
    db.flush()
    response = client.get(f"/api/v1/metrics?post_id={double.id}", headers=reader)
    assert response.status_code == 200
    body = response.get_json()
    bluesky, mastodon = body["deliveries"]
    assert (bluesky["channel"], bluesky["external_id"]) == ("Bluesky", "b-2")
    assert (bluesky["tracked_clicks"], bluesky["tracked_unique_clicks"]) == (1, 1)
    assert [
        (s["window"], s["source"], s["likes"], s["clicks"], s["impressions"])
        for s in bluesky["snapshots"]
    ] == [
        ("24h", "csv", 8, 2, None),
        ("latest", "csv", 8, 2, None),
    ]
    assert bluesky["snapshots"][0]["collected_at"] == at(25).replace("+00:00", "Z")
    assert mastodon["snapshots"] == [] and mastodon["tracked_clicks"] == 0
    # Another organisation's post is not found; a missing post_id is 422.
    missing = client.get(f"/api/v1/metrics?post_id={theirs.id}", headers=reader)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/metrics", headers=reader).status_code == 422
    assert client.get("/api/v1/metrics?post_id=abc", headers=reader).status_code == 422
    assert client.get(f"/api/v1/metrics?post_id={single.id}", headers=writer).status_code == 403


def test_the_operations_are_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operations = document["paths"]["/api/v1/metrics"]
    assert set(operations) >= {"get", "post"}
    assert "metrics:write" in operations["post"]["description"] + operations["post"]["summary"]
