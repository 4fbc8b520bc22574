"""Building a channel's adapter: decrypted credentials, the guarded HTTP session, the outbox.

Credentials are decrypted only here, only for the call, and never logged. When an adapter is
handed new tokens (a rotated single-use refresh token, a new Bluesky session), they are
encrypted and committed at once in their own short transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import column, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, sessionmaker

from campaign.channels import adapter_class
from campaign.channels.base import ChannelAdapter, ChannelContext, OutgoingPost, ReconnectNeeded
from campaign.config import Settings
from campaign.crypto import CredentialBox, CredentialError
from campaign.db import UTCDateTime
from campaign.models import Channel, OutboxEntry
from campaign.services.dbclock import database_clock, loaded_time
from campaign.services.publishing import ChannelSnapshot, table

log = logging.getLogger(__name__)


class SqlOutboxStore:
    """The outbox's storage: one row per idempotency key.

    `insert` and `find` are each their own short transaction; `insert_many` writes inside the
    caller's transaction, so that the engine commits the entries with their completion.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def insert(
        self, channel_id: int, key: str, text: str, link_url: str | None
    ) -> tuple[int, dt.datetime]:
        """Store the post; a repeat of the key returns the entry stored the first time."""
        with self._factory.begin() as session:
            [entry] = _store(session, channel_id, [(key, text, link_url)])
        return entry

    def insert_many(
        self, session: Session, channel_id: int, posts: Sequence[OutgoingPost]
    ) -> list[tuple[int, dt.datetime]]:
        """Store each post once, in the caller's transaction."""
        entries = [(post.idempotency_key, post.text, post.link_url) for post in posts]
        return _store(session, channel_id, entries)

    def find(self, key: str) -> tuple[int, dt.datetime] | None:
        """The entry stored under this key, if any."""
        with self._factory.begin() as session:
            row = session.execute(
                select(OutboxEntry.id, OutboxEntry.published_at).where(
                    OutboxEntry.idempotency_key == key
                )
            ).first()
        return None if row is None else (row[0], row[1])


_ENTRIES = table(OutboxEntry)
_INSERT_INTO = (
    "INSERT INTO outbox_entries (channel_id, idempotency_key, text, link_url, published_at) "
)
_ON_CONFLICT = (
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key, id, published_at"
)
_RETURNED = (_ENTRIES.c.idempotency_key, _ENTRIES.c.id, column("published_at", UTCDateTime()))

# PostgreSQL: the rows as three arrays, a handful of parameters whatever their number (psycopg
# parses a statement with more than 50 parameters afresh on every execution).
_INSERT_ENTRIES_PG = text(
    _INSERT_INTO  # noqa: S608 (constant text only)
    + "SELECT CAST(:channel_id AS integer), e.key, e.body, e.link_url,"
    " statement_timestamp() FROM unnest(CAST(:keys AS varchar[]), CAST(:bodies AS text[]),"
    " CAST(:link_urls AS varchar[])) AS e (key, body, link_url)" + _ON_CONFLICT
).columns(*_RETURNED)


@functools.lru_cache(maxsize=64)
def _insert_entries_sqlite(rows: int) -> str:
    """The same for SQLite 3.35+, as driver SQL: a VALUES list of `?` parameters (channel id,
    key, text, link per row), one string per row count. Run with exec_driver_sql: SQLAlchemy's
    per-execution work on 150 parameters cost more than the insert itself (see
    completion._complete_published_sqlite)."""
    clock = str(database_clock().compile(dialect=sqlite.dialect()))
    values = ", ".join([f"(?, ?, ?, ?, {clock})"] * rows)
    return _INSERT_INTO + "VALUES " + values + _ON_CONFLICT


