"""Reading Bluesky post counts (app.bsky.feed.getPosts) from an in-process fake PDS."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest

from campaign.channels.base import (
    NotFoundOnPlatform,
    PermanentError,
    PlatformMetrics,
    PublishedRef,
    ReconnectNeeded,
    RetryableError,
)
from tests.channels.test_bluesky import DID, HANDLE, FakePds, make_adapter, xrpc_error

GET_POSTS = "app.bsky.feed.getPosts"
PUBLISHED = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def uri(rkey: str) -> str:
    return f"at://{DID}/app.bsky.feed.post/{rkey}"


def post_view(rkey: str, **counts: Any) -> dict[str, Any]:
    return {
        "uri": uri(rkey),
        "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5",
        "author": {"did": DID, "handle": HANDLE},
        "record": {"$type": "app.bsky.feed.post", "text": "Careers fair", "createdAt": "2026"},
        "indexedAt": "2026-03-02T09:30:01.000Z",
        **counts,
    }


class MetricsPds(FakePds):
    """The fake PDS, also serving getPosts from `views` (a URI it lacks is left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.views: dict[str, dict[str, Any]] = {}

    def getPosts(self, request: httpx.Request) -> httpx.Response:
        uris = request.url.params.get_list("uris")
        return httpx.Response(200, json={"posts": [self.views[u] for u in uris if u in self.views]})


@pytest.fixture
def pds() -> MetricsPds:
    return MetricsPds()


def ref(rkey: str) -> PublishedRef:
    return PublishedRef(delivery_id=1, external_id=uri(rkey), published_at=PUBLISHED)


def test_counts_map_to_likes_reposts_replies_quotes_and_bookmarks(pds):
    pds.views[uri("a")] = post_view(
        "a", likeCount=9, repostCount=2, replyCount=1, quoteCount=0, bookmarkCount=4
    )
    results = make_adapter(pds, []).fetch_metrics([ref("a")])
    assert results == {
        uri("a"): PlatformMetrics(likes=9, reposts=2, replies=1, quotes=0, bookmarks=4)
    }
    request = next(r for n, r in pds.calls if n == GET_POSTS)
    assert request.headers["authorization"].startswith("Bearer ")


def test_all_uris_go_in_one_call(pds):
    for rkey in ("a", "b", "c"):
        pds.views[uri(rkey)] = post_view(rkey, likeCount=1)
    make_adapter(pds, []).fetch_metrics([ref("a"), ref("b"), ref("c")])
    [request] = [r for n, r in pds.calls if n == GET_POSTS]
    assert request.url.params.get_list("uris") == [uri("a"), uri("b"), uri("c")]


def test_missing_counts_are_none_and_there_are_no_impressions(pds):
    pds.views[uri("a")] = post_view("a", likeCount=5)
    result = make_adapter(pds, []).fetch_metrics([ref("a")])[uri("a")]
    assert result == PlatformMetrics(likes=5)


def test_a_uri_left_out_of_the_answer_is_not_found(pds):
    pds.views[uri("a")] = post_view("a", likeCount=5)
    results = make_adapter(pds, []).fetch_metrics([ref("a"), ref("gone")])
    assert isinstance(results[uri("a")], PlatformMetrics)
    assert isinstance(results[uri("gone")], NotFoundOnPlatform)


def test_rate_limit_is_retryable_with_the_reset_time(pds):
    reset = int(time.time()) + 600
    pds.fail[GET_POSTS] = xrpc_error(
        429,
        "RateLimitExceeded",
        "Rate Limit Exceeded",
        **{"RateLimit-Limit": "3000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)},
    )
    with pytest.raises(RetryableError) as caught:
        make_adapter(pds, []).fetch_metrics([ref("a")])
    assert caught.value.status == 429
    assert caught.value.retry_after is not None and 500 < caught.value.retry_after <= 601


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (xrpc_error(401, "AuthenticationRequired", "Token expired"), ReconnectNeeded),
        (xrpc_error(400, "InvalidRequest", "uris must be at-uris"), PermanentError),
        (xrpc_error(502, "UpstreamFailure", "AppView down"), RetryableError),
        (xrpc_error(500, "InternalServerError"), RetryableError),
    ],
)
def test_errors_map_to_outcome_classes(pds, response, expected):
    pds.fail[GET_POSTS] = response
    with pytest.raises(expected):
        make_adapter(pds, []).fetch_metrics([ref("a")])


def test_a_timeout_is_retryable(pds):
    pds.fail[GET_POSTS] = httpx.ReadTimeout("timed out")
    with pytest.raises(RetryableError):
        make_adapter(pds, []).fetch_metrics([ref("a")])


def test_a_failed_sign_in_is_reported_before_any_read(pds):
    adapter = make_adapter(pds, [], handle=HANDLE, app_password="wrong-pass-word-xxxx")
    with pytest.raises(ReconnectNeeded):
        adapter.fetch_metrics([ref("a")])
    assert GET_POSTS not in pds.paths()


def test_an_unreadable_answer_is_retryable_not_every_post_gone(pds):
    pds.fail[GET_POSTS] = httpx.Response(200, json={"feed": []})
    with pytest.raises(RetryableError, match="unreadable"):
        make_adapter(pds, []).fetch_metrics([ref("a")])
