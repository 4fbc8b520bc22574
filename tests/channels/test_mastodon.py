"""The Mastodon adapter against `responses` fakes of the documented API shapes and errors."""

from __future__ import annotations

import datetime as dt
import http.client
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
import urllib3.connection
import urllib3.exceptions
from mastodon import Mastodon
from responses import matchers

from campaign.channels.base import (
    ChannelContext,
    LookupUnavailable,
    OutgoingPost,
    PermanentError,
    PublishedPost,
    ReconnectNeeded,
    RetryableError,
    UnknownOutcome,
)
from campaign.channels.mastodon import (
    InstanceLimits,
    MastodonAdapter,
    fetch_instance_limits,
    mastodon_length,
    same_text,
)

BASE = "http://127.0.0.1:9"
TOKEN = "tok-SECRET-123"
STATUSES = f"{BASE}/api/v1/statuses"
VERIFY = f"{BASE}/api/v1/accounts/verify_credentials"
ACCOUNT_STATUSES = f"{BASE}/api/v1/accounts/7/statuses"
DUE = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
LONG_URL = "https://careers.example.ac.uk/vacancies/2026/graduate-scheme-in-data-science?ref=social"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def make_adapter(base_url: str = BASE, **credentials: Any) -> MastodonAdapter:
    creds = {"access_token": TOKEN, **credentials}
    return MastodonAdapter(
        ChannelContext(
            kind="mastodon", base_url=base_url, credentials=creds, http=requests.Session()
        )
    )


def outgoing(text: str = "Careers fair on Tuesday!", **overrides: Any) -> OutgoingPost:
    fields: dict[str, Any] = {
        "delivery_id": 1,
        "idempotency_key": "delivery-1-5f0c",
        "text": text,
        "link_url": None,
        "due_at": DUE,
    }
    fields.update(overrides)
    return OutgoingPost(**fields)


def status_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "113000000000000001",
        "created_at": "2026-03-02T09:30:05.123Z",
        "url": "https://m.example/@careers/113000000000000001",
        "uri": "https://m.example/users/careers/statuses/113000000000000001",
        "visibility": "public",
        "content": "<p>Careers fair on Tuesday!</p>",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
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


# --- publish ---------------------------------------------------------------------------------


def test_publish_returns_id_url_and_utc_time(mocked: responses.RequestsMock) -> None:
    mocked.post(STATUSES, json=status_json())

    published = make_adapter().publish(outgoing())

    assert published == PublishedPost(
        external_id="113000000000000001",
        url="https://m.example/@careers/113000000000000001",
        published_at=dt.datetime(2026, 3, 2, 9, 30, 5, 123000, tzinfo=dt.UTC),
    )
    assert published.published_at is not None
    assert published.published_at.utcoffset() == dt.timedelta(0)


def test_publish_uses_uri_when_url_is_null(mocked: responses.RequestsMock) -> None:
    mocked.post(STATUSES, json=status_json(url=None))

    published = make_adapter().publish(outgoing())

    assert published.url == "https://m.example/users/careers/statuses/113000000000000001"


def test_publish_sends_delivery_key_as_idempotency_header(mocked: responses.RequestsMock) -> None:
    mocked.post(STATUSES, json=status_json())

    make_adapter().publish(outgoing(idempotency_key="key-42"))

    assert mocked.calls[0].request.headers["Idempotency-Key"] == "key-42"


def test_publish_sends_bearer_token(mocked: responses.RequestsMock) -> None:
    mocked.post(STATUSES, json=status_json())

    make_adapter().publish(outgoing())

    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_publish_body_has_text_and_public_visibility(mocked: responses.RequestsMock) -> None:
    mocked.post(STATUSES, json=status_json())

    make_adapter().publish(outgoing("Fair & friends"))

    form = parse_qs(str(mocked.calls[0].request.body))
    assert form["status"] == ["Fair & friends"]
    assert form["visibility"] == ["public"]


def test_publish_applies_default_timeout(mocked: responses.RequestsMock) -> None:
    mocked.post(STATUSES, json=status_json())

    make_adapter().publish(outgoing())

    # responses records the keyword arguments the transport adapter received.
    request: Any = mocked.calls[0].request
    assert request.req_kwargs["timeout"] == 10.0