def _store(
    session: Session, channel_id: int, entries: Sequence[tuple[str, str, str | None]]
) -> list[tuple[int, dt.datetime]]:
    """Insert (key, text, link) entries; (id, published_at) for each, in order.

    One INSERT ... ON CONFLICT (key) DO NOTHING RETURNING for all of them, published at the
    database clock. A key already stored keeps its first entry, which is returned instead: the
    unique key makes a repeat a no-op, also against a concurrent insert of the same key.
    """
    if not entries:
        return []
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        keys, bodies, links = (list(column) for column in zip(*entries, strict=True))
        params = {"channel_id": channel_id, "keys": keys, "bodies": bodies, "link_urls": links}
        rows: list[tuple[Any, ...]] = [
            tuple(row) for row in session.execute(_INSERT_ENTRIES_PG, params)
        ]
    else:
        parameters: list[object] = []
        for key, body, link_url in entries:
            parameters += (channel_id, key, body, link_url)
        loaded = loaded_time(dialect)
        session.flush()  # as session.execute would, before the driver-level statement
        rows = [
            (key, entry_id, loaded(at))
            for key, entry_id, at in session.connection()
            .exec_driver_sql(_insert_entries_sqlite(len(entries)), tuple(parameters))
            .all()
        ]
    stored: dict[str, tuple[int, dt.datetime]] = {key: (entry_id, at) for key, entry_id, at in rows}
    repeats = [key for key, _body, _link in entries if key not in stored]
    if repeats:
        stored.update(
            (key, (entry_id, at))
            for key, entry_id, at in session.execute(
                select(_ENTRIES.c.idempotency_key, _ENTRIES.c.id, _ENTRIES.c.published_at).where(
                    _ENTRIES.c.idempotency_key.in_(repeats)
                )
            )
        )
    return [stored[key] for key, _body, _link in entries]


class _NoNetwork(requests.Session):
    """The HTTP session of an adapter that publishes in this database: it refuses every call."""

    def request(self, *_args: Any, **_kwargs: Any) -> requests.Response:
        raise RuntimeError("a channel that lives in the app's database makes no HTTP calls")


@dataclass
class AdapterFactory:
    """Builds adapters for claimed deliveries; one guarded HTTP session per adapter."""

    settings: Settings
    credentials: CredentialBox
    factory: sessionmaker[Session]
    # Connection pools each built adapter holds, closed by release() when its pass ends.
    _held: dict[int, list[Any]] = field(default_factory=dict)
    # Adapters of channels that live in this database, kept from pass to pass: they hold no
    # connection and no credentials, and the engine builds them inside its claim transaction.
    _in_database: dict[int, ChannelAdapter] = field(default_factory=dict)

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
        kind = adapter_class(channel.kind)
        if not kind.capabilities.publishes_in_app_database:
            return self._build(channel)
        found = self._in_database.get(channel.id)
        if found is None or type(found) is not kind:
            found = self._in_database[channel.id] = self._build(channel, network=False)
        return found

    def _build(self, channel: ChannelSnapshot, network: bool = True) -> ChannelAdapter:
        if network:
            # Imported here: a worker that only publishes in its own database never loads it.
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
        timeout = self.settings.publishing.request_timeout_seconds
        base_url = (channel.base_url or self._default_base_url(channel.kind)).rstrip("/")
        if network:
            allow = netguard.parse_allow_list(self.settings.network.allow_private_hosts)
            http: requests.Session = netguard.guarded_session(allow, timeout=timeout)
        else:
            http = _NoNetwork()
        context = ChannelContext(
            kind=channel.kind,
            base_url=base_url,
            credentials=credentials,
            http=http,
            timeout=timeout,
            on_credentials_change=self._persist(channel.id),
            allow_private_hosts=tuple(self.settings.network.allow_private_hosts),
            extra={
                "channel_id": channel.id,
                "outbox_store": SqlOutboxStore(self.factory),
                "timeline_url": f"{self.settings.app.base_url.rstrip('/')}/timeline",
            },
        )
        held: list[Any] = [context.http] if network else []
        if network and channel.kind == "bluesky":
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
        if held:
            self._held[id(adapter)] = held
        return adapter
