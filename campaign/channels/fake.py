"""A scripted stand-in for a network, for tests: records every call, plays scripted outcomes."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from campaign.channels.base import Capabilities, ChannelContext, OutgoingPost, PublishedPost

Step = Callable[[OutgoingPost], PublishedPost | None]


@dataclass
class FakeNetwork:
    """Shared by every FakeAdapter built for a test: the posts 'on the platform' and the calls.

    `publish_script` and `lookup_script` hold exceptions to raise (or callables) for the next
    calls, in order; when empty, publishing stores the post (once per key) and lookups find it.
    """

    posts: dict[str, PublishedPost] = field(default_factory=dict)
    publish_calls: list[OutgoingPost] = field(default_factory=list)
    lookup_calls: list[OutgoingPost] = field(default_factory=list)
    publish_script: list[BaseException | Step] = field(default_factory=list)
    lookup_script: list[BaseException | Step] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def store(self, post: OutgoingPost) -> PublishedPost:
        if post.idempotency_key not in self.posts:
            n = next(self._ids)
            self.posts[post.idempotency_key] = PublishedPost(
                external_id=f"fake-{n}",
                url=f"https://fake.example/{n}",
                published_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )
        return self.posts[post.idempotency_key]


class FakeAdapter:
    """Publishes into a FakeNetwork; capabilities can be swapped per test."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        length_counting="characters",
        max_length=500,
        url_length=23,
        idempotency_window=None,
        supports_lookup=True,
        metrics=("likes",),
    )

    def __init__(self, context: ChannelContext) -> None:
        self.network: FakeNetwork = context.extra["network"]

    def publish(self, post: OutgoingPost) -> PublishedPost:
        """Record the call, then play the next scripted step or store the post."""
        self.network.publish_calls.append(post)
        if self.network.publish_script:
            step = self.network.publish_script.pop(0)
            if isinstance(step, BaseException):
                raise step
            result = step(post)
            if result is not None:
                return result
        return self.network.store(post)

    def lookup(self, post: OutgoingPost) -> PublishedPost | None:
        """Record the call, then play the next scripted step or report what is stored."""
        self.network.lookup_calls.append(post)
        if self.network.lookup_script:
            step = self.network.lookup_script.pop(0)
            if isinstance(step, BaseException):
                raise step
            return step(post)
        return self.network.posts.get(post.idempotency_key)
