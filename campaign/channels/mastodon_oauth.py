"""Connecting a Mastodon account: register our app on the instance, then the OAuth code flow.

Plain functions over the guarded requests session, with no Flask: the web layer stores the app
per instance, keeps `state` in the server-side session and persists the returned credentials.
Mastodon.py's own helpers are not used here: `create_app` ignores the HTTP status (an error body
surfaces as `KeyError('client_id')`), and `log_in` first fetches the token endpoint from a
discovery document the instance controls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

import requests

from campaign.channels.base import (
    ChannelError,
    PermanentError,
    ReconnectNeeded,
    RetryableError,
)
from campaign.channels.mastodon import network_failure_kind

DEFAULT_SCOPES = ("read", "write")
DEFAULT_TIMEOUT = 10.0


def register_app(
    http: requests.Session,
    base_url: str,
    *,
    client_name: str,
    redirect_uri: str,
    website: str | None,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[str, str]:
    """Register this app on the instance (POST /api/v1/apps); returns (client_id, secret)."""
    data = {"client_name": client_name, "redirect_uris": redirect_uri, "scopes": " ".join(scopes)}
    if website:
        data["website"] = website
    response = _post(http, _base(base_url) + "/api/v1/apps", data, timeout, "register the app")
    body = _json(response)
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError(
            _refusal("could not register the app", response, body), status=response.status_code
        )
    client_id, secret = body.get("client_id"), body.get("client_secret")
    if not response.ok or not isinstance(client_id, str) or not isinstance(secret, str):
        raise PermanentError(
            _refusal("refused to register the app", response, body), status=response.status_code
        )
    return client_id, secret


def authorization_url(
    base_url: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    scopes: Sequence[str] = DEFAULT_SCOPES,
) -> str:
    """Where to send the user to approve access (the instance's /oauth/authorize)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
        },
        quote_via=quote,
    )
    return f"{_base(base_url)}/oauth/authorize?{query}"


def exchange_code(
    http: requests.Session,
    base_url: str,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Trade the authorisation code for a token; returns the credentials mapping to store."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
    }
    response = _post(http, _base(base_url) + "/oauth/token", data, timeout, "finish connecting")
    body = _json(response)
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError(
            _refusal("could not finish connecting", response, body), status=response.status_code
        )
    token = body.get("access_token")
    if not response.ok or not isinstance(token, str) or not token:
        # A used, expired or foreign code, or a revoked app: only a fresh approval helps.
        raise ReconnectNeeded(
            _refusal("refused the connection", response, body), status=response.status_code
        )
    scope = body.get("scope")
    granted = scope if isinstance(scope, str) else " ".join(scopes)
    missing = [s for s in scopes if not _covers(granted.split(), s)]
    if missing:
        raise ReconnectNeeded(
            f"Mastodon granted fewer permissions than needed (missing {' '.join(missing)})."
        )
    return {
        "access_token": token,
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": granted,
    }


def _covers(granted: list[str], wanted: str) -> bool:
    # "write" grants every "write:..." scope.
    return wanted in granted or wanted.split(":", 1)[0] in granted


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def _post(
    http: requests.Session, url: str, data: dict[str, str], timeout: float, doing: str
) -> requests.Response:
    try:
        return http.post(url, data=data, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        raise _network_error(exc, doing) from None


def _network_error(exc: requests.RequestException, doing: str) -> ChannelError:
    kind = network_failure_kind(exc)
    if kind == "blocked":
        return PermanentError("The Mastodon instance address is not allowed by the network guard.")
    if kind == "invalid":
        return PermanentError("The Mastodon instance address is not a valid URL.")
    # Both calls are safe to repeat by hand: a second app or a failed code exchange harms nothing.
    return RetryableError(f"The Mastodon instance could not be reached to {doing}.")


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(what: str, response: requests.Response, body: dict[str, Any]) -> str:
    # The instance's own words (error_description on OAuth errors) help staff most; they are
    # never echoed with our secret, which is only in the request body.
    detail = body.get("error_description") or body.get("error")
    shown = f": {str(detail)[:300]}" if detail else ""
    return f"The Mastodon instance {what} (HTTP {response.status_code}){shown}"
