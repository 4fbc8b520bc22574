"""`Idempotency-Key` on API POSTs: one row per key, the first answer replayed, conflicts refused."""

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from campaign.db import utcnow
from campaign.models import Channel, IdempotencyKey
from campaign.services import idempotency
from campaign.services.tokens import create_token
from campaign.worker import jobs
from tests.conftest import NOW

MASTODON = {
    "kind": "mastodon",
    "name": "Careers on Mastodon",
    "base_url": "https://mastodon.example",
    "credentials": {"access_token": "very-secret-access-token"},
}
COMPARE = {
    "arms": [
        {"name": "bare link", "impressions": 3000, "clicks": 30},
        {"name": "context", "impressions": 3100, "clicks": 52},
    ]
}


@pytest.fixture
def bearer(db, world):
    def make(scopes=("admin",)):
        _token, plain = create_token(db, world.home.org.id, "test", list(scopes), None, NOW)
        return {"Authorization": f"Bearer {plain}"}

    return make


@pytest.fixture
def post_channel(client, bearer):
    headers = bearer()

    def post(key=None, body=MASTODON, auth=None):
        extra = {"Idempotency-Key": key} if key is not None else {}
        return client.post("/api/v1/channels", json=body, headers={**(auth or headers), **extra})

    return post


def _channels(db, name=MASTODON["name"]):
    return db.scalar(select(func.count()).select_from(Channel).where(Channel.display_name == name))


def test_same_key_and_body_twice_makes_one_channel_and_replays_the_answer(db, post_channel):
    first = post_channel("key-1")
    second = post_channel("key-1")
    assert first.status_code == second.status_code == 201
    assert second.get_data() == first.get_data()
    assert second.content_type == first.content_type == "application/json"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _channels(db) == 1


def test_same_key_with_a_different_body_is_a_conflict(db, post_channel):
    assert post_channel("key-1").status_code == 201
    other = post_channel("key-1", body={**MASTODON, "name": "Another"})
    assert other.status_code == 409
    assert other.json["error"]["code"] == "conflict"
    assert "different request" in other.json["error"]["message"]
    assert _channels(db, "Another") == 0


def test_different_keys_make_two_channels(db, post_channel):
    assert post_channel("key-1").status_code == 201
    assert post_channel("key-2").status_code == 201
    assert _channels(db) == 2


def test_without_the_header_nothing_is_stored_or_replayed(db, post_channel):
    first, second = post_channel(), post_channel()
    assert first.status_code == second.status_code == 201
    assert first.json["id"] != second.json["id"]
    assert "Idempotent-Replayed" not in second.headers
    assert db.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_a_refused_request_is_replayed_with_the_same_answer(post_channel):
    bad = {**MASTODON, "credentials": {}}
    first = post_channel("key-1", body=bad)
    second = post_channel("key-1", body=bad)
    assert first.status_code == second.status_code == 422
    assert second.json == first.json
    assert second.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", "k" * 256, "bad\x01key", "tab\there", "caf\u00e9"], ids=repr)
def test_a_malformed_key_is_refused_with_400_naming_the_header(db, post_channel, key):
    response = post_channel(key)
    assert response.status_code == 400
    assert response.json["error"]["details"] == {"header": "Idempotency-Key"}
    assert "Idempotency-Key" in response.json["error"]["message"]
    assert _channels(db) == 0


def test_the_longest_allowed_key_is_accepted(post_channel):
    assert post_channel("k" * 255).status_code == 201


def test_the_same_key_under_another_token_is_independent(db, bearer, post_channel):
    assert post_channel("shared").status_code == 201
    other = post_channel("shared", auth=bearer())
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other.headers
    assert _channels(db) == 2


def test_a_repeat_while_the_first_is_running_is_a_conflict(db, client, bearer, world):
    token, plain = create_token(db, world.home.org.id, "t", ["admin"], None, NOW)
    body = client.application.json.dumps(MASTODON).encode()
    fingerprint = idempotency.request_hash("POST", "/api/v1/channels", body)
    db.add(
        IdempotencyKey(
            api_token_id=token.id,
            key="busy",
            method="POST",
            path="/api/v1/channels",
            request_hash=fingerprint,
            created_at=NOW,
        )
    )
    db.flush()
    response = client.post(
        "/api/v1/channels",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {plain}", "Idempotency-Key": "busy"},
    )
    assert response.status_code == 409
    assert "still in progress" in response.json["error"]["message"]
    assert _channels(db) == 0


