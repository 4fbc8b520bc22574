"""Channels and deliveries through /api/v1: scopes, write-only credentials, organisation scope."""

import datetime as dt

import pytest
from sqlalchemy import select

from campaign.models import AuditEvent, Channel, Delivery, DeliveryAttempt
from campaign.services.tokens import create_token
from tests.conftest import NOW


@pytest.fixture
def bearer(db, world):
    def make(scopes, org=None):
        _token, plain = create_token(db, (org or world.home.org).id, "test", scopes, None, NOW)
        return {"Authorization": f"Bearer {plain}"}

    return make


MASTODON = {
    "kind": "mastodon",
    "name": "Careers on Mastodon",
    "base_url": "https://mastodon.example",
    "credentials": {"access_token": "very-secret-access-token"},
}


def test_admin_adds_a_channel_whose_credentials_are_never_returned(client, db, bearer):
    headers = bearer(["admin"])
    created = client.post("/api/v1/channels", json=MASTODON, headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["has_credentials"] is True
    assert "very-secret" not in created.get_data(as_text=True)
    listed = client.get("/api/v1/channels", headers=headers)
    assert "very-secret" not in listed.get_data(as_text=True)
    assert "Careers on Mastodon" in [c["name"] for c in listed.json["items"]]
    stored = db.get(Channel, created.json["id"])
    assert b"very-secret" not in stored.credentials_encrypted
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "channel.created")) is not None


@pytest.mark.parametrize("scopes", [["read"], ["posts:write"], ["metrics:write"]])
def test_channels_need_the_admin_scope(client, bearer, scopes):
    assert client.get("/api/v1/channels", headers=bearer(scopes)).status_code == 403
    assert client.post("/api/v1/channels", json=MASTODON, headers=bearer(scopes)).status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**MASTODON, "credentials": {}}, "mastodon credentials must be"),
        ({**MASTODON, "base_url": "javascript:alert(1)"}, "must be an http"),
        ({**MASTODON, "base_url": "https://user:pw@m.example"}, "must not carry credentials"),
        ({"kind": "bluesky", "name": "b", "credentials": {"handle": "x"}}, "app_password"),
        ({"kind": "outbox", "name": "o", "credentials": {"token": "x"}}, "take no credentials"),
    ],
)
def test_bad_channels_are_refused_with_the_reason(client, bearer, body, message):
    response = client.post("/api/v1/channels", json=body, headers=bearer(["admin"]))
    assert response.status_code == 422
    assert message in response.json["error"]["message"]


def test_unknown_kind_is_422_not_500(client, bearer):
    body = {**MASTODON, "kind": "myspace"}
    assert client.post("/api/v1/channels", json=body, headers=bearer(["admin"])).status_code == 422


def test_deliveries_list_with_state_filter_and_attempts(client, db, world, bearer):
    delivery = db.scalar(select(Delivery).where(Delivery.channel_id == world.home.channel.id))
    delivery.status = "failed"
    delivery.last_error = "Validation failed: Text too long"
    db.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            number=1,
            lease_token="t" * 32,
            worker_id="w",
            idempotency_key=delivery.idempotency_key,
            started_at=NOW,
            finished_at=NOW + dt.timedelta(seconds=1),
            outcome="failed",
            http_status=422,
            error="Validation failed: Text too long",
        )
    )
    db.flush()
    headers = bearer(["read"])
    failed = client.get("/api/v1/deliveries?state=failed,needs_review", headers=headers).json
    assert [d["id"] for d in failed["items"]] == [delivery.id]
    [attempt] = failed["items"][0]["attempt_log"]
    assert (attempt["outcome"], attempt["http_status"]) == ("failed", 422)
    assert client.get("/api/v1/deliveries?state=published", headers=headers).json["items"] == []
    one = client.get(f"/api/v1/deliveries/{delivery.id}", headers=headers)
    assert one.json["state"] == "failed"
    assert one.json["last_error"] == "Validation failed: Text too long"


def test_another_organisations_delivery_is_404(client, db, world, bearer):
    theirs = db.scalar(select(Delivery).where(Delivery.channel_id == world.other.channel.id))
    response = client.get(f"/api/v1/deliveries/{theirs.id}", headers=bearer(["read"]))
    assert response.status_code == 404
    listed = client.get("/api/v1/deliveries", headers=bearer(["read"])).json["items"]
    assert theirs.id not in [d["id"] for d in listed]


def test_an_unknown_state_is_422_naming_it(client, bearer):
    response = client.get("/api/v1/deliveries?state=lost", headers=bearer(["read"]))
    assert response.status_code == 422
    assert "'lost'" in response.json["error"]["message"]


@pytest.mark.parametrize(
    "path", ["/api/v1/deliveries/99999999999999999999", "/api/v1/deliveries?after_id=2147483648"]
)
def test_ids_beyond_the_database_range_are_client_errors_not_500(client, bearer, path):
    assert client.get(path, headers=bearer(["read"])).status_code in {404, 422}


def test_a_page_id_beyond_the_database_range_is_404(client, auth, world):
    auth.login(world.home.staff.email)
    assert client.get("/posts/deliveries/99999999999999999999").status_code == 404
