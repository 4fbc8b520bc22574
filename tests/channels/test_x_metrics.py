"""Reading X post metrics through GET /2/tweets, against `responses` fakes of the v2 API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from campaign.channels.x import XAdapter

BASE = "http://127.0.0.1:9"
TWEETS = f"{BASE}/2/tweets"
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
OAUTH1 = {
    "auth": "oauth1",
    "consumer_key": "ck-SECRET",
    "consumer_secret": "cs-SECRET",
    "access_token": "at-SECRET",
    "access_token_secret": "ats-SECRET",
}
PUBLIC = {
    "retweet_count": 50,
    "reply_count": 12,
    "like_count": 234,
    "quote_count": 5,
    "bookmark_count": 8,
    "impression_count": 5432,
}
NOT_FOUND = {
    "resource_id": "456",
    "resource_type": "tweet",
    "title": "Not Found Error",
    "detail": "Could not find tweet with id: [456].",
    "type": "https://api.x.com/2/problems/resource-not-found",
    "parameter": "ids",
    "value": "456",
}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def make_adapter() -> XAdapter:
    context = ChannelContext(
        kind="x",
        base_url=BASE,
        credentials=dict(OAUTH1),
        http=requests.Session(),
        extra={"clock": lambda: NOW},
    )
    return XAdapter(context)


def ref(external_id: str, age: dt.timedelta = dt.timedelta(hours=2)) -> PublishedRef:
    return PublishedRef(
        delivery_id=int(external_id), external_id=external_id, published_at=NOW - age
    )


def tweet(tweet_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": tweet_id, "text": "Careers fair", "edit_history_tweet_ids": [tweet_id], **fields}


def fields_asked(call: Any) -> set[str]:
    query = parse_qs(urlsplit(call.request.url).query)
    return set(query["tweet.fields"][0].split(","))


def test_recent_post_reads_public_and_non_public_metrics(mocked):
    private = {"impression_count": 5000, "url_link_clicks": 31, "user_profile_clicks": 4}
    mocked.get(
        TWEETS,
        json={"data": [tweet("123", public_metrics=PUBLIC, non_public_metrics=private)]},
    )
    results = make_adapter().fetch_metrics([ref("123")])
    assert results == {
        "123": PlatformMetrics(
            impressions=5432,
            likes=234,
            reposts=50,
            replies=12,
            quotes=5,
            bookmarks=8,
            link_clicks=31,
            profile_clicks=4,
        )
    }
    assert fields_asked(mocked.calls[0]) == {"public_metrics", "non_public_metrics"}
    assert parse_qs(urlsplit(mocked.calls[0].request.url).query)["ids"] == ["123"]
    assert mocked.calls[0].request.headers["Authorization"].startswith("OAuth ")


def test_batch_asks_for_every_id_in_one_call(mocked):
    mocked.get(
        TWEETS,
        json={
            "data": [tweet("1", public_metrics=PUBLIC), tweet("2", public_metrics=PUBLIC)],
            "meta": {"result_count": 2},
        },
    )
    results = make_adapter().fetch_metrics([ref("1"), ref("2")])
    assert set(results) == {"1", "2"}
    assert len(mocked.calls) == 1
    assert parse_qs(urlsplit(mocked.calls[0].request.url).query)["ids"] == ["1,2"]


def test_repost_count_is_accepted_as_well_as_retweet_count(mocked):
    renamed = {k: v for k, v in PUBLIC.items() if k != "retweet_count"} | {"repost_count": 17}
    mocked.get(TWEETS, json={"data": [tweet("123", public_metrics=renamed)]})
    result = make_adapter().fetch_metrics([ref("123")])["123"]
    assert isinstance(result, PlatformMetrics)
    assert result.reposts == 17


def test_missing_fields_are_none_not_zero_and_not_a_crash(mocked):
    mocked.get(
        TWEETS,
        json={
            "data": [
                tweet("1", public_metrics={"like_count": 3, "reply_count": "bad"}),
                tweet("2"),
            ]
        },
    )
    results = make_adapter().fetch_metrics([ref("1"), ref("2")])
    assert results["1"] == PlatformMetrics(likes=3)
    assert results["2"] == PlatformMetrics()


def test_deleted_tweet_in_the_errors_array_is_not_found(mocked):
    mocked.get(
        TWEETS,
        json={"data": [tweet("123", public_metrics=PUBLIC)], "errors": [NOT_FOUND]},
    )
    results = make_adapter().fetch_metrics([ref("123"), ref("456")])
    assert isinstance(results["123"], PlatformMetrics)
    assert results["456"] == NotFoundOnPlatform("Could not find tweet with id: [456].")


def test_an_id_left_out_of_the_answer_is_not_found(mocked):
    mocked.get(TWEETS, json={"errors": [NOT_FOUND | {"resource_id": "9", "value": "9"}]})
    results = make_adapter().fetch_metrics([ref("456")])
    assert isinstance(results["456"], NotFoundOnPlatform)


def test_posts_older_than_30_days_ask_for_public_metrics_only(mocked):
    mocked.get(TWEETS, json={"data": [tweet("123", public_metrics=PUBLIC)]})
    result = make_adapter().fetch_metrics([ref("123", dt.timedelta(days=31))])["123"]
    assert fields_asked(mocked.calls[0]) == {"public_metrics"}
    assert isinstance(result, PlatformMetrics)
    assert result.link_clicks is None and result.profile_clicks is None
    assert result.likes == 234


def test_refused_non_public_fields_fall_back_to_public_only(mocked):
    refusal = {
        "resource_id": "123",
        "resource_type": "tweet",
        "field": "non_public_metrics",
        "title": "Field Authorization Error",
        "section": "data",
        "detail": "Sorry, you are not authorized to access 'non_public_metrics' on a Tweet.",
        "type": "https://api.x.com/2/problems/not-authorized-for-field",
    }
    mocked.get(TWEETS, json={"errors": [refusal]})
    mocked.get(TWEETS, json={"data": [tweet("123", public_metrics=PUBLIC)]})
    result = make_adapter().fetch_metrics([ref("123")])["123"]
    assert [fields_asked(call) for call in mocked.calls] == [
        {"public_metrics", "non_public_metrics"},
        {"public_metrics"},
    ]
    assert isinstance(result, PlatformMetrics)
    assert result.likes == 234 and result.link_clicks is None


def test_a_403_for_non_public_fields_falls_back_to_public_only(mocked):
    forbidden = {"title": "Forbidden", "type": "about:blank", "status": 403, "detail": "Forbidden"}
    mocked.get(TWEETS, json=forbidden, status=403)
    mocked.get(TWEETS, json={"data": [tweet("123", public_metrics=PUBLIC)]})
    result = make_adapter().fetch_metrics([ref("123")])["123"]
    assert isinstance(result, PlatformMetrics) and result.impressions == 5432
    assert len(mocked.calls) == 2


def test_rate_limit_is_retryable_after_the_reset_header(mocked):
    reset = int(NOW.timestamp()) + 420
    mocked.get(
        TWEETS,
        json={"title": "Too Many Requests", "type": "about:blank", "status": 429},
        status=429,
        headers={
            "x-rate-limit-limit": "900",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset),
        },
    )
    with pytest.raises(RetryableError) as caught:
        make_adapter().fetch_metrics([ref("123", dt.timedelta(days=40))])
    assert caught.value.status == 429
    assert caught.value.retry_after == pytest.approx(420)


def test_usage_cap_is_permanent(mocked):
    capped = {
        "title": "UsageCapExceeded",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped",
    }
    mocked.get(TWEETS, json=capped, status=429)
    with pytest.raises(PermanentError, match="usage cap"):
        make_adapter().fetch_metrics([ref("123", dt.timedelta(days=40))])


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"title": "Unauthorized", "type": "about:blank", "status": 401}, ReconnectNeeded),
        (503, {"title": "Service Unavailable"}, RetryableError),
        (500, "oops", RetryableError),
    ],
)
def test_http_errors_map_to_outcome_classes(mocked, status, body, expected):
    if isinstance(body, dict):
        mocked.get(TWEETS, json=body, status=status)
    else:
        mocked.get(TWEETS, body=body, status=status)
    with pytest.raises(expected):
        make_adapter().fetch_metrics([ref("123")])


def test_a_read_timeout_is_retryable(mocked):
    mocked.get(TWEETS, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(RetryableError):
        make_adapter().fetch_metrics([ref("123")])


@pytest.mark.parametrize("body", [{}, {"data": {"id": "123"}}, {"meta": {"result_count": 0}}])
def test_an_unreadable_answer_is_retryable_not_every_post_gone(mocked, body):
    mocked.get(TWEETS, json=body)
    with pytest.raises(RetryableError, match="unreadable"):
        make_adapter().fetch_metrics([ref("123", dt.timedelta(days=40))])
