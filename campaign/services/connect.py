"""Connecting network accounts: Mastodon and X by OAuth, Bluesky and X keys by form.

OAuth state lives in the database, never in the session cookie (which anyone holding it can
read): one pending authorization per redirect, single use, valid for ten minutes, bound to the
admin who started it. Each step that calls a network is split from the steps that write, so the
caller can commit before the call and no database lock is held while a platform answers.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from campaign.channels import mastodon_oauth, x_oauth
from campaign.channels.base import ChannelError
from campaign.config import Settings
from campaign.crypto import CredentialBox, CredentialError
from campaign.models import AUDIENCES, Channel, MastodonApp, OAuthAuthorization
from campaign.services import NotFound, ServiceError, audit
from campaign.services.audit import Actor
from campaign.services.channels import (
    REQUIRED_CREDENTIALS,
    NewChannel,
    check_credentials,
    create_channel,
    store_credentials,
)

AUTHORIZATION_TTL = dt.timedelta(minutes=10)
CALLBACK_PATH = "/settings/channels/connect/{kind}/callback"
NETWORK_KINDS = ("x", "mastodon", "bluesky")
_INSTANCE_HINT = "Give only the instance's address, such as https://mastodon.social."
_BARE_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class AuthorizationRefused(ServiceError):
    """A callback's state is unknown, someone else's, already used or expired."""


class ConnectFailed(ServiceError):
    """The platform refused or could not be reached; the message says which, in plain words."""


@dataclass(frozen=True)
class Target:
    """What a connection is for: a new channel, or the existing one being reconnected."""

    channel_name: str
    audience: str
    channel_id: int | None = None


@dataclass(frozen=True)
class AppKeys:
    """Our OAuth client on one Mastodon instance."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class Claimed:
    """A pending authorization, consumed, with what its callback needs to finish."""

    kind: str
    base_url: str | None
    target: Target
    app: AppKeys | None = None
    code_verifier: str | None = field(default=None, repr=False)


def callback_url(app_base_url: str, kind: str) -> str:
    """The redirect URI for a kind, built from the configured public address (never the Host)."""
    return app_base_url.rstrip("/") + CALLBACK_PATH.format(kind=kind)


def http_session(settings: Settings) -> requests.Session:
    """The SSRF-guarded session for calls to platforms, honouring [network] allow_private_hosts."""
    from campaign import netguard

    allow = netguard.parse_allow_list(settings.network.allow_private_hosts)
    return netguard.guarded_session(allow, timeout=settings.publishing.request_timeout_seconds)


def x_prices() -> tuple[float | None, float | None]:
    """X's price per post and per post with a link, in US dollars, as the adapter declares."""
    from campaign.channels import capabilities

    found = capabilities("x")
    return found.cost_per_post_usd, found.cost_per_link_post_usd


