"""Building a channel's adapter: decrypted credentials, the guarded HTTP session, the outbox.

Credentials are decrypted only here, only for the call, and never logged. When an adapter is
handed new tokens (a rotated single-use refresh token, a new Bluesky session), they are
encrypted and committed at once in their own short transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from campaign.channels import adapter_class
from campaign.channels.base import ChannelAdapter, ChannelContext, ReconnectNeeded
from campaign.config import Settings
from campaign.crypto import CredentialBox, CredentialError
from campaign.db import database_now
from campaign.models import Channel, OutboxEntry
from campaign.services.publishing import ChannelSnapshot

log = logging.getLogger(__name__)


class SqlOutboxStore:
    """The outbox's storage: one row per idempotency key, each write its own transaction."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def insert(
        self, channel_id: int, key: str, text: str, link_url: str | None
    ) -> tuple[int, dt.datetime]:
        """Store the post; a repeat of the key returns the entry stored the first time."""
        try:
            with self._factory.begin() as session:
                entry = OutboxEntry(
                    channel_id=channel_id,
                    idempotency_key=key,
                    text=text,
                    link_url=link_url,
                    published_at=database_now(session),
                )
                session.add(entry)
                session.flush()
                return entry.id, entry.published_at
        except IntegrityError:
            found = self.find(key)
            if found is None:
                raise
            return found

    def find(self, key: str) -> tuple[int, dt.datetime] | None:
        """The entry stored under this key, if any."""
        with self._factory.begin() as session:
            row = session.execute(
                select(OutboxEntry.id, OutboxEntry.published_at).where(
                    OutboxEntry.idempotency_key == key
                )
            ).first()
        return None if row is None else (row[0], row[1])


@dataclass
class AdapterFactory:
    """Builds adapters for claimed deliveries; one guarded HTTP session per adapter."""

    settings: Settings
    credentials: CredentialBox
    factory: sessionmaker[Session]
    # Connection pools each built adapter holds, closed by release() when its pass ends.
    _held: dict[int, list[Any]] = field(default_factory=dict)

    def release(self, adapter: ChannelAdapter) -> None:
        """Close the HTTP connections made for this adapter."""
        for resource in self._held.pop(id(adapter), []):
            resource.close()

    def _default_base_url(self, kind: str) -> str:
        sections = {
            "x": self.settings.x,
            "mastodon": self.settings.mastodon,
            "bluesky": self.settings.bluesky,
        }
        section = sections.get(kind)
        return section.api_base_url if section is not None else self.settings.app.base_url

    def _persist(self, channel_id: int) -> Any:
        def save(new_credentials: dict[str, Any]) -> None:
            ciphertext = self.credentials.encrypt(json.dumps(new_credentials).encode())
            with self.factory.begin() as session:
                session.execute(
                    update(Channel)
                    .where(Channel.id == channel_id)
                    .values(credentials_encrypted=ciphertext)
                )
            log.info("channel %s: stored refreshed credentials", channel_id)

        return save

    def build(self, channel: ChannelSnapshot) -> ChannelAdapter:
        """The adapter for a channel; ReconnectNeeded when its credentials cannot be read."""
        from campaign import netguard

        try:
            plaintext = (
                self.credentials.decrypt(channel.credentials_encrypted)
                if channel.credentials_encrypted
                else b"{}"
            )
            credentials: dict[str, Any] = json.loads(plaintext)
        except (CredentialError, ValueError) as exc:
            raise ReconnectNeeded(
                "The stored credentials cannot be decrypted with the configured keys; "
                "reconnect the channel."
            ) from exc
        allow = netguard.parse_allow_list(self.settings.network.allow_private_hosts)
        timeout = self.settings.publishing.request_timeout_seconds
        base_url = (channel.base_url or self._default_base_url(channel.kind)).rstrip("/")
        context = ChannelContext(
            kind=channel.kind,
            base_url=base_url,
            credentials=credentials,
            http=netguard.guarded_session(allow, timeout=timeout),
            timeout=timeout,
            on_credentials_change=self._persist(channel.id),
            allow_private_hosts=tuple(self.settings.network.allow_private_hosts),
            extra={
                "channel_id": channel.id,
                "outbox_store": SqlOutboxStore(self.factory),
                "timeline_url": f"{self.settings.app.base_url.rstrip('/')}/timeline",
            },
        )
        held: list[Any] = [context.http]
        if channel.kind == "bluesky":
            context.extra["httpx_transport"] = netguard.guarded_httpx_transport(
                allow, timeout=timeout
            )
            held.append(context.extra["httpx_transport"])
        try:
            adapter = adapter_class(channel.kind)(context)
        except BaseException:
            for resource in held:
                resource.close()
            raise
        self._held[id(adapter)] = held
        return adapter
