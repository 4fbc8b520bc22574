"""A scripted stand-in for a network, for tests: records every call, plays scripted outcomes."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from campaign.channels.base import (
    Capabilities,
    ChannelContext,
    MetricsResult,
    NotFoundOnPlatform,
    OutgoingPost,
    PermanentError,
    PlatformMetrics,
    PublishedPost,
    PublishedRef,
)

Step = Callable[[OutgoingPost], PublishedPost | None]


@dataclass
class FakeNetwork:
    """Shared by every FakeAdapter built for a test: the posts 'on the platform' and the calls.

    `publish_script` and `lookup_script` hold exceptions to raise (or callables) for the next
    calls, in order; when empty, publishing stores the post (once per key) and lookups find it.
    `metrics` holds each post's figures by external id; a post the network never stored, or
    one in `deleted`, is not found. `metrics_script` holds exceptions for the next reads.
    """

    posts: dict[str, PublishedPost] = field(default_factory=dict)
    publish_calls: list[OutgoingPost] = field(default_factory=list)
    lookup_calls: list[OutgoingPost] = field(default_factory=list)
    publish_script: list[BaseException | Step] = field(default_factory=list)
    lookup_script: list[BaseException | Step] = field(default_factory=list)
    metrics: dict[str, PlatformMetrics] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    metrics_calls: list[list[PublishedRef]] = field(default_factory=list)
    metrics_script: list[BaseException] = field(default_factory=list)
    # A reply's external id -> the external id it answers (thread parts).
    replies: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def store(self, post: OutgoingPost) -> PublishedPost:
        """Store the post once per key; a reply only to a post this network holds, as a real
        one refuses a reply to a post it does not have."""
        if post.reply_to is not None and post.idempotency_key not in self.posts:
            held = {p.external_id for p in self.posts.values()}
            if post.reply_to.parent_id not in held or post.reply_to.root_id not in held:
                raise PermanentError("The post this reply answers does not exist.", status=400)
        elif post.part > 0 and post.reply_to is None:
            raise PermanentError("A later part of a thread came without the post it answers.")
        if post.idempotency_key not in self.posts:
            n = next(self._ids)
            self.posts[post.idempotency_key] = PublishedPost(
                external_id=f"fake-{n}",
                url=f"https://fake.example/{n}",
                published_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )
        stored = self.posts[post.idempotency_key]
        if post.reply_to is not None:
            self.replies[stored.external_id] = post.reply_to.parent_id
        return stored


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
    metrics_batch_size: ClassVar[int] = 2

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

    def fetch_metrics(self, posts: Sequence[PublishedRef]) -> dict[str, MetricsResult]:
        """Record the call, then raise the next scripted error or report the stored figures."""
        self.network.metrics_calls.append(list(posts))
        if self.network.metrics_script:
            raise self.network.metrics_script.pop(0)
        stored = {post.external_id for post in self.network.posts.values()}
        results: dict[str, MetricsResult] = {}
        for ref in posts:
            known = ref.external_id in stored or ref.external_id in self.network.metrics
            if not known or ref.external_id in self.network.deleted:
                results[ref.external_id] = NotFoundOnPlatform("The fake network has no such post.")
            else:
                results[ref.external_id] = self.network.metrics.get(
                    ref.external_id, PlatformMetrics()
                )
        return results
