"""Registering the app on a Mastodon instance and the OAuth code exchange, against `responses`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from campaign.channels.base import PermanentError, ReconnectNeeded, RetryableError
from campaign.channels.mastodon_oauth import authorization_url, exchange_code, register_app

BASE = "http://127.0.0.1:9"
APPS = f"{BASE}/api/v1/apps"
TOKEN_URL = f"{BASE}/oauth/token"
CALLBACK = "https://campaign.example.ac.uk/channels/mastodon/callback"
SECRET = "client-SECRET-xyz"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def register(**overrides: Any) -> tuple[str, str]:
    kwargs: dict[str, Any] = {
        "client_name": "Careers Campaign",
        "redirect_uri": CALLBACK,
        "website": "https://campaign.example.ac.uk",
    }
    kwargs.update(overrides)
    return register_app(requests.Session(), BASE + "/", **kwargs)


def exchange(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "client_id": "cid",
        "client_secret": SECRET,
        "code": "the-code",
        "redirect_uri": CALLBACK,
    }
    kwargs.update(overrides)
    return exchange_code(requests.Session(), BASE, **kwargs)


def app_json() -> dict[str, Any]:
    return {
        "id": "563419",
        "name": "Careers Campaign",
        "website": "https://campaign.example.ac.uk",
        "scopes": ["read", "write"],
        "redirect_uri": CALLBACK,
        "redirect_uris": [CALLBACK],
        "client_id": "cid",
        "client_secret": SECRET,
        "client_secret_expires_at": 0,
    }


def test_register_app_returns_client_id_and_secret(mocked: responses.RequestsMock) -> None:
    mocked.post(APPS, json=app_json())

    assert register() == ("cid", SECRET)


def test_register_app_sends_name_redirect_scopes_and_website(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(APPS, json=app_json())

    register()

    form = parse_qs(str(mocked.calls[0].request.body))
    assert form == {
        "client_name": ["Careers Campaign"],
        "redirect_uris": [CALLBACK],
        "scopes": ["read write"],
        "website": ["https://campaign.example.ac.uk"],
    }


def test_register_app_error_body_is_permanent_with_its_text(
    mocked: responses.RequestsMock,
) -> None:
    error = "Validation failed: Redirect URI must be an absolute URI."
    mocked.post(APPS, status=422, json={"error": error})

    with pytest.raises(PermanentError) as caught:
        register()

    assert error in caught.value.message
    assert caught.value.status == 422


def test_register_app_success_without_client_id_is_permanent(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(APPS, json={"id": "1", "name": "Careers Campaign"})

    with pytest.raises(PermanentError):
        register()


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 503, "json": {"error": "Unavailable"}}, id="503"),
        pytest.param({"status": 429, "json": {"error": "Too many requests"}}, id="429"),
        pytest.param({"body": requests.ConnectTimeout("connect timed out")}, id="timeout"),
    ],
)
def test_register_app_when_instance_cannot_answer_is_retryable(
    mocked: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    mocked.post(APPS, **failure)

    with pytest.raises(RetryableError):
        register()


def test_authorization_url_asks_for_a_code_with_our_parameters() -> None:
    url = authorization_url(BASE + "/", "cid", CALLBACK, "st4te")

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/oauth/authorize"
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": ["cid"],
        "redirect_uri": [CALLBACK],
        "scope": ["read write"],
        "state": ["st4te"],
    }


def test_exchange_code_returns_credentials(mocked: responses.RequestsMock) -> None:
    mocked.post(
        TOKEN_URL,
        json={
            "access_token": "tok",
            "token_type": "Bearer",
            "scope": "read write",
            "created_at": 1,
        },
    )

    assert exchange() == {
        "access_token": "tok",
        "client_id": "cid",
        "client_secret": SECRET,
        "scope": "read write",
    }


def test_exchange_code_sends_the_authorization_code_grant(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json={"access_token": "tok", "scope": "read write"})

    exchange()

    form = parse_qs(str(mocked.calls[0].request.body))
    assert form == {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "client_id": ["cid"],
        "client_secret": [SECRET],
        "redirect_uri": [CALLBACK],
        "scope": ["read write"],
    }


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(
            401,
            {"error": "invalid_client", "error_description": "Client authentication failed"},
            id="401",
        ),
        pytest.param(
            400,
            {"error": "invalid_grant", "error_description": "The provided authorization grant"},
            id="400",
        ),
    ],
)
def test_exchange_code_refused_needs_reconnect(
    mocked: responses.RequestsMock, status: int, body: dict[str, str]
) -> None:
    mocked.post(TOKEN_URL, status=status, json=body)

    with pytest.raises(ReconnectNeeded) as caught:
        exchange()

    assert body["error_description"] in caught.value.message
    assert SECRET not in str(caught.value)


def test_exchange_code_when_instance_is_down_is_retryable(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, status=503, json={"error": "Unavailable"})

    with pytest.raises(RetryableError):
        exchange()


def test_exchange_code_with_fewer_scopes_granted_needs_reconnect(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(TOKEN_URL, json={"access_token": "tok", "scope": "read"})

    with pytest.raises(ReconnectNeeded):
        exchange()


def test_exchange_code_accepts_a_broader_scope_for_granular_requests(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(TOKEN_URL, json={"access_token": "tok", "scope": "read write"})

    credentials = exchange(scopes=("read:statuses", "write:statuses"))

    assert credentials["access_token"] == "tok"
