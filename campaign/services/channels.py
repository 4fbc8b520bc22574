"""Channels and their credentials, which are only ever stored encrypted."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.crypto import CredentialBox, CredentialError
from campaign.models import AUDIENCES, CHANNEL_KINDS, Channel
from campaign.services import ServiceError, audit
from campaign.services.audit import Actor


def store_credentials(channel: Channel, credentials: dict[str, Any], box: CredentialBox) -> None:
    """Encrypt and keep a channel's tokens; the plaintext never reaches the database."""
    channel.credentials_encrypted = box.encrypt(json.dumps(credentials).encode())


def read_credentials(channel: Channel, box: CredentialBox) -> dict[str, Any]:
    """The decrypted credentials, or an empty dict when none are stored."""
    if channel.credentials_encrypted is None:
        return {}
    loaded: dict[str, Any] = json.loads(box.decrypt(channel.credentials_encrypted))
    return loaded


def rotate_credentials(session: Session, channels: list[Channel], box: CredentialBox) -> int:
    """Re-encrypt stored credentials under the newest key; returns how many changed."""
    rotated = 0
    for channel in channels:
        if channel.credentials_encrypted is not None:
            channel.credentials_encrypted = box.rotate(channel.credentials_encrypted)
            rotated += 1
    session.flush()
    return rotated


# Credential fields each kind needs (write-only: no page, response or log shows them again).
REQUIRED_CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    "outbox": ((),),
    "manual": ((),),
    # Either OAuth 1.0a keys or OAuth 2.0 user tokens.
    "x": (
        ("consumer_key", "consumer_secret", "access_token", "access_token_secret"),
        ("access_token", "refresh_token", "client_id"),
    ),
    "mastodon": (("access_token",),),
    "bluesky": (("handle", "app_password"),),
}


@dataclass(frozen=True)
class NewChannel:
    """What an admin gives to add a channel."""

    kind: str
    display_name: str
    audience: str = "students"
    base_url: str | None = None
    requires_approval: bool = False
    max_posts_per_hour: int | None = None
    max_posts_per_day: int | None = None


def _check_base_url(url: str | None) -> str | None:
    if not url:
        return None
    parsed = urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ServiceError(f"base URL {url!r} must be an http:// or https:// address")
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        raise ServiceError("base URL must not carry credentials, a query or a fragment")
    return url.strip().rstrip("/")


def check_credentials(kind: str, credentials: dict[str, Any]) -> dict[str, Any]:
    """The credentials if they have the fields this kind needs; ServiceError naming them if not."""
    options = REQUIRED_CREDENTIALS[kind]
    if options == ((),):
        if credentials:
            raise ServiceError(f"{kind} channels take no credentials")
        return {}
    for fields in options:
        if all(isinstance(credentials.get(f), str) and credentials[f] for f in fields):
            if kind == "x":
                auth = "oauth1" if "consumer_key" in fields else "oauth2"
                return {**credentials, "auth": credentials.get("auth", auth)}
            return dict(credentials)
    wanted = " or ".join("{" + ", ".join(f) + "}" for f in options)
    raise ServiceError(f"{kind} credentials must be a JSON object with {wanted}")


def create_channel(
    session: Session,
    organisation_id: int,
    spec: NewChannel,
    credentials: dict[str, Any],
    box: CredentialBox,
    actor: Actor | None,
    now: dt.datetime,
) -> Channel:
    """Add a channel; its credentials are checked for shape and stored only encrypted."""
    if spec.kind not in CHANNEL_KINDS:
        raise ServiceError(f"unknown channel kind {spec.kind!r}; use one of {CHANNEL_KINDS}")
    if spec.audience not in AUDIENCES:
        raise ServiceError(f"unknown audience {spec.audience!r}; use one of {AUDIENCES}")
    name = spec.display_name.strip()
    if not name or len(name) > 200:
        raise ServiceError("a channel needs a name of 1 to 200 characters")
    for cap in (spec.max_posts_per_hour, spec.max_posts_per_day):
        if cap is not None and cap < 1:
            raise ServiceError("caps must be at least 1 post (leave empty for no cap)")
    checked = check_credentials(spec.kind, credentials)
    channel = Channel(
        organisation_id=organisation_id,
        kind=spec.kind,
        display_name=name,
        audience=spec.audience,
        base_url=_check_base_url(spec.base_url),
        requires_approval=spec.requires_approval,
        max_posts_per_hour=spec.max_posts_per_hour,
        max_posts_per_day=spec.max_posts_per_day,
        account_label=str(checked.get("handle") or checked.get("username") or "")[:200] or None,
        created_at=now,
    )
    if checked:
        store_credentials(channel, checked, box)
    session.add(channel)
    session.flush()
    audit.record(
        session,
        actor,
        "channel.created",
        "channel",
        channel.id,
        now,
        organisation_id=organisation_id,
        kind=spec.kind,
        name=name,
    )
    return channel


def rotate_all_credentials(session: Session, box: CredentialBox) -> tuple[int, list[int]]:
    """Re-encrypt every channel's credentials under the newest key.

    Returns how many were rotated and the ids of channels whose credentials no configured key
    can read; those are marked "reconnect needed" rather than stopping the rotation.
    """
    rotated, unreadable = 0, []
    for channel in session.scalars(
        select(Channel).where(Channel.credentials_encrypted.is_not(None)).order_by(Channel.id)
    ):
        try:
            rotated += rotate_credentials(session, [channel], box)
        except CredentialError:
            channel.status = "needs_reauth"
            channel.status_detail = (
                "The stored credentials cannot be decrypted with the configured keys; "
                "reconnect the channel."
            )
            unreadable.append(channel.id)
    session.flush()
    return rotated, unreadable
