"""Channels and their credentials, which are only ever stored encrypted."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from campaign.crypto import CredentialBox
from campaign.models import Channel


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
