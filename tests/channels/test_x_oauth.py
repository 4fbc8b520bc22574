"""X OAuth 2.0 PKCE helpers: authorization URL, code exchange and token refresh."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from campaign.channels.base import ReconnectNeeded, RetryableError
from campaign.channels.x_oauth import (
    code_challenge,
    exchange_code,
    refresh_tokens,
    start_authorization,
    token_url,
)

TOKEN_URL = "http://127.0.0.1:9/2/oauth2/token"
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
TOKENS = {
    "token_type": "bearer",
    "expires_in": 7200,
    "access_token": "access-2",
    "refresh_token": "refresh-2",
    "scope": "tweet.read tweet.write users.read offline.access",
}
STORED = {
    "auth": "oauth2",
    "access_token": "access-1",
    "refresh_token": "refresh-1",
    "expires_at": "2026-03-02T09:31:00+00:00",
    "client_id": "client-1",
    "user_id": "99",
}


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def form(request: requests.PreparedRequest) -> dict[str, str]:
    body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
    return {key: values[0] for key, values in parse_qs(body).items()}


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


# -- start ----------------------------------------------------------------------------------


def test_verifier_has_pkce_length_and_characters() -> None:
    verifier = start_authorization("client-1", "https://app.example/cb").code_verifier

    assert 43 <= len(verifier) <= 128
    assert re.fullmatch(r"[A-Za-z0-9\-._~]+", verifier)


def test_challenge_matches_rfc7636_example() -> None:
    # RFC 7636 appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_authorization_url_carries_the_s256_challenge_of_its_verifier() -> None:
    start = start_authorization("client-1", "https://app.example/cb")

    params = query(start.url)
    assert params["code_challenge"] == code_challenge(start.code_verifier)
    assert params["code_challenge_method"] == "S256"
    assert "=" not in params["code_challenge"]
    assert len(base64.urlsafe_b64decode(params["code_challenge"] + "=")) == 32


def test_authorization_url_names_client_redirect_scopes_and_state() -> None:
    start = start_authorization(
        "client-1", "https://app.example/cb", authorize_url="http://127.0.0.1:9/authorize"
    )

    assert start.url.startswith("http://127.0.0.1:9/authorize?")
    assert "scope=tweet.read%20tweet.write%20users.read%20offline.access" in start.url
    assert query(start.url) == {
        "response_type": "code",
        "client_id": "client-1",
        "redirect_uri": "https://app.example/cb",
        "scope": "tweet.read tweet.write users.read offline.access",
        "state": start.state,
        "code_challenge": code_challenge(start.code_verifier),
        "code_challenge_method": "S256",
    }


def test_each_start_has_fresh_state_and_verifier() -> None:
    first = start_authorization("client-1", "https://app.example/cb")
    second = start_authorization("client-1", "https://app.example/cb")

    assert first.state != second.state
    assert first.code_verifier != second.code_verifier
    assert len(first.state) >= 32


def test_token_url_sits_under_the_base_url() -> None:
    assert token_url("https://api.x.com/") == "https://api.x.com/2/oauth2/token"


# -- exchange -------------------------------------------------------------------------------


def exchange(api: responses.RequestsMock, client_secret: str | None) -> dict[str, Any]:
    api.post(TOKEN_URL, json=TOKENS)
    return exchange_code(
        requests.Session(),
        TOKEN_URL,
        client_id="client-1",
        client_secret=client_secret,
        code="code-1",
        code_verifier="v" * 64,
        redirect_uri="https://app.example/cb",
        now=NOW,
    )


def test_public_client_names_itself_in_the_body(api: responses.RequestsMock) -> None:
    exchange(api, client_secret=None)

    request = api.calls[0].request
    assert "Authorization" not in request.headers
    assert form(request) == {
        "grant_type": "authorization_code",
        "code": "code-1",
        "redirect_uri": "https://app.example/cb",
        "code_verifier": "v" * 64,
        "client_id": "client-1",
    }


def test_confidential_client_uses_basic_auth(api: responses.RequestsMock) -> None:
    exchange(api, client_secret="shh")

    request = api.calls[0].request
    expected = base64.b64encode(b"client-1:shh").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert "client_id" not in form(request)


def test_exchange_returns_the_credential_mapping(api: responses.RequestsMock) -> None:
    credentials = exchange(api, client_secret="shh")

    assert credentials == {
        "auth": "oauth2",
        "access_token": "access-2",
        "refresh_token": "refresh-2",
        "expires_at": "2026-03-02T11:30:00+00:00",
        "client_id": "client-1",
        "client_secret": "shh",
        "scope": "tweet.read tweet.write users.read offline.access",
    }


def test_refused_code_needs_reconnect(api: responses.RequestsMock) -> None:
    api.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})

    with pytest.raises(ReconnectNeeded, match="invalid_grant"):
        exchange_code(
            requests.Session(),
            TOKEN_URL,
            client_id="client-1",
            client_secret=None,
            code="stale",
            code_verifier="v" * 64,
            redirect_uri="https://app.example/cb",
            now=NOW,
        )


# -- refresh --------------------------------------------------------------------------------


def test_refresh_spends_the_stored_refresh_token(api: responses.RequestsMock) -> None:
    api.post(TOKEN_URL, json=TOKENS)

    refresh_tokens(requests.Session(), TOKEN_URL, STORED, NOW)

    assert form(api.calls[0].request) == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-1",
        "client_id": "client-1",
    }


def test_refresh_rotates_the_refresh_token_and_keeps_other_keys(
    api: responses.RequestsMock,
) -> None:
    api.post(TOKEN_URL, json=TOKENS)

    renewed = refresh_tokens(requests.Session(), TOKEN_URL, STORED, NOW)

    assert renewed == {
        **STORED,
        "access_token": "access-2",
        "refresh_token": "refresh-2",
        "expires_at": "2026-03-02T11:30:00+00:00",
        "scope": TOKENS["scope"],
    }


def test_refresh_keeps_the_old_refresh_token_when_none_comes_back(
    api: responses.RequestsMock,
) -> None:
    api.post(TOKEN_URL, json={k: v for k, v in TOKENS.items() if k != "refresh_token"})

    renewed = refresh_tokens(requests.Session(), TOKEN_URL, STORED, NOW)

    assert renewed["refresh_token"] == "refresh-1"
    assert renewed["access_token"] == "access-2"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": "invalid_request", "error_description": "Value passed for the token"}),
        (401, {"error": "unauthorized_client", "error_description": "Missing valid auth"}),
    ],
)
def test_refused_refresh_needs_reconnect_naming_the_error(
    api: responses.RequestsMock, status: int, body: dict[str, str]
) -> None:
    api.post(TOKEN_URL, status=status, json=body)

    with pytest.raises(ReconnectNeeded) as caught:
        refresh_tokens(requests.Session(), TOKEN_URL, STORED, NOW)

    assert body["error"] in caught.value.message
    assert "refresh-1" not in caught.value.message


@pytest.mark.parametrize(
    "reply",
    [
        {"status": 503, "body": "<html>Service Unavailable</html>"},
        {"body": requests.ConnectionError("connection refused")},
        {"body": requests.ReadTimeout("read timed out")},
    ],
    ids=["503", "connection-error", "timeout"],
)
def test_refresh_that_cannot_reach_x_is_retryable(
    api: responses.RequestsMock, reply: dict[str, Any]
) -> None:
    api.post(TOKEN_URL, **reply)

    with pytest.raises(RetryableError):
        refresh_tokens(requests.Session(), TOKEN_URL, STORED, NOW)


def test_refresh_without_a_refresh_token_needs_reconnect() -> None:
    stored = {key: value for key, value in STORED.items() if key != "refresh_token"}

    with pytest.raises(ReconnectNeeded):
        refresh_tokens(requests.Session(), TOKEN_URL, stored, NOW)
