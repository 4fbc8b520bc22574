"""The Bluesky adapter against an in-process fake PDS (httpx.MockTransport): no network."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import httpx
import pytest
import requests
from atproto_client.models import string_formats
from pydantic import TypeAdapter

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
from campaign.channels.bluesky import (
    BlueskyAdapter,
    bluesky_length,
    link_facets,
    record_key,
)

BASE = "http://127.0.0.1:2583"
DID = "did:plc:careers4test"
HANDLE = "careers.example.ac.uk"
PASSWORD = "abcd-efgh-ijkl-mnop"
DUE = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
FAMILY = "👨‍👩‍👧‍👦"
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"

CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
GET_SESSION = "com.atproto.server.getSession"
CREATE_RECORD = "com.atproto.repo.createRecord"
GET_RECORD = "com.atproto.repo.getRecord"


def jwt(expires_in: float, tag: str = "a") -> str:
    """An unsigned JWT: the SDK only reads `exp` to decide when to refresh."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": DID, "exp": int(time.time() + expires_in), "jti": tag}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def session_string(access_expires_in: float = 7200) -> str:
    """The SDK's export format: handle, did, access, refresh, PDS endpoint."""
    return ":::".join([HANDLE, DID, jwt(access_expires_in), jwt(86400, "refresh"), f"{BASE}/xrpc"])


def claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def bearer(request: httpx.Request) -> str:
    return request.headers["authorization"].removeprefix("Bearer ")


def xrpc_error(status: int, error: str, message: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "message": message}, headers=headers)


