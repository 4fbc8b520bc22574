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
    OutgoingPost,
    PublishedPost,
    RetryableError,
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

    def __init__(self, context: ChannelContext) -> None:
        store = context.extra.get("outbox_store")
        if store is None:
            raise RetryableError("the outbox store is not available")
        self._store: OutboxStore = store
        self._channel_id = int(context.extra["channel_id"])
        self._timeline_url = str(context.extra.get("timeline_url", "/timeline"))

    def _published(self, entry_id: int, at: dt.datetime) -> PublishedPost:
        return PublishedPost(
            external_id=f"outbox-{entry_id}",
            url=f"{self._timeline_url}#entry-{entry_id}",
            published_at=at,
        )

    def publish(self, post: OutgoingPost) -> PublishedPost:
        """Add the post to the timeline once; a repeat of its key returns the first entry."""
        entry_id, at = self._store.insert(
            self._channel_id, post.idempotency_key, post.text, post.link_url
        )
        return self._published(entry_id, at)

    def publish_within(
        self, session: Session, posts: Sequence[OutgoingPost]
    ) -> list[PublishedPost]:
        """Add the posts in the caller's transaction; a repeat of a key returns the first entry."""
        entries = self._store.insert_many(session, self._channel_id, posts)
        return [self._published(entry_id, at) for entry_id, at in entries]

    def lookup(self, post: OutgoingPost) -> PublishedPost | None:
        """The timeline entry with this delivery's key, if there is one."""
        found = self._store.find(post.idempotency_key)
        return None if found is None else self._published(*found)