def test_token_naming_a_file_is_sent_as_is(
    mocked: responses.RequestsMock, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("contents-of-a-local-file\n")
    monkeypatch.chdir(tmp_path)
    mocked.post(STATUSES, json=status_json())

    make_adapter(access_token="token").publish(outgoing())

    assert mocked.calls[0].request.headers["Authorization"] == "Bearer token"


def test_missing_access_token_needs_reconnect() -> None:
    context = ChannelContext(
        kind="mastodon", base_url=BASE, credentials={}, http=requests.Session()
    )

    with pytest.raises(ReconnectNeeded):
        MastodonAdapter(context)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (401, "The access token is invalid", ReconnectNeeded),
        (403, "This action is not allowed", PermanentError),
        (404, "Record not found", PermanentError),
        (422, "Validation failed: Text character limit of 500 exceeded", PermanentError),
        (500, "We're sorry, but something went wrong", UnknownOutcome),
        (502, "Bad gateway", UnknownOutcome),
        (503, "There was a temporary problem serving your request", UnknownOutcome),
        (504, "Gateway timeout", UnknownOutcome),
    ],
)
def test_publish_maps_http_errors(
    mocked: responses.RequestsMock, status: int, error: str, expected: type[Exception]
) -> None:
    mocked.post(STATUSES, status=status, json={"error": error})

    with pytest.raises(expected) as caught:
        make_adapter().publish(outgoing())

    assert type(caught.value) is expected


def test_validation_error_shows_mastodons_text(mocked: responses.RequestsMock) -> None:
    error = "Validation failed: Text character limit of 500 exceeded"
    mocked.post(STATUSES, status=422, json={"error": error})

    with pytest.raises(PermanentError) as caught:
        make_adapter().publish(outgoing())

    assert error in caught.value.message
    assert caught.value.status == 422


def test_error_text_never_carries_the_token(mocked: responses.RequestsMock) -> None:
    mocked.post(STATUSES, status=422, json={"error": f"Bad token {TOKEN} used"})

    with pytest.raises(PermanentError) as caught:
        make_adapter().publish(outgoing())

    assert TOKEN not in str(caught.value)


def test_rate_limit_retries_after_the_iso_reset(mocked: responses.RequestsMock) -> None:
    mocked.post(
        STATUSES,
        status=429,
        json={"error": "Too many requests"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso_in(120)},
    )

    with pytest.raises(RetryableError) as caught:
        make_adapter().publish(outgoing())

    assert caught.value.retry_after == pytest.approx(120, abs=3)
    assert caught.value.status == 429


def test_unreadable_rate_limit_header_on_success_is_unknown(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(STATUSES, json=status_json(), headers={"X-RateLimit-Reset": "soon"})

    with pytest.raises(UnknownOutcome):
        make_adapter().publish(outgoing())


def _conn() -> urllib3.connection.HTTPConnection:
    return urllib3.connection.HTTPConnection("127.0.0.1", 9)


def _refused() -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(_conn(), "[Errno 111] Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def _unresolvable() -> requests.ConnectionError:
    reason = urllib3.exceptions.NameResolutionError(
        "m.example", _conn(), socket.gaierror(-2, "Name or service not known")
    )
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def _dropped() -> requests.ConnectionError:
    closed = http.client.RemoteDisconnected("Remote end closed connection without response")
    return requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", closed))


class BlockedDestination(requests.exceptions.RequestException):
    """Stands in for campaign.netguard's exception."""


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        pytest.param(requests.ReadTimeout("read timed out"), UnknownOutcome, id="read-timeout"),
        pytest.param(
            requests.ConnectTimeout("connect timed out"), RetryableError, id="connect-timeout"
        ),
        pytest.param(_refused(), RetryableError, id="refused"),
        pytest.param(_unresolvable(), RetryableError, id="dns"),
        pytest.param(_dropped(), UnknownOutcome, id="dropped-after-send"),
        pytest.param(requests.ConnectionError("reset"), UnknownOutcome, id="bare-connection-error"),
        pytest.param(
            BlockedDestination("URL not allowed: '127.0.0.1' resolves to a loopback address"),
            PermanentError,
            id="netguard",
        ),
    ],
)
def test_publish_maps_network_failures(
    mocked: responses.RequestsMock, failure: Exception, expected: type[Exception]
) -> None:
    mocked.post(STATUSES, body=failure)

    with pytest.raises(expected) as caught:
        make_adapter().publish(outgoing())

    assert type(caught.value) is expected


