"""The manual channel: the app prepares the text and link; a person posts it and says so."""

from __future__ import annotations

from typing import ClassVar

from campaign.channels.base import (
    Capabilities,
    ChannelContext,
    LookupUnavailable,
    OutgoingPost,
    PermanentError,
    PublishedPost,
)


class ManualAdapter:
    """Never publishes by itself: the engine leaves manual deliveries to staff."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        length_counting="none",
        max_length=None,
        url_length=None,
        idempotency_window=None,
        supports_lookup=False,
        metrics=(),
        manual=True,
    )

    def __init__(self, context: ChannelContext) -> None:
        self._context = context

    def publish(self, post: OutgoingPost) -> PublishedPost:
        """Refuse: a person posts manual deliveries and marks them posted."""
        raise PermanentError("manual channels are posted by hand; mark the post as posted")

    def lookup(self, post: OutgoingPost) -> PublishedPost | None:
        """Refuse: only the person who posted it knows."""
        raise LookupUnavailable("manual channels cannot be checked automatically")
