"""Reading Mastodon status counts (GET /api/v1/statuses/:id) against `responses` fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from campaign.channels.base import (
    ChannelContext,
    NotFoundOnPlatform,
    PermanentError,
    PlatformMetrics,
    PublishedRef,
    ReconnectNeeded,
    RetryableError,
)
from campaign.channels.mastodon import MastodonAdapter

BASE = "http://127.0.0.1:3000"
TOKEN = "token-SECRET"
PUBLISHED = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def make_adapter() -> MastodonAdapter:
    return MastodonAdapter(
        ChannelContext(
            kind="mastodon",
            base_url=BASE,
            credentials={"access_token": TOKEN},
            http=requests.Session(),
        )
    )


def ref(status_id: str) -> PublishedRef:
    return PublishedRef(delivery_id=1, external_id=status_id, published_at=PUBLISHED)


def status_json(status_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": status_id,
        "created_at": "2026-03-02T09:30:05.123Z",
        "url": f"https://m.example/@careers/{status_id}",
        "uri": f"https://m.example/users/careers/statuses/{status_id}",
        "visibility": "public",
        "content": "<p>Careers fair on Tuesday!</p>",
        "replies_count": 3,
        "reblogs_count": 7,
        "favourites_count": 21,
        "account": {"id": "7", "username": "careers", "acct": "careers"},
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
    }
    body.update(overrides)
    return body


def iso_in(seconds: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_counts_map_to_likes_reposts_replies_and_quotes(mocked):
    mocked.get(f"{BASE}/api/v1/statuses/101", json=status_json("101", quotes_count=2))
    results = make_adapter().fetch_metrics([ref("101")])
    assert results == {"101": PlatformMetrics(likes=21, reposts=7, replies=3, quotes=2)}
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_missing_quotes_count_is_none_and_impressions_are_never_reported(mocked):
    mocked.get(f"{BASE}/api/v1/statuses/101", json=status_json("101"))
    result = make_adapter().fetch_metrics([ref("101")])["101"]
    assert isinstance(result, PlatformMetrics)
    assert result.quotes is None
    assert result.impressions is None and result.link_clicks is None
    assert result.likes == 21


def test_one_call_per_status(mocked):
    mocked.get(f"{BASE}/api/v1/statuses/101", json=status_json("101"))
    mocked.get(f"{BASE}/api/v1/statuses/102", json=status_json("102", favourites_count=0))
    results = make_adapter().fetch_metrics([ref("101"), ref("102")])
    assert len(mocked.calls) == 2
    assert results["102"] == PlatformMetrics(likes=0, reposts=7, replies=3)


def test_a_404_is_not_found(mocked):
    mocked.get(f"{BASE}/api/v1/statuses/101", json={"error": "Record not found"}, status=404)
    mocked.get(f"{BASE}/api/v1/statuses/102", json=status_json("102"))
    results = make_adapter().fetch_metrics([ref("101"), ref("102")])
    assert isinstance(results["101"], NotFoundOnPlatform)
    assert isinstance(results["102"], PlatformMetrics)


def test_rate_limit_is_retryable_after_the_iso_reset(mocked):
    mocked.get(
        f"{BASE}/api/v1/statuses/101",
        json={"error": "Too many requests"},
        status=429,
        headers={
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": iso_in(300),
        },
    )
    with pytest.raises(RetryableError) as caught:
        make_adapter().fetch_metrics([ref("101")])
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert 200 < caught.value.retry_after <= 301


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"error": "The access token is invalid"}, ReconnectNeeded),
        (503, {"error": "Service unavailable"}, RetryableError),
        (500, {"error": "Internal"}, RetryableError),
        (403, {"error": "This action is not allowed"}, PermanentError),
    ],
)
def test_http_errors_map_to_outcome_classes(mocked, status, body, expected):
    mocked.get(f"{BASE}/api/v1/statuses/101", json=body, status=status)
    with pytest.raises(expected):
        make_adapter().fetch_metrics([ref("101")])


def test_an_unreachable_instance_is_retryable(mocked):
    mocked.get(f"{BASE}/api/v1/statuses/101", body=requests.ConnectionError("refused"))
    with pytest.raises(RetryableError):
        make_adapter().fetch_metrics([ref("101")])


def test_a_status_without_any_counts_is_all_none(mocked):
    mocked.get(f"{BASE}/api/v1/statuses/101", json={"id": "101", "favourites_count": None})
    assert make_adapter().fetch_metrics([ref("101")]) == {"101": PlatformMetrics()}
