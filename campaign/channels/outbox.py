"""The outbox: publishes into the app's own timeline, so everything works with no account.

Its posts are rows in the app's own database, so the engine publishes a whole batch and records
its completion in one transaction (publish_within); publish and lookup serve everything else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from campaign.channels.base import (
    Capabilities,
    ChannelContext,
    MetricsResult,
    NotFoundOnPlatform,
    OutgoingPost,
    PlatformMetrics,
    PublishedPost,
    PublishedRef,
    RetryableError,
    reply_target,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class OutboxStore(Protocol):
    """Where outbox posts live; a repeat of a key returns the first entry, never a second one."""

    def insert(
        self, channel_id: int, key: str, text: str, link_url: str | None
    ) -> tuple[int, dt.datetime]: ...

    def find(self, key: str) -> tuple[int, dt.datetime] | None: ...

    def insert_many(
        self, session: Session, channel_id: int, posts: Sequence[OutgoingPost]
    ) -> list[tuple[int, dt.datetime]]: ...


class OutboxMetricsStore(Protocol):
    """The figures stored beside outbox entries (the demo fills them in)."""

    def read_metrics(self, entry_ids: Sequence[int]) -> dict[int, PlatformMetrics | None]:
        """Figures per entry id; None, or no key, for an entry deleted or hidden."""
        ...


class OutboxAdapter:
    """Publishes to the timeline page; idempotent by key and always able to look itself up."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        length_counting="characters",
        max_length=5000,
        url_length=None,
        idempotency_window=dt.timedelta(days=36500),
        supports_lookup=True,
        metrics=("impressions", "likes", "reposts", "replies"),
        publishes_in_app_database=True,
    )
    metrics_batch_size: ClassVar[int] = 500

    def __init__(self, context: ChannelContext) -> None:
        store = context.extra.get("outbox_store")
        if store is None:
            raise RetryableError("the outbox store is not available")
        self._store: OutboxStore = store
        self._channel_id = int(context.extra["channel_id"])
        self._timeline_url = str(context.extra.get("timeline_url", "/timeline"))
        self._metrics: OutboxMetricsStore | None = context.extra.get("outbox_metrics_store")

    def _published(self, entry_id: int, at: dt.datetime) -> PublishedPost:
        return PublishedPost(
            external_id=f"outbox-{entry_id}",
            url=f"{self._timeline_url}#entry-{entry_id}",
            published_at=at,
        )

    def publish(self, post: OutgoingPost) -> PublishedPost:
        """Add the post to the timeline once; a repeat of its key returns the first entry."""
        reply_target(post)  # a thread part only ever follows its published parent
        entry_id, at = self._store.insert(
            self._channel_id, post.idempotency_key, post.text, post.link_url
        )
        return self._published(entry_id, at)

    def publish_within(
        self, session: Session, posts: Sequence[OutgoingPost]
    ) -> list[PublishedPost]:
        """Add the posts in the caller's transaction; a repeat of a key returns the first entry.

        A thread part is a reply to the entry its parent made: the timeline shows it as one
        (deliveries.list_timeline), so nothing more is stored for it here.
        """
        for post in posts:
            reply_target(post)
        entries = self._store.insert_many(session, self._channel_id, posts)
        return [self._published(entry_id, at) for entry_id, at in entries]

    def lookup(self, post: OutgoingPost) -> PublishedPost | None:
        """The timeline entry with this delivery's key, if there is one."""
        found = self._store.find(post.idempotency_key)
        return None if found is None else self._published(*found)

    def fetch_metrics(self, posts: Sequence[PublishedRef]) -> dict[str, MetricsResult]:
        """The figures stored for each timeline entry; a deleted or hidden entry is not found."""
        if self._metrics is None:
            raise RetryableError("the outbox metrics store is not available")
        entry_ids = {ref.external_id: _entry_id(ref.external_id) for ref in posts}
        stored = self._metrics.read_metrics([i for i in entry_ids.values() if i is not None])
        missing = NotFoundOnPlatform("The timeline entry was deleted or hidden.")
        results: dict[str, MetricsResult] = {}
        for external_id, entry_id in entry_ids.items():
            figures = stored.get(entry_id) if entry_id is not None else None
            results[external_id] = figures if figures is not None else missing
        return results


def _entry_id(external_id: str) -> int | None:
    """The entry id in an outbox external id ("outbox-12"), None for anything else."""
    prefix, _, number = external_id.partition("-")
    return int(number) if prefix == "outbox" and number.isdigit() else None
