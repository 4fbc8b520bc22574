"""X OAuth 2.0 (authorization code with PKCE) as pure functions: start, exchange, refresh.

The caller keeps `state` and `code_verifier` server-side between the redirect and the callback,
and persists every credential mapping these functions return (X refresh tokens are single-use).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import requests

from campaign.channels.base import ReconnectNeeded, RetryableError

DEFAULT_SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_PATH = "/2/oauth2/token"  # noqa: S105 - an endpoint path, not a secret
# X documents access tokens as lasting two hours; used only if a response omits expires_in.
_DEFAULT_LIFETIME = dt.timedelta(hours=2)


@dataclass(frozen=True)
class AuthorizationStart:
    """Where to send the user, and the two secrets to keep server-side until the callback."""

    url: str
    state: str
    code_verifier: str


def token_url(base_url: str) -> str:
    """The token endpoint under the configured X API base URL."""
    return base_url.rstrip("/") + TOKEN_PATH


def code_challenge(code_verifier: str) -> str:
    """The S256 PKCE challenge: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def start_authorization(
    client_id: str,
    redirect_uri: str,
    *,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    authorize_url: str = AUTHORIZE_URL,
) -> AuthorizationStart:
    """A fresh authorization URL with a random state and a 128-character PKCE verifier."""
    # token_urlsafe draws from [A-Za-z0-9_-], a subset of PKCE's unreserved characters;
    # 96 bytes encode to exactly 128 characters, the maximum RFC 7636 allows.
    verifier = secrets.token_urlsafe(96)
    state = secrets.token_urlsafe(32)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
        },
        # Spaces as %20, as X's own examples show, rather than "+".
        quote_via=quote,
    )
    return AuthorizationStart(url=f"{authorize_url}?{query}", state=state, code_verifier=verifier)


def exchange_code(
    http: requests.Session,
    token_url: str,
    *,
    client_id: str,
    client_secret: str | None,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    now: dt.datetime,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Trade an authorization code for the credential mapping the X adapter reads."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    payload = _token_request(http, token_url, form, client_id, client_secret, timeout)
    credentials: dict[str, Any] = {"auth": "oauth2", "client_id": client_id}
    if client_secret:
        credentials["client_secret"] = client_secret
    credentials.update(_token_fields(payload, now))
    return credentials


def refresh_tokens(
    http: requests.Session,
    token_url: str,
    credentials: dict[str, Any],
    now: dt.datetime,
    *,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The whole new credential mapping after spending the stored single-use refresh token."""
    refresh_token = credentials.get("refresh_token")
    client_id = credentials.get("client_id")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise ReconnectNeeded("The X connection has no refresh token; reconnect the X account.")
    if not isinstance(client_id, str) or not client_id:
        raise ReconnectNeeded("The X connection has no client id; reconnect the X account.")
    client_secret = credentials.get("client_secret") or None
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    payload = _token_request(http, token_url, form, client_id, client_secret, timeout)
    renewed = dict(credentials)
    renewed.update(_token_fields(payload, now))
    if "refresh_token" not in payload:
        # X rotates the refresh token on every refresh; if it ever does not, the old one stands.
        renewed["refresh_token"] = refresh_token
    return renewed


def _token_request(
    http: requests.Session,
    url: str,
    form: dict[str, str],
    client_id: str,
    client_secret: str | None,
    timeout: float,
) -> dict[str, Any]:
    """POST to the token endpoint and return its JSON, mapping failures to outcome errors."""
    auth: tuple[str, str] | None = None
    if client_secret:
        # Confidential clients authenticate with HTTP Basic; public ones name themselves.
        auth = (client_id, client_secret)
    else:
        form = {**form, "client_id": client_id}
    try:
        # No redirects: a token endpoint that redirects must not get our secrets re-sent.
        response = http.post(url, data=form, auth=auth, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        if "URL not allowed" in str(exc):
            raise ReconnectNeeded(
                "The X token address is blocked by the network settings; check the X base URL."
            ) from exc
        raise RetryableError("Could not reach X to renew the connection.") from exc
    body = _json_object(response)
    status = response.status_code
    if status == 429 or status >= 500:
        raise RetryableError(
            f"X's token service answered HTTP {status}; will try again.", status=status
        )
    if 400 <= status < 500:
        code = _error_code(body)
        detail = f" ({code})" if code else ""
        raise ReconnectNeeded(
            f"X refused the connection's tokens{detail}; reconnect the X account.", status=status
        )
    access_token = body.get("access_token") if body else None
    if status != 200 or not isinstance(access_token, str) or not access_token:
        raise RetryableError(
            f"X's token service gave an unexpected answer (HTTP {status}).", status=status
        )
    return body or {}


def _token_fields(payload: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The credential keys a token response sets: tokens, expiry (ISO 8601 UTC) and scope."""
    fields: dict[str, Any] = {"access_token": payload["access_token"]}
    refresh_token = payload.get("refresh_token")
    if isinstance(refresh_token, str) and refresh_token:
        fields["refresh_token"] = refresh_token
    lifetime = _DEFAULT_LIFETIME
    expires_in = payload.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        lifetime = dt.timedelta(seconds=expires_in)
    fields["expires_at"] = (now.astimezone(dt.UTC) + lifetime).isoformat(timespec="seconds")
    if isinstance(payload.get("scope"), str):
        fields["scope"] = payload["scope"]
    return fields


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None for anything else (HTML error pages included)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_code(body: dict[str, Any] | None) -> str:
    """The OAuth `error` code, kept only if it looks like one (it is shown to staff)."""
    code = body.get("error") if body else None
    if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code):
        return code
    return ""