def test_a_crash_in_the_view_frees_the_key_for_a_retry(db, post_channel, monkeypatch):
    from campaign.web.api import publishing

    real = publishing.create_channel

    def broken(*_args, **_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(publishing, "create_channel", broken)
    with pytest.raises(RuntimeError):
        post_channel("key-1")
    assert db.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    monkeypatch.setattr(publishing, "create_channel", real)
    retried = post_channel("key-1")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


def test_losing_the_insert_race_replays_the_winner(db, world, monkeypatch):
    token, _plain = create_token(db, world.home.org.id, "t", ["admin"], None, NOW)
    fingerprint = idempotency.request_hash("POST", "/p", b"{}")
    won = idempotency.claim(db, token.id, "k", "POST", "/p", fingerprint, NOW)
    idempotency.complete(db, won.row_id, 201, '{"id": 7}', NOW)
    db.commit()
    # The loser looked before the winner inserted, so its own insert hits the unique constraint.
    real_find = idempotency._find
    first_answers = [None]
    monkeypatch.setattr(
        idempotency, "_find", lambda *a: first_answers.pop() if first_answers else real_find(*a)
    )
    assert idempotency.claim(db, token.id, "k", "POST", "/p", fingerprint, NOW) == (
        idempotency.Replay(201, '{"id": 7}')
    )


def test_compare_with_a_key_replays_the_answer(client, bearer):
    headers = {**bearer(["read"]), "Idempotency-Key": "cmp-1"}
    first = client.post("/api/v1/analysis/compare", json=COMPARE, headers=headers)
    second = client.post("/api/v1/analysis/compare", json=COMPARE, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.get_data() == first.get_data()
    assert second.headers["Idempotent-Replayed"] == "true"


def test_prune_job_forgets_keys_older_than_a_day_and_keeps_newer_ones(db, world):
    token, _plain = create_token(db, world.home.org.id, "t", ["admin"], None, NOW)
    current = utcnow()
    for key, age in (("old", dt.timedelta(hours=25)), ("new", dt.timedelta(hours=23))):
        db.add(
            IdempotencyKey(
                api_token_id=token.id,
                key=key,
                method="POST",
                path="/p",
                request_hash="0" * 64,
                created_at=current - age,
            )
        )
    db.commit()
    factory = sessionmaker(bind=db.connection(), join_transaction_mode="create_savepoint")
    jobs.prune_idempotency_keys(factory)
    assert db.scalars(select(IdempotencyKey.key)).all() == ["new"]


def test_a_claim_abandoned_by_a_dead_process_is_taken_over_by_a_retry(db, world):
    token, _plain = create_token(db, world.home.org.id, "t", ["admin"], None, NOW)
    fingerprint = idempotency.request_hash("POST", "/p", b"{}")
    first = idempotency.claim(db, token.id, "k", "POST", "/p", fingerprint, NOW)
    # Its process died before completing or releasing it: a retry soon after still waits...
    soon = NOW + idempotency.ABANDONED_AFTER - dt.timedelta(seconds=1)
    with pytest.raises(idempotency.KeyInProgress):
        idempotency.claim(db, token.id, "k", "POST", "/p", fingerprint, soon)
    # ...another request with the key is still refused as a different request...
    other = idempotency.request_hash("POST", "/p", b'{"x": 1}')
    later = NOW + idempotency.ABANDONED_AFTER + dt.timedelta(seconds=1)
    with pytest.raises(idempotency.KeyReused):
        idempotency.claim(db, token.id, "k", "POST", "/p", other, later)
    # ...and the same request, once the claim is clearly abandoned, takes it over.
    again = idempotency.claim(db, token.id, "k", "POST", "/p", fingerprint, later)
    assert again == idempotency.Claimed(first.row_id)
    with pytest.raises(idempotency.KeyInProgress):
        idempotency.claim(db, token.id, "k", "POST", "/p", fingerprint, later)