class FakePds:
    """Routes XRPC calls, records them, and answers with injected failures when told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, httpx.Request]] = []
        self.records: dict[str, dict[str, object]] = {}
        self.fail: dict[str, httpx.Response | Exception] = {}
        self.sessions_created = 0

    def paths(self) -> list[str]:
        return [name for name, _ in self.calls]

    def body(self, name: str) -> dict[str, object]:
        return json.loads(next(r for n, r in self.calls if n == name).content)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.removeprefix("/xrpc/")
        self.calls.append((name, request))
        injected = self.fail.get(name)
        if isinstance(injected, Exception):
            raise injected
        if injected is not None:
            return injected
        return getattr(self, name.rsplit(".", 1)[1])(request)

    def createSession(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body != {"identifier": HANDLE, "password": PASSWORD}:
            return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.sessions_created += 1
        # No didDoc, so the SDK stays on this fake instead of moving to a DID document's PDS.
        return httpx.Response(
            200,
            json={
                "did": DID,
                "handle": HANDLE,
                "accessJwt": jwt(7200, f"created{self.sessions_created}"),
                "refreshJwt": jwt(86400, "refresh"),
            },
        )

    def refreshSession(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "did": DID,
                "handle": HANDLE,
                "accessJwt": jwt(7200, "refreshed"),
                "refreshJwt": jwt(86400, "refresh2"),
            },
        )

    def getSession(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"].startswith("Bearer ")
        return httpx.Response(200, json={"did": DID, "handle": HANDLE})

    def createRecord(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        uri = f"at://{DID}/{body['collection']}/{body['rkey']}"
        self.records[body["rkey"]] = body["record"]
        return httpx.Response(200, json={"uri": uri, "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5"})

    def getRecord(self, request: httpx.Request) -> httpx.Response:
        rkey = request.url.params["rkey"]
        if rkey not in self.records:
            return xrpc_error(400, "RecordNotFound", f"Could not locate record: {rkey}")
        uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
        return httpx.Response(
            200, json={"uri": uri, "cid": "bafyrei1", "value": self.records[rkey]}
        )


@pytest.fixture
def pds() -> FakePds:
    return FakePds()


@pytest.fixture
def saved() -> list[dict[str, object]]:
    return []


def make_adapter(
    pds: FakePds, saved: list[dict[str, object]], **credentials: str
) -> BlueskyAdapter:
    context = ChannelContext(
        kind="bluesky",
        base_url=BASE,
        credentials=credentials or {"handle": HANDLE, "app_password": PASSWORD},
        http=requests.Session(),
        timeout=5.0,
        on_credentials_change=saved.append,
        extra={"httpx_transport": httpx.MockTransport(pds)},
    )
    return BlueskyAdapter(context)


@pytest.fixture
def adapter(pds: FakePds, saved: list[dict[str, object]]) -> BlueskyAdapter:
    return make_adapter(pds, saved)


def outgoing(text: str = "Careers fair on Tuesday", key: str = "delivery-1") -> OutgoingPost:
    return OutgoingPost(delivery_id=1, idempotency_key=key, text=text, link_url=None, due_at=DUE)


# Sessions


def test_publish_logs_in_with_the_app_password_and_persists_the_session(adapter, pds, saved):
    adapter.publish(outgoing())
    assert pds.paths() == [CREATE_SESSION, CREATE_RECORD]
    assert len(saved) == 1
    assert saved[0]["handle"] == HANDLE and saved[0]["app_password"] == PASSWORD
    assert str(saved[0]["session"]).startswith(f"{HANDLE}:::{DID}:::")


def test_a_persisted_session_resumes_without_creating_a_session(pds, saved):
    first = make_adapter(pds, saved)
    first.publish(outgoing(key="first"))
    again = make_adapter(pds, [], **saved[-1])
    again.publish(outgoing(key="second"))
    assert pds.paths().count(CREATE_SESSION) == 1


def test_a_stored_session_is_not_persisted_again_when_unchanged(pds, saved):
    adapter = make_adapter(
        pds, saved, handle=HANDLE, app_password=PASSWORD, session=session_string()
    )
    adapter.publish(outgoing())
    assert pds.paths() == [GET_SESSION, CREATE_RECORD]
    assert saved == []


def test_a_session_near_expiry_is_refreshed_and_persisted(pds, saved):
    adapter = make_adapter(
        pds, saved, handle=HANDLE, app_password=PASSWORD, session=session_string(300)
    )
    adapter.publish(outgoing())
    assert pds.paths() == [REFRESH_SESSION, GET_SESSION, CREATE_RECORD]
    stored_access = str(saved[-1]["session"]).split(":::")[2]
    assert claims(stored_access)["jti"] == "refreshed"
    assert bearer(pds.calls[-1][1]) == stored_access


@pytest.mark.parametrize(
    ("stored", "failure"),
    [
        (
            session_string(-60),
            (REFRESH_SESSION, xrpc_error(400, "ExpiredToken", "Token has been revoked")),
        ),
        (
            session_string(),
            (GET_SESSION, xrpc_error(401, "InvalidToken", "Token could not be verified")),
        ),
        ("not a session string", None),
        (f"{HANDLE}:::{DID}:::garbage:::garbage:::{BASE}/xrpc", None),
    ],
    ids=["refresh-refused", "session-revoked", "unreadable", "unreadable-tokens"],
)
def test_an_unusable_session_falls_back_to_one_password_login(pds, saved, stored, failure):
    if failure:
        pds.fail[failure[0]] = failure[1]
    adapter = make_adapter(pds, saved, handle=HANDLE, app_password=PASSWORD, session=stored)
    adapter.publish(outgoing())
    assert pds.paths().count(CREATE_SESSION) == 1
    stored_access = str(saved[-1]["session"]).split(":::")[2]
    assert claims(stored_access)["jti"] == "created1"
    assert bearer(pds.calls[-1][1]) == stored_access


@pytest.mark.parametrize(
    "answer",
    [xrpc_error(503, "ServiceUnavailable"), httpx.Response(200, content=b"<html>proxy</html>")],
    ids=["503", "garbled-200"],
)
def test_a_server_error_while_resuming_is_retryable_without_a_password_login(pds, saved, answer):
    pds.fail[REFRESH_SESSION] = answer
    adapter = make_adapter(
        pds, saved, handle=HANDLE, app_password=PASSWORD, session=session_string(-60)
    )
    with pytest.raises(RetryableError):
        adapter.publish(outgoing())
    assert pds.paths() == [REFRESH_SESSION]


def test_an_unrefreshable_session_and_a_revoked_password_need_reconnecting(pds, saved):
    pds.fail[REFRESH_SESSION] = xrpc_error(401, "ExpiredToken", "Token has expired")
    adapter = make_adapter(
        pds, saved, handle=HANDLE, app_password="revoked", session=session_string(-60)
    )
    with pytest.raises(ReconnectNeeded):
        adapter.publish(outgoing())
    assert pds.paths().count(CREATE_SESSION) == 1
    assert CREATE_RECORD not in pds.paths()


@pytest.mark.parametrize(
    "answer",
    [
        xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password"),
        xrpc_error(401, "AuthFactorTokenRequired", "A sign in code has been sent"),
        xrpc_error(400, "InvalidRequest", "Invalid identifier"),
    ],
    ids=["bad-password", "2fa-required", "bad-identifier"],
)
def test_a_refused_login_needs_reconnecting_and_posts_nothing(adapter, pds, answer):
    pds.fail[CREATE_SESSION] = answer
    with pytest.raises(ReconnectNeeded, match="reconnect"):
        adapter.publish(outgoing())
    assert pds.paths() == [CREATE_SESSION]


def test_missing_credentials_need_reconnecting(pds, saved):
    adapter = make_adapter(pds, saved, handle=HANDLE)
    with pytest.raises(ReconnectNeeded):
        adapter.publish(outgoing())
    assert pds.calls == []


@pytest.mark.parametrize(
    "answer",
    [
        xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", **{"Retry-After": "30"}),
        xrpc_error(503, "InternalServerError"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["429", "503", "timeout"],
)
def test_a_failed_login_is_retryable_because_nothing_was_posted(adapter, pds, answer):
    pds.fail[CREATE_SESSION] = answer
    with pytest.raises(RetryableError):
        adapter.publish(outgoing())
    assert CREATE_RECORD not in pds.paths()


# Publishing


def test_publish_sends_the_record_under_the_deterministic_key(adapter, pds):
    result = adapter.publish(outgoing())
    body = pds.body(CREATE_RECORD)
    rkey = record_key("delivery-1", DUE)
    assert body["repo"] == DID and body["collection"] == "app.bsky.feed.post"
    assert body["rkey"] == rkey
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post"
    assert record["text"] == "Careers fair on Tuesday"
    assert record["langs"] == ["en"]
    assert dt.datetime.fromisoformat(record["createdAt"].replace("Z", "+00:00")).tzinfo
    assert result == PublishedPost(
        external_id=f"at://{DID}/app.bsky.feed.post/{rkey}",
        url=f"https://bsky.app/profile/{HANDLE}/post/{rkey}",
        published_at=result.published_at,
        reply_ref="bafyreie5737gdxlw5i64vzichcalba3z2v5",  # the cid a reply to it must name
    )


def test_publish_sends_link_facets_with_utf8_byte_offsets(adapter, pds):
    url = "https://careers.example.ac.uk/fair"
    text = f"Café fair 🎉 {url}. Apply here"
    adapter.publish(outgoing(text))
    (facet,) = pds.body(CREATE_RECORD)["record"]["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert (start, end) == (16, 16 + len(url))
    assert text.encode()[start:end].decode() == url
    assert facet["features"][0]["uri"] == url
    assert facet["features"][0]["$type"] == "app.bsky.richtext.facet#link"


def test_a_retry_of_one_delivery_reuses_its_record_key(adapter, pds):
    adapter.publish(outgoing())
    adapter.publish(outgoing())
    bodies = [json.loads(r.content) for n, r in pds.calls if n == CREATE_RECORD]
    assert bodies[0]["rkey"] == bodies[1]["rkey"]


@pytest.mark.parametrize(
    "text",
    ["a" * 300, "a" * 299 + FAMILY, FAMILY * 120],
    ids=["300", "family-emoji-counts-1", "3000-bytes"],
)
def test_posts_within_the_limits_are_sent(adapter, pds, text):
    adapter.publish(outgoing(text))
    assert pds.body(CREATE_RECORD)["record"]["text"] == text


@pytest.mark.parametrize(
    ("text", "named"),
    [("a" * 301, "301 characters"), (FAMILY * 121, "3025 bytes")],
    ids=["301-graphemes", "3025-bytes"],
)
def test_posts_over_the_limits_are_refused_before_any_request(adapter, pds, text, named):
    with pytest.raises(PermanentError, match=named) as refused:
        adapter.publish(outgoing(text))
    assert type(refused.value) is PermanentError
    assert pds.calls == []


def test_an_emoji_family_is_one_grapheme():
    assert bluesky_length(FAMILY) == 1
    assert bluesky_length("Café 🎉") == 6


@pytest.mark.parametrize(
    ("answer", "outcome", "status"),
    [
        (
            xrpc_error(400, "InvalidRequest", "grapheme too big (maximum 300, got 301)"),
            PermanentError,
            400,
        ),
        (xrpc_error(401, "ExpiredToken", "Token has expired"), ReconnectNeeded, 401),
        (xrpc_error(403, "Forbidden", "Not permitted"), ReconnectNeeded, 403),
        (xrpc_error(404, "XRPCNotSupported", "Method not found"), PermanentError, 404),
        (xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded"), RetryableError, 429),
        (xrpc_error(500, "InternalServerError", "Internal Server Error"), UnknownOutcome, 500),
        (xrpc_error(502, "BadGateway"), UnknownOutcome, 502),
        (xrpc_error(409, "Conflict"), UnknownOutcome, 409),
        (httpx.Response(200, content=b"<html>proxy page</html>"), UnknownOutcome, None),
        (httpx.ReadTimeout("read timed out"), UnknownOutcome, None),
        (httpx.RemoteProtocolError("Server disconnected"), UnknownOutcome, None),
        (httpx.ConnectError("Connection refused"), RetryableError, None),
        (httpx.ConnectTimeout("connect timed out"), RetryableError, None),
        (httpx.ConnectError("URL not allowed: 10.0.0.7 is private"), PermanentError, None),
        (httpx.UnsupportedProtocol("URL not allowed: ftp"), PermanentError, None),
    ],
    ids=[
        "400-invalid",
        "401",
        "403",
        "404",
        "429",
        "500-duplicate-rkey",
        "502",
        "409",
        "garbled-200",
        "read-timeout",
        "dropped",
        "connect-refused",
        "connect-timeout",
        "netguard",
        "netguard-raw",
    ],
)
def test_create_record_failures_map_to_outcomes(adapter, pds, answer, outcome, status):
    pds.fail[CREATE_RECORD] = answer
    with pytest.raises(outcome) as raised:
        adapter.publish(outgoing())
    assert type(raised.value) is outcome
    assert raised.value.status == status


def test_an_invalid_request_reports_the_server_message(adapter, pds):
    pds.fail[CREATE_RECORD] = xrpc_error(
        400, "InvalidRequest", "Invalid app.bsky.feed.post record: grapheme too big"
    )
    with pytest.raises(PermanentError, match="grapheme too big"):
        adapter.publish(outgoing())


def test_a_rate_limit_retries_after_the_reset_time(adapter, pds):
    reset = int(time.time()) + 60
    pds.fail[CREATE_RECORD] = xrpc_error(
        429, "RateLimitExceeded", **{"RateLimit-Reset": str(reset)}
    )
    with pytest.raises(RetryableError) as raised:
        adapter.publish(outgoing())
    assert raised.value.retry_after is not None
    assert 55 <= raised.value.retry_after <= 60


def test_a_rate_limit_prefers_retry_after(adapter, pds):
    reset = int(time.time()) + 600
    pds.fail[CREATE_RECORD] = xrpc_error(
        429, "RateLimitExceeded", **{"RateLimit-Reset": str(reset), "Retry-After": "7"}
    )
    with pytest.raises(RetryableError) as raised:
        adapter.publish(outgoing())
    assert raised.value.retry_after == 7


# Lookup


def test_lookup_finds_the_published_post(adapter, pds):
    published = adapter.publish(outgoing())
    found = adapter.lookup(outgoing())
    assert found is not None
    assert (found.external_id, found.url) == (published.external_id, published.url)
    assert found.published_at is not None
    assert abs(found.published_at - published.published_at) < dt.timedelta(seconds=1)
    assert pds.calls[-1][1].url.params["rkey"] == record_key("delivery-1", DUE)


def test_lookup_of_a_missing_record_is_none(adapter):
    assert adapter.lookup(outgoing()) is None


def test_lookup_refuses_a_record_with_other_text(adapter, pds):
    adapter.publish(outgoing("Original text"))
    with pytest.raises(LookupUnavailable):
        adapter.lookup(outgoing("Different text"))


@pytest.mark.parametrize(
    "answer",
    [
        xrpc_error(503, "ServiceUnavailable"),
        xrpc_error(429, "RateLimitExceeded"),
        xrpc_error(400, "InvalidRequest", "Could not find repo"),
        httpx.ConnectError("Connection refused"),
        httpx.ReadTimeout("read timed out"),
    ],
    ids=["503", "429", "other-400", "connect", "timeout"],
)
def test_lookup_failures_are_unavailable(adapter, pds, answer):
    pds.fail[GET_RECORD] = answer
    with pytest.raises(LookupUnavailable):
        adapter.lookup(outgoing())


def test_lookup_without_a_session_is_unavailable(adapter, pds):
    pds.fail[CREATE_SESSION] = xrpc_error(401, "AuthenticationRequired", "Invalid password")
    with pytest.raises(LookupUnavailable, match="reconnect"):
        adapter.lookup(outgoing())


# record_key


def tid_micros(tid: str) -> int:
    value = 0
    for char in tid:
        value = value * 32 + TID_ALPHABET.index(char)
    return value >> 10


def test_record_key_is_stable_for_one_delivery():
    assert record_key("delivery-1", DUE) == record_key("delivery-1", DUE)


def test_record_key_differs_across_deliveries_due_at_the_same_time():
    keys = {record_key(f"delivery-{n}", DUE) for n in range(1000)}
    assert len(keys) == 1000


def test_record_key_is_a_valid_tid():
    key = record_key("delivery-1", DUE)
    assert len(key) == 13 and set(key) <= set(TID_ALPHABET)
    strict = {"strict_string_format": True}
    assert TypeAdapter(string_formats.Tid).validate_python(key, context=strict) == key
    assert TypeAdapter(string_formats.RecordKey).validate_python(key, context=strict) == key


def test_record_key_carries_the_due_second():
    assert tid_micros(record_key("delivery-1", DUE)) // 1_000_000 == int(DUE.timestamp())


def test_record_keys_sort_by_due_time():
    later = DUE + dt.timedelta(minutes=1)
    assert record_key("zzz", DUE) < record_key("aaa", later)


def test_record_key_treats_a_naive_due_time_as_utc():
    assert record_key("k", DUE.replace(tzinfo=None)) == record_key("k", DUE)


# link_facets


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("No links here", []),
        (
            "Fair: https://a.example/x and http://b.example/y?q=1",
            ["https://a.example/x", "http://b.example/y?q=1"],
        ),
        ("Apply at https://jobs.example/apply.", ["https://jobs.example/apply"]),
        ("Apply (https://jobs.example/apply) now", ["https://jobs.example/apply"]),
        (
            "See https://en.wikipedia.org/wiki/Fair_(event)!",
            ["https://en.wikipedia.org/wiki/Fair_(event)"],
        ),
        ("Café 🎉 naïve https://x.example/é", ["https://x.example/é"]),
        ("Is it https://x.example/?", ["https://x.example/"]),
        ("Just https:// alone", []),
    ],
    ids=[
        "none",
        "two",
        "trailing-period",
        "in-brackets",
        "balanced-brackets",
        "non-ascii",
        "question",
        "bare-scheme",
    ],
)
def test_link_facets_cover_each_url_by_byte_offsets(text, urls):
    facets = link_facets(text)
    encoded = text.encode()
    sliced = [encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in facets]
    assert sliced == urls
    assert [f["features"][0]["uri"] for f in facets] == urls


def test_link_facets_count_bytes_not_characters():
    (facet,) = link_facets("é https://x.example")
    assert facet["index"] == {"byteStart": 3, "byteEnd": 20}
