"""The X adapter against `responses` fakes of the v2 API (and a few real loopback sockets)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature

from campaign import netguard
from campaign.channels.base import (
    ChannelContext,
    DuplicateRejected,
    LookupUnavailable,
    OutgoingPost,
    PermanentError,
    ReconnectNeeded,
    RetryableError,
    UnknownOutcome,
)
from campaign.channels.x import XAdapter, normalise_for_match, x_text_problems, x_weighted_length

BASE = "http://127.0.0.1:9"
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
OAUTH1 = {
    "auth": "oauth1",
    "consumer_key": "ck-SECRET",
    "consumer_secret": "cs-SECRET",
    "access_token": "at-SECRET",
    "access_token_secret": "ats-SECRET",
}


def oauth2(expires_at: dt.datetime = NOW + dt.timedelta(hours=1)) -> dict[str, Any]:
    return {
        "auth": "oauth2",
        "access_token": "old-access-SECRET",
        "refresh_token": "old-refresh-SECRET",
        "expires_at": expires_at.isoformat(),
        "client_id": "client-1",
    }


def make_adapter(
    credentials: dict[str, Any] | None = None,
    *,
    base_url: str = BASE,
    http: requests.Session | None = None,
    on_change: Any = None,
) -> XAdapter:
    context = ChannelContext(
        kind="x",
        base_url=base_url,
        credentials=dict(OAUTH1 if credentials is None else credentials),
        http=http or requests.Session(),
        timeout=7.5,
        extra={"clock": lambda: NOW},
    )
    if on_change is not None:
        context.on_credentials_change = on_change
    return XAdapter(context)


def outgoing(**overrides: Any) -> OutgoingPost:
    fields: dict[str, Any] = {
        "delivery_id": 1,
        "idempotency_key": "key-1",
        "text": "Careers fair on Friday: https://careers.example.ac.uk/fair?utm_source=x & more",
        "link_url": "https://careers.example.ac.uk/fair?utm_source=x",
        "due_at": NOW,
    }
    fields.update(overrides)
    return OutgoingPost(**fields)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def created(api: responses.RequestsMock, post_id: str = "1456012973835788293") -> None:
    api.post(f"{BASE}/2/tweets", json={"data": {"id": post_id, "text": "..."}}, status=201)


# -- publish --------------------------------------------------------------------------------


def test_publish_returns_the_post_id_and_status_url(api: responses.RequestsMock) -> None:
    created(api)

    published = make_adapter().publish(outgoing())

    assert published.external_id == "1456012973835788293"
    assert published.url == "https://x.com/i/web/status/1456012973835788293"


def test_publish_sends_the_text_to_the_configured_base_url(api: responses.RequestsMock) -> None:
    created(api)

    make_adapter().publish(outgoing(text="Hello from careers"))

    request = api.calls[0].request
    assert request.url == f"{BASE}/2/tweets"
    assert json.loads(request.body) == {"text": "Hello from careers"}


def test_oauth1_signature_covers_the_configured_url(api: responses.RequestsMock) -> None:
    created(api)

    make_adapter().publish(outgoing())

    request = api.calls[0].request
    header = request.headers["Authorization"]
    header = header.decode() if isinstance(header, bytes) else header
    assert header.startswith("OAuth ")
    checked = OAuthRequest(request.url, request.method)
    checked.params = signature.collect_parameters(headers={"Authorization": header})
    every = signature.collect_parameters(
        headers={"Authorization": header}, exclude_oauth_signature=False
    )
    checked.signature = dict(every)["oauth_signature"]
    assert signature.verify_hmac_sha1(checked, "cs-SECRET", "ats-SECRET")


def test_oauth2_publish_sends_the_user_token_as_bearer(api: responses.RequestsMock) -> None:
    created(api)

    make_adapter(oauth2()).publish(outgoing())

    assert api.calls[0].request.headers["Authorization"] == "Bearer old-access-SECRET"


def test_publish_gives_the_transport_a_default_timeout(api: responses.RequestsMock) -> None:
    created(api)

    make_adapter().publish(outgoing())

    assert api.calls[0].request.req_kwargs["timeout"] == 7.5


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {**OAUTH1, "access_token_secret": ""},
        {**oauth2(), "access_token": None},
        {**OAUTH1, "auth": "basic"},
    ],
    ids=["empty", "oauth1-incomplete", "oauth2-no-token", "unknown-auth"],
)
def test_publish_without_usable_credentials_needs_reconnect(credentials: dict[str, Any]) -> None:
    with pytest.raises(ReconnectNeeded):
        make_adapter(credentials).publish(outgoing())


def problem(status: int, detail: str, type_: str = "about:blank", **extra: Any) -> dict[str, Any]:
    return {"title": "Error", "detail": detail, "type": type_, "status": status, **extra}


ERROR_ROWS = [
    pytest.param(401, problem(401, "Unauthorized"), ReconnectNeeded, id="401-problem"),
    pytest.param(
        401,
        {"errors": [{"code": 89, "message": "Invalid or expired token"}]},
        ReconnectNeeded,
        id="401-v1",
    ),
    pytest.param(402, problem(402, "Payment Required"), PermanentError, id="402-no-credits"),
    pytest.param(
        403,
        problem(403, "You are not allowed to create a Tweet with duplicate content."),
        DuplicateRejected,
        id="403-duplicate",
    ),
    pytest.param(
        403,
        problem(403, "You are not permitted to perform this action."),
        PermanentError,
        id="403-not-permitted",
    ),
    pytest.param(
        400,
        problem(400, "Invalid Request", "https://api.x.com/2/problems/invalid-request"),
        PermanentError,
        id="400",
    ),
    pytest.param(422, problem(422, "Unprocessable"), PermanentError, id="422"),
    pytest.param(
        429,
        problem(
            429,
            "Usage cap exceeded: Monthly product cap",
            "https://api.x.com/2/problems/usage-capped",
        ),
        PermanentError,
        id="429-usage-capped",
    ),
    pytest.param(429, problem(429, "Too Many Requests"), RetryableError, id="429-rate-limited"),
    pytest.param(500, problem(500, "Internal error"), UnknownOutcome, id="500-json"),
    pytest.param(503, "<html><h1>Service Unavailable</h1></html>", UnknownOutcome, id="503-html"),
]


@pytest.mark.parametrize(("status", "body", "expected"), ERROR_ROWS)
def test_publish_error_maps_to_outcome_class(
    api: responses.RequestsMock, status: int, body: Any, expected: type[Exception]
) -> None:
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    api.post(f"{BASE}/2/tweets", status=status, **kwargs)

    with pytest.raises(expected) as caught:
        make_adapter().publish(outgoing())

    assert type(caught.value) is expected
    assert "SECRET" not in str(caught.value)


def test_no_credits_says_so(api: responses.RequestsMock) -> None:
    api.post(f"{BASE}/2/tweets", status=402, json=problem(402, "Payment Required"))

    with pytest.raises(PermanentError, match="no API credits"):
        make_adapter().publish(outgoing())


def test_refusal_passes_on_x_detail(api: responses.RequestsMock) -> None:
    detail = "You are not permitted to perform this action."
    api.post(f"{BASE}/2/tweets", status=403, json=problem(403, detail))

    with pytest.raises(PermanentError, match=detail):
        make_adapter().publish(outgoing())


def epoch_in(seconds: int) -> str:
    return str(int(NOW.timestamp()) + seconds)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-rate-limit-reset": epoch_in(60)}, 60),
        (
            {
                "x-rate-limit-reset": epoch_in(60),
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": epoch_in(3600),
            },
            3600,
        ),
        (
            {
                "x-rate-limit-reset": epoch_in(60),
                "x-user-limit-24hour-remaining": "5",
                "x-user-limit-24hour-reset": epoch_in(3600),
            },
            60,
        ),
        ({"Retry-After": "30"}, 30),
        ({}, None),
    ],
    ids=["15-minute-reset", "daily-cap-hit", "daily-cap-left", "retry-after", "no-hint"],
)
def test_rate_limit_retry_after_comes_from_headers(
    api: responses.RequestsMock, headers: dict[str, str], expected: float | None
) -> None:
    api.post(f"{BASE}/2/tweets", status=429, json=problem(429, "Too Many"), headers=headers)

    with pytest.raises(RetryableError) as caught:
        make_adapter().publish(outgoing())

    assert caught.value.retry_after == expected


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (requests.ReadTimeout("read timed out"), UnknownOutcome),
        (requests.ConnectionError("Connection aborted."), UnknownOutcome),
        (requests.ConnectTimeout("connect timed out"), RetryableError),
        (netguard.BlockedDestination("URL not allowed: loopback"), PermanentError),
    ],
    ids=["read-timeout", "dropped", "connect-timeout", "blocked"],
)
def test_publish_network_failure_maps_to_outcome_class(
    api: responses.RequestsMock, raised: Exception, expected: type[Exception]
) -> None:
    api.post(f"{BASE}/2/tweets", body=raised)

    with pytest.raises(expected) as caught:
        make_adapter().publish(outgoing())

    assert type(caught.value) is expected


def test_refused_connection_is_retryable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    # The port was just released, so nothing listens there: the connect is refused.

    with pytest.raises(RetryableError):
        make_adapter(base_url=f"http://127.0.0.1:{port}").publish(outgoing())


def test_connection_closed_after_the_request_is_unknown_outcome() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        server.settimeout(5)

        def hang_up() -> None:
            # Read the request, then close without answering; the client's errors are its own.
            with contextlib.suppress(OSError):
                connection, _ = server.accept()
                with connection:
                    connection.recv(65536)

        thread = threading.Thread(target=hang_up)
        thread.start()
        try:
            with pytest.raises(UnknownOutcome):
                make_adapter(base_url=f"http://127.0.0.1:{port}").publish(outgoing())
        finally:
            thread.join(timeout=5)


def test_guarded_session_blocks_a_private_base_url() -> None:
    guarded = netguard.guarded_session(netguard.AllowList())

    with pytest.raises(PermanentError, match="blocked"):
        make_adapter(http=guarded).publish(outgoing())


# -- OAuth 2.0 refresh ----------------------------------------------------------------------

TOKEN_URL = f"{BASE}/2/oauth2/token"
NEW_TOKENS = {
    "token_type": "bearer",
    "expires_in": 7200,
    "access_token": "new-access-SECRET",
    "refresh_token": "new-refresh-SECRET",
    "scope": "tweet.read tweet.write users.read offline.access",
}


def test_expiring_token_is_refreshed_and_persisted_before_posting(
    api: responses.RequestsMock,
) -> None:
    events: list[tuple[str, str]] = []

    def post_tweet(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        events.append(("post", str(request.headers["Authorization"])))
        return 201, {}, json.dumps({"data": {"id": "7", "text": "..."}})

    api.post(TOKEN_URL, json=NEW_TOKENS)
    api.add_callback(responses.POST, f"{BASE}/2/tweets", callback=post_tweet)
    adapter = make_adapter(
        oauth2(expires_at=NOW + dt.timedelta(minutes=2)),
        on_change=lambda creds: events.append(("persist", creds["refresh_token"])),
    )

    adapter.publish(outgoing())

    assert events == [("persist", "new-refresh-SECRET"), ("post", "Bearer new-access-SECRET")]


def test_persisted_credentials_are_complete(api: responses.RequestsMock) -> None:
    saved: list[dict[str, Any]] = []
    api.post(TOKEN_URL, json=NEW_TOKENS)
    created(api)

    make_adapter(oauth2(NOW), on_change=saved.append).publish(outgoing())

    assert saved == [
        {
            "auth": "oauth2",
            "access_token": "new-access-SECRET",
            "refresh_token": "new-refresh-SECRET",
            "expires_at": "2026-03-02T11:30:00+00:00",
            "client_id": "client-1",
            "scope": "tweet.read tweet.write users.read offline.access",
        }
    ]


def test_fresh_token_is_not_refreshed(api: responses.RequestsMock) -> None:
    saved: list[dict[str, Any]] = []
    created(api)

    make_adapter(oauth2(NOW + dt.timedelta(minutes=30)), on_change=saved.append).publish(outgoing())

    assert [call.request.url for call in api.calls] == [f"{BASE}/2/tweets"]
    assert saved == []


def test_reused_refresh_token_needs_reconnect(api: responses.RequestsMock) -> None:
    api.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_request", "error_description": "Value passed for the token"},
    )

    with pytest.raises(ReconnectNeeded, match="invalid_request"):
        make_adapter(oauth2(NOW)).publish(outgoing())

    assert len(api.calls) == 1


# -- lookup ---------------------------------------------------------------------------------


def test_lookup_by_id_finds_the_post(api: responses.RequestsMock) -> None:
    api.get(
        f"{BASE}/2/tweets/42",
        json={"data": {"id": "42", "text": "x", "created_at": "2026-03-02T09:30:05.000Z"}},
    )

    found = make_adapter().lookup(outgoing(external_id="42"))

    assert found is not None
    assert found.external_id == "42"
    assert found.published_at == dt.datetime(2026, 3, 2, 9, 30, 5, tzinfo=dt.UTC)


def test_lookup_by_id_of_a_missing_post_is_none(api: responses.RequestsMock) -> None:
    api.get(
        f"{BASE}/2/tweets/42",
        json={
            "errors": [
                {
                    "resource_id": "42",
                    "title": "Not Found Error",
                    "detail": "Could not find tweet with id: [42].",
                    "type": "https://api.x.com/2/problems/resource-not-found",
                }
            ]
        },
    )

    assert make_adapter().lookup(outgoing(external_id="42")) is None


def timeline(*posts: tuple[str, str]) -> dict[str, Any]:
    data = [{"id": i, "text": text, "created_at": "2026-03-02T09:30:01.000Z"} for i, text in posts]
    return {"data": data, "meta": {"result_count": len(data)}}


def test_lookup_by_text_matches_despite_tco_links(api: responses.RequestsMock) -> None:
    api.get(f"{BASE}/2/users/me", json={"data": {"id": "99", "name": "C", "username": "c"}})
    api.get(
        f"{BASE}/2/users/99/tweets",
        json=timeline(
            ("11", "Something else"),
            ("10", "Careers fair on Friday: https://t.co/AbC123xyz &amp; more"),
        ),
    )

    found = make_adapter().lookup(outgoing(first_attempt_at=NOW))

    assert found is not None
    assert found.external_id == "10"


def test_lookup_by_text_searches_from_just_before_the_first_attempt(
    api: responses.RequestsMock,
) -> None:
    api.get(f"{BASE}/2/users/me", json={"data": {"id": "99", "name": "C", "username": "c"}})
    api.get(f"{BASE}/2/users/99/tweets", json=timeline())

    make_adapter().lookup(outgoing(first_attempt_at=NOW + dt.timedelta(minutes=10)))

    query = parse_qs(urlsplit(api.calls[1].request.url).query)
    assert query["start_time"] == ["2026-03-02T09:38:00Z"]
    assert query["max_results"] == ["100"]


def test_lookup_by_text_without_a_match_is_none(api: responses.RequestsMock) -> None:
    api.get(f"{BASE}/2/users/me", json={"data": {"id": "99", "name": "C", "username": "c"}})
    api.get(f"{BASE}/2/users/99/tweets", json=timeline(("11", "Careers fair on Saturday")))

    assert make_adapter().lookup(outgoing()) is None


def test_lookup_by_text_reads_the_next_page(api: responses.RequestsMock) -> None:
    api.get(f"{BASE}/2/users/me", json={"data": {"id": "99", "name": "C", "username": "c"}})
    first = {**timeline(("12", "Other")), "meta": {"result_count": 1, "next_token": "page-2"}}
    api.get(f"{BASE}/2/users/99/tweets", json=first)
    api.get(
        f"{BASE}/2/users/99/tweets",
        json=timeline(("10", "Careers fair on Friday: https://t.co/AbC &amp; more")),
        match=[
            responses.matchers.query_param_matcher(
                {"pagination_token": "page-2"}, strict_match=False
            )
        ],
    )

    found = make_adapter().lookup(outgoing())

    assert found is not None
    assert found.external_id == "10"


def test_lookup_when_the_token_cannot_be_refreshed_is_unavailable(
    api: responses.RequestsMock,
) -> None:
    api.post(TOKEN_URL, status=503, body="busy")

    with pytest.raises(LookupUnavailable):
        make_adapter(oauth2(NOW)).lookup(outgoing(external_id="42"))


@pytest.mark.parametrize(
    ("status", "expected"),
    [(503, LookupUnavailable), (429, LookupUnavailable), (401, ReconnectNeeded)],
)
def test_lookup_error_maps_to_outcome_class(
    api: responses.RequestsMock, status: int, expected: type[Exception]
) -> None:
    api.get(f"{BASE}/2/tweets/42", status=status, json=problem(status, "nope"))

    with pytest.raises(expected) as caught:
        make_adapter().lookup(outgoing(external_id="42"))

    assert type(caught.value) is expected


def test_lookup_timeout_is_unavailable(api: responses.RequestsMock) -> None:
    api.get(f"{BASE}/2/tweets/42", body=requests.ReadTimeout("read timed out"))

    with pytest.raises(LookupUnavailable):
        make_adapter().lookup(outgoing(external_id="42"))


# -- text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://example.com/a/very/long/path/that/goes/on/and/on", 4 + 23),
        ("日本語", 6),
        ("👨‍👩‍👧‍👦", 2),
        ("hello", 5),
    ],
    ids=["url", "cjk", "emoji-sequence", "latin"],
)
def test_weighted_length(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected


@pytest.mark.parametrize(
    ("text", "problem_count"),
    [("a" * 280, 0), ("a" * 281, 1), ("   ", 1)],
    ids=["at-limit", "over-limit", "blank"],
)
def test_text_problems(text: str, problem_count: int) -> None:
    assert len(x_text_problems(text)) == problem_count


def test_normalised_texts_match_across_url_rewriting_spacing_and_nfc() -> None:
    ours = "Caf\u0065\u0301  fair:\njobs.example.com/123 "
    theirs = "Caf\u00e9 fair: https://t.co/Zz9"

    assert normalise_for_match(ours) == normalise_for_match(theirs)


def test_a_link_twitter_text_does_not_know_still_matches_its_t_co_form() -> None:
    # The app's own tracked link on an address without a public top-level domain.
    ours = "Careers fair: http://127.0.0.1:5000/l/Ab3dE5fG9 and http://intranet/l/x."
    theirs = "Careers fair: https://t.co/Zz9 and https://t.co/Yy8."
    assert normalise_for_match(ours) == normalise_for_match(theirs)
    assert normalise_for_match("Fair: http://10.0.0.5/l/a") != normalise_for_match("Fair on")