def test_refused_connection_on_a_real_closed_port_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(RetryableError):
        make_adapter(base_url=f"http://127.0.0.1:{port}").publish(outgoing())


def test_netguard_refusing_the_instance_is_permanent() -> None:
    from campaign.netguard import guarded_session, parse_allow_list

    context = ChannelContext(
        kind="mastodon",
        base_url=BASE,
        credentials={"access_token": TOKEN},
        http=guarded_session(parse_allow_list([])),
    )

    with pytest.raises(PermanentError) as caught:
        MastodonAdapter(context).publish(outgoing())

    assert "not allowed" in caught.value.message


# --- lookup ----------------------------------------------------------------------------------


def test_lookup_by_id_returns_the_status(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{STATUSES}/113000000000000001", json=status_json())

    found = make_adapter().lookup(outgoing(external_id="113000000000000001"))

    assert found is not None
    assert found.external_id == "113000000000000001"


def test_lookup_by_id_of_a_missing_status_is_none(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{STATUSES}/404404", status=404, json={"error": "Record not found"})

    assert make_adapter().lookup(outgoing(external_id="404404")) is None


def test_lookup_with_revoked_token_needs_reconnect(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{STATUSES}/1", status=401, json={"error": "The access token is invalid"})

    with pytest.raises(ReconnectNeeded):
        make_adapter().lookup(outgoing(external_id="1"))


def _account_timeline(
    mocked: responses.RequestsMock, statuses: list[dict[str, Any]], **params: str
) -> None:
    mocked.get(VERIFY, json={"id": "7", "username": "careers", "acct": "careers"})
    mocked.get(
        ACCOUNT_STATUSES,
        json=statuses,
        match=[matchers.query_param_matcher(params, strict_match=False)],
    )


SHORTENED_LINK_HTML = (
    '<p>Graduate scheme open: <a href="{url}" rel="nofollow noopener" target="_blank">'
    '<span class="invisible">https://</span><span class="ellipsis">careers.example.ac.uk/vaca'
    '</span><span class="invisible">ncies/2026/graduate-scheme</span></a>.</p><p>Apply by Friday'
    " &amp; good luck!</p>"
)


def test_lookup_by_content_matches_html_with_shortened_link(
    mocked: responses.RequestsMock,
) -> None:
    html = SHORTENED_LINK_HTML.format(url=LONG_URL)
    _account_timeline(
        mocked,
        [
            status_json(id="30", created_at="2026-03-02T09:31:00Z", content="<p>Other</p>"),
            status_json(id="29", created_at="2026-03-02T09:30:02Z", content=html),
        ],
    )
    text = f"Graduate scheme open: {LONG_URL}.\n\nApply by Friday & good luck!"

    found = make_adapter().lookup(outgoing(text))

    assert found is not None
    assert found.external_id == "29"


def test_lookup_by_content_ignores_statuses_before_the_window(
    mocked: responses.RequestsMock,
) -> None:
    _account_timeline(
        mocked,
        [status_json(id="5", created_at="2026-03-02T09:27:00Z")],
    )

    assert make_adapter().lookup(outgoing(first_attempt_at=DUE)) is None


def test_lookup_by_content_without_a_match_is_none(mocked: responses.RequestsMock) -> None:
    _account_timeline(mocked, [status_json(content="<p>Something else entirely</p>")])

    assert make_adapter().lookup(outgoing()) is None


def test_lookup_by_content_reads_a_second_page(mocked: responses.RequestsMock) -> None:
    newer = [
        status_json(id=str(100 - i), created_at="2026-03-02T09:40:00Z", content="<p>x</p>")
        for i in range(40)
    ]
    _account_timeline(mocked, newer)
    mocked.get(
        ACCOUNT_STATUSES,
        json=[status_json(id="50")],
        match=[matchers.query_param_matcher({"max_id": "61"}, strict_match=False)],
    )

    found = make_adapter().lookup(outgoing())

    assert found is not None
    assert found.external_id == "50"


def test_lookup_after_too_many_newer_statuses_is_unavailable(
    mocked: responses.RequestsMock,
) -> None:
    page = [
        status_json(id=str(100 - i), created_at="2026-03-02T09:40:00Z", content="<p>x</p>")
        for i in range(40)
    ]
    mocked.get(VERIFY, json={"id": "7", "username": "careers", "acct": "careers"})
    mocked.get(ACCOUNT_STATUSES, json=page)

    with pytest.raises(LookupUnavailable):
        make_adapter().lookup(outgoing())


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 503, "json": {"error": "Unavailable"}}, id="503"),
        pytest.param({"status": 429, "json": {"error": "Too many requests"}}, id="429"),
        pytest.param({"body": requests.ReadTimeout("read timed out")}, id="timeout"),
    ],
)
def test_lookup_when_mastodon_cannot_answer_is_unavailable(
    mocked: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    mocked.get(VERIFY, **failure)

    with pytest.raises(LookupUnavailable):
        make_adapter().lookup(outgoing())


@pytest.mark.parametrize(
    ("plain", "content"),
    [
        pytest.param(
            "Hi @ada@uni.example!",
            '<p>Hi <span class="h-card"><a href="https://uni.example/@ada" class="u-url mention">'
            "@<span>ada</span></a></span>!</p>",
            id="remote-mention",
        ),
        pytest.param(
            "Q&A at 5 #careers",
            '<p>Q&amp;A at 5 <a href="https://m.example/tags/careers" class="mention hashtag">'
            "#<span>careers</span></a></p>",
            id="entities-and-hashtag",
        ),
        pytest.param("Line one\nline two", "<p>Line one<br />line two</p>", id="line-break"),
        pytest.param("Cafe\u0301 talk", "<p>Caf\u00e9 talk</p>", id="nfc"),
    ],
)
def test_same_text_sees_through_mastodons_html(plain: str, content: str) -> None:
    assert same_text(plain, content)


def test_same_text_tells_different_words_apart() -> None:
    assert not same_text("Careers fair on Tuesday", "<p>Careers fair on Wednesday</p>")


# --- instance limits -------------------------------------------------------------------------


def test_limits_come_from_instance_v2(mocked: responses.RequestsMock) -> None:
    config = {"statuses": {"max_characters": 5000, "characters_reserved_per_url": 30}}
    mocked.get(f"{BASE}/api/v2/instance", json={"configuration": config})

    limits = fetch_instance_limits(requests.Session(), BASE, 5.0)

    assert limits == InstanceLimits(max_characters=5000, characters_reserved_per_url=30)


def test_limits_fall_back_to_instance_v1(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/api/v2/instance", status=404, json={"error": "Not Found"})
    config = {"statuses": {"max_characters": 1000, "characters_reserved_per_url": 23}}
    mocked.get(f"{BASE}/api/v1/instance", json={"configuration": config})

    limits = fetch_instance_limits(requests.Session(), BASE, 5.0)

    assert limits == InstanceLimits(max_characters=1000, characters_reserved_per_url=23)


def test_limits_default_when_the_instance_says_nothing(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/api/v2/instance", status=404, json={"error": "Not Found"})
    mocked.get(f"{BASE}/api/v1/instance", json={"uri": "m.example"})

    limits = fetch_instance_limits(requests.Session(), BASE, 5.0)

    assert limits == InstanceLimits(max_characters=500, characters_reserved_per_url=23)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"body": _refused()}, id="refused"),
        pytest.param({"status": 503, "json": {"error": "Unavailable"}}, id="503"),
    ],
)
def test_limits_unreachable_is_retryable(
    mocked: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    mocked.get(f"{BASE}/api/v2/instance", **failure)

    with pytest.raises(RetryableError):
        fetch_instance_limits(requests.Session(), BASE, 5.0)


# --- length ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"See {LONG_URL}", 4 + 23, id="long-url-counts-23"),
        pytest.param("@a@b.example", 2, id="remote-mention-counts-local-part"),
        pytest.param("\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", 1, id="family"),
        pytest.param("plain text", 10, id="plain"),
    ],
)
def test_mastodon_length(text: str, expected: int) -> None:
    assert mastodon_length(text) == expected


def test_mastodon_length_uses_the_instances_url_length() -> None:
    assert mastodon_length(f"See {LONG_URL}", characters_reserved_per_url=30) == 4 + 30


def test_mastodon_length_agrees_with_mastodon_py() -> None:
    text = f"Hi @ada@uni.example, read {LONG_URL} and https://x.example 🎓 today"

    assert mastodon_length(text) == Mastodon.get_status_length(text)
