"""Where the collector's adapters come from, and the outbox's figures (read like a platform's).

The outbox lives in the app's own database, so its "platform" figures are rows beside its
entries (`outbox_entry_metrics`), filled by the demo; the collector reads them through the
same adapter call as any network's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from campaign.channels import adapter_class
from campaign.channels.base import ChannelAdapter, ChannelContext, PlatformMetrics
from campaign.models import OutboxEntry
from campaign.models.metrics import METRIC_FIELDS, OutboxEntryMetrics
from campaign.services.channel_runtime import AdapterFactory, SqlOutboxStore
from campaign.services.publishing import ChannelSnapshot


def dialect_insert(session: Session, model: type[Any]) -> Any:
    """The dialect's own INSERT construct, which knows ON CONFLICT."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


class _NoHttp(requests.Session):
    """The HTTP session of an adapter that reads this database: it refuses every call."""

    def request(self, *_args: Any, **_kwargs: Any) -> requests.Response:
        raise RuntimeError("a channel that lives in the app's database makes no HTTP calls")


@dataclass
class MetricsAdapters:
    """Builds adapters for the collector: network ones as publishing does, the outbox with its
    figures store."""

    adapters: AdapterFactory

    def build(self, channel: ChannelSnapshot) -> ChannelAdapter:
        """The adapter that reads this channel's figures."""
        kind = adapter_class(channel.kind)
        if not kind.capabilities.publishes_in_app_database:
            return self.adapters.build(channel)
        factory = self.adapters.factory
        base_url = self.adapters.settings.app.base_url.rstrip("/")
        context = ChannelContext(
            kind=channel.kind,
            base_url=base_url,
            credentials={},
            http=_NoHttp(),
            extra={
                "channel_id": channel.id,
                "outbox_store": SqlOutboxStore(factory),
                "outbox_metrics_store": SqlOutboxMetrics(factory),
                "timeline_url": f"{base_url}/timeline",
            },
        )
        return kind(context)

    def release(self, adapter: ChannelAdapter) -> None:
        """Close what the adapter holds (network adapters' connection pools)."""
        self.adapters.release(adapter)


class SqlOutboxMetrics:
    """Reads the figures stored beside outbox entries, in its own short transaction."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def read_metrics(self, entry_ids: Sequence[int]) -> dict[int, PlatformMetrics | None]:
        """Figures per existing entry; None for a hidden one; deleted ones are left out."""
        if not entry_ids:
            return {}
        with self._factory.begin() as session:
            rows = session.execute(
                select(OutboxEntry.id, OutboxEntryMetrics)
                .outerjoin(OutboxEntryMetrics, OutboxEntryMetrics.entry_id == OutboxEntry.id)
                .where(OutboxEntry.id.in_(list(entry_ids)))
            ).all()
        found: dict[int, PlatformMetrics | None] = {}
        for entry_id, stored in rows:
            if stored is None:
                found[entry_id] = PlatformMetrics()
            elif stored.hidden_at is not None:
                found[entry_id] = None
            else:
                found[entry_id] = PlatformMetrics(
                    **{name: getattr(stored, name) for name in METRIC_FIELDS}
                )
        return found


def set_outbox_metrics(
    session: Session, entry_id: int, figures: PlatformMetrics, now: dt.datetime
) -> None:
    """Store (replace) an outbox entry's figures, as the demo does; flushes, never commits."""
    values: dict[str, Any] = {name: getattr(figures, name) for name in METRIC_FIELDS}
    values["updated_at"] = now
    stmt = dialect_insert(session, OutboxEntryMetrics).values(entry_id=entry_id, **values)
    session.execute(
        stmt.on_conflict_do_update(index_elements=[OutboxEntryMetrics.entry_id], set_=values)
    )


def hide_outbox_entry(session: Session, entry_id: int, now: dt.datetime) -> None:
    """Mark an outbox entry as removed from the timeline, so metrics find it missing."""
    values = {"hidden_at": now, "updated_at": now}
    stmt = dialect_insert(session, OutboxEntryMetrics).values(entry_id=entry_id, **values)
    session.execute(
        stmt.on_conflict_do_update(index_elements=[OutboxEntryMetrics.entry_id], set_=values)
    )