def normalise_instance_url(raw: str) -> str:
    """An instance address as scheme://host[:port], lowercased; a bare host means https."""
    text = raw.strip()
    if _BARE_HOST.fullmatch(text):
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ServiceError(
            "Give the instance's address, such as https://mastodon.social."
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ServiceError("The instance address must start with https:// (or http://).")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ServiceError(_INSTANCE_HINT)
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


def channel_to_reconnect(session: Session, organisation_id: int, channel_id: int) -> Channel:
    """The organisation's network channel; NotFound for others', ServiceError for local ones."""
    channel = session.scalar(
        select(Channel).where(Channel.id == channel_id, Channel.organisation_id == organisation_id)
    )
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    if channel.kind not in NETWORK_KINDS:
        raise ServiceError(f"“{channel.display_name}” has no network account to reconnect.")
    return channel


def _check_target(target: Target) -> Target:
    name = target.channel_name.strip()
    if not name or len(name) > 200:
        raise ServiceError("A channel needs a name of 1 to 200 characters.")
    if target.audience not in AUDIENCES:
        raise ServiceError(f"Choose an audience: {', '.join(AUDIENCES)}.")
    return Target(name, target.audience, target.channel_id)


def _platform_error(exc: ChannelError) -> ConnectFailed:
    # The helpers' messages already name the platform and what it said, never a secret.
    return ConnectFailed(f"Not connected: {exc.message}")


def find_mastodon_app(
    session: Session, box: CredentialBox, instance_url: str, redirect_uri: str
) -> AppKeys | None:
    """Our stored app on the instance, unless none is stored or it has another callback."""
    app = session.scalar(select(MastodonApp).where(MastodonApp.instance_url == instance_url))
    if app is None or app.redirect_uri != redirect_uri:
        return None
    try:
        return AppKeys(app.client_id, box.decrypt(app.client_secret_encrypted).decode())
    except CredentialError:
        return None  # encrypted under a retired key: registering again is harmless


def register_mastodon_app(
    http: requests.Session, instance_url: str, redirect_uri: str, website: str
) -> AppKeys:
    """Register our app on the instance (a network call; hold no transaction open)."""
    try:
        client_id, secret = mastodon_oauth.register_app(
            http, instance_url, client_name="campaign", redirect_uri=redirect_uri, website=website
        )
    except ChannelError as exc:
        raise _platform_error(exc) from None
    return AppKeys(client_id, secret)


def _prune(session: Session, now: dt.datetime) -> None:
    session.execute(
        delete(OAuthAuthorization).where(OAuthAuthorization.created_at < now - AUTHORIZATION_TTL)
    )


def _pending(
    session: Session,
    actor: Actor,
    kind: str,
    base_url: str | None,
    target: Target,
    state: str,
    now: dt.datetime,
) -> OAuthAuthorization:
    if actor.user_id is None:
        raise ServiceError("Only a signed-in admin can connect an account.")
    _prune(session, now)
    pending = OAuthAuthorization(
        state=state,
        organisation_id=actor.organisation_id,
        user_id=actor.user_id,
        kind=kind,
        base_url=base_url,
        channel_name=target.channel_name,
        audience=target.audience,
        channel_id=target.channel_id,
        created_at=now,
    )
    session.add(pending)
    return pending


def begin_mastodon(
    session: Session,
    box: CredentialBox,
    actor: Actor,
    instance_url: str,
    app: AppKeys,
    target: Target,
    redirect_uri: str,
    now: dt.datetime,
) -> str:
    """Keep the instance's app and a pending authorization; returns where to send the admin."""
    target = _check_target(target)
    stored = session.scalar(select(MastodonApp).where(MastodonApp.instance_url == instance_url))
    if stored is None:
        stored = MastodonApp(instance_url=instance_url)
        session.add(stored)
    if stored.client_id != app.client_id or stored.redirect_uri != redirect_uri:
        stored.client_id = app.client_id
        stored.client_secret_encrypted = box.encrypt(app.client_secret.encode())
        stored.redirect_uri = redirect_uri
        stored.created_at = now
    pending = _pending(
        session, actor, "mastodon", instance_url, target, secrets.token_urlsafe(32), now
    )
    session.flush()
    return mastodon_oauth.authorization_url(
        instance_url, app.client_id, redirect_uri, pending.state
    )


def begin_x(
    session: Session,
    box: CredentialBox,
    actor: Actor,
    target: Target,
    client_id: str,
    authorize_url: str,
    redirect_uri: str,
    now: dt.datetime,
) -> str:
    """Keep a pending authorization with its encrypted PKCE verifier; returns X's address."""
    target = _check_target(target)
    started = x_oauth.start_authorization(client_id, redirect_uri, authorize_url=authorize_url)
    pending = _pending(session, actor, "x", None, target, started.state, now)
    pending.verifier_encrypted = box.encrypt(started.code_verifier.encode())
    session.flush()
    return started.url


def claim_authorization(
    session: Session, box: CredentialBox, kind: str, state: str, actor: Actor, now: dt.datetime
) -> Claimed:
    """Consume the actor's pending authorization for this state, once; else AuthorizationRefused."""
    pending = (
        session.scalar(select(OAuthAuthorization).where(OAuthAuthorization.state == state))
        if state and len(state) <= 128
        else None
    )
    if (
        pending is None
        or pending.kind != kind
        or pending.organisation_id != actor.organisation_id
        or pending.user_id != actor.user_id
    ):
        raise AuthorizationRefused("This connection request is not one of yours; start again.")
    if pending.used_at is not None:
        raise AuthorizationRefused("This connection request was already used; start again.")
    if pending.created_at < now - AUTHORIZATION_TTL:
        raise AuthorizationRefused("This connection request expired after 10 minutes; start again.")
    # Conditional, so that of two callbacks racing with one state only one goes on.
    result = session.execute(
        update(OAuthAuthorization)
        .where(OAuthAuthorization.id == pending.id, OAuthAuthorization.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise AuthorizationRefused("This connection request was already used; start again.")
    session.expire(pending)
    target = Target(pending.channel_name, pending.audience, pending.channel_id)
    try:
        if kind == "x":
            verifier = box.decrypt(pending.verifier_encrypted or b"").decode()
            return Claimed(kind, None, target, code_verifier=verifier)
        app = session.scalar(
            select(MastodonApp).where(MastodonApp.instance_url == pending.base_url)
        )
        if app is None:
            raise AuthorizationRefused("This instance's app registration is gone; start again.")
        keys = AppKeys(app.client_id, box.decrypt(app.client_secret_encrypted).decode())
    except CredentialError:
        raise AuthorizationRefused(
            "The encryption keys changed during the connection; start again."
        ) from None
    return Claimed(kind, pending.base_url, target, app=keys)


def fetch_mastodon_token(
    http: requests.Session, claimed: Claimed, code: str, redirect_uri: str
) -> dict[str, Any]:
    """Trade the code for a token at the instance (a network call; hold no transaction open)."""
    if claimed.app is None or claimed.base_url is None:
        raise ConnectFailed("This is not a Mastodon connection request.")
    try:
        return mastodon_oauth.exchange_code(
            http,
            claimed.base_url,
            client_id=claimed.app.client_id,
            client_secret=claimed.app.client_secret,
            code=code,
            redirect_uri=redirect_uri,
        )
    except ChannelError as exc:
        raise _platform_error(exc) from None


def fetch_x_token(
    http: requests.Session,
    claimed: Claimed,
    code: str,
    settings: Settings,
    redirect_uri: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Trade the code and PKCE verifier for X tokens (a network call; no transaction open)."""
    if claimed.code_verifier is None:
        raise ConnectFailed("This is not an X connection request.")
    try:
        return x_oauth.exchange_code(
            http,
            x_oauth.token_url(settings.x.api_base_url),
            client_id=settings.x.client_id,
            client_secret=settings.x.client_secret or None,
            code=code,
            code_verifier=claimed.code_verifier,
            redirect_uri=redirect_uri,
            now=now,
            timeout=settings.publishing.request_timeout_seconds,
        )
    except ChannelError as exc:
        raise _platform_error(exc) from None


def save_connection(
    session: Session,
    box: CredentialBox,
    kind: str,
    target: Target,
    base_url: str | None,
    credentials: dict[str, Any],
    actor: Actor,
    now: dt.datetime,
) -> Channel:
    """Add the channel, or give the reconnected one its new credentials; audited either way."""
    if target.channel_id is not None:
        channel = channel_to_reconnect(session, actor.organisation_id, target.channel_id)
        if channel.kind != kind:
            raise ServiceError(f"“{channel.display_name}” is not a {kind} channel.")
        return replace_credentials(
            session, actor.organisation_id, channel.id, credentials, box, actor, now
        )
    target = _check_target(target)
    spec = NewChannel(kind, target.channel_name, target.audience, base_url)
    channel = create_channel(session, actor.organisation_id, spec, credentials, box, actor, now)
    audit.record(
        session,
        actor,
        "channel.connected",
        "channel",
        channel.id,
        now,
        organisation_id=actor.organisation_id,
        kind=kind,
        name=channel.display_name,
    )
    return channel


def replace_credentials(
    session: Session,
    organisation_id: int,
    channel_id: int,
    credentials: dict[str, Any],
    box: CredentialBox,
    actor: Actor | None,
    now: dt.datetime,
) -> Channel:
    """Store new credentials (encrypted); a channel waiting for reconnection becomes active."""
    channel = session.scalar(
        select(Channel).where(Channel.id == channel_id, Channel.organisation_id == organisation_id)
    )
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    if REQUIRED_CREDENTIALS[channel.kind] == ((),):
        raise ServiceError(f"{channel.kind} channels take no credentials")
    checked = check_credentials(channel.kind, credentials)
    store_credentials(channel, checked, box)
    label = checked.get("handle") or checked.get("username")
    if label:
        channel.account_label = str(label)[:200]
    previous = channel.status
    # A paused or disabled channel stays so: reconnecting is not a decision to publish again.
    if previous == "needs_reauth":
        channel.status = "active"
        channel.status_detail = None
    session.flush()
    audit.record(
        session,
        actor,
        "channel.reconnected",
        "channel",
        channel.id,
        now,
        organisation_id=organisation_id,
        kind=channel.kind,
        previous_status=previous,
    )
    return channel
