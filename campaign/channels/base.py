"""The one protocol every channel adapter speaks, its dataclasses and its outcome errors.

Adapters are the network edge: they take and return plain dataclasses, never ORM objects, and
they never touch the database. Each error class below maps to one outcome class of the
publishing engine (campaign.services.publishing), which decides what happens next. The one
exception is a channel whose posts are rows in the app's own database (the outbox): it says so
in its capabilities and also speaks TransactionalPublisher, writing through a store the runtime
hands it, inside the engine's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import requests

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

LengthCounting = Literal["weighted", "characters", "graphemes", "none"]


@dataclass(frozen=True)
class Capabilities:
    """What a network can do; the engine and the drafting checks read these, never the kind."""

    # How text length is counted and the limit: X "weighted" (URLs 23, CJK and emoji 2),
    # Mastodon "characters" (URLs 23), Bluesky "graphemes" (URLs at full length).
    length_counting: LengthCounting
    max_length: int | None
    url_length: int | None
    # The platform drops a repeat of our idempotency key for this long (None: it does not).
    idempotency_window: dt.timedelta | None
    # The adapter can find a post after an unknown outcome (by id, key or content).
    supports_lookup: bool
    # Engagement figures this network can report.
    metrics: tuple[str, ...]
    # Staff post by hand; the engine never dispatches these deliveries.
    manual: bool = False
    # A per-post price to show before scheduling (X's pay-per-use), in US dollars.
    cost_per_post_usd: float | None = None
    cost_per_link_post_usd: float | None = None
    # Posts are rows in the app's own database: the adapter is a TransactionalPublisher, and the
    # engine publishes a batch and records its completion in one transaction (all or nothing),
    # so there is no call outside a transaction and no unknown outcome.
    publishes_in_app_database: bool = False


@dataclass(frozen=True)
class ReplyTarget:
    """The post a thread part replies to (its parent, the part before it) and the thread's
    first post (its root), as the platform identified them when they were published.

    `*_ref` is what a network needs besides the id (Bluesky's cid; None elsewhere).
    """

    parent_id: str
    root_id: str
    parent_ref: str | None = None
    root_ref: str | None = None
    parent_url: str | None = None


@dataclass(frozen=True)
class OutgoingPost:
    """One delivery as the adapter sees it: final text, link, and the stable idempotency key."""

    delivery_id: int
    idempotency_key: str
    text: str
    link_url: str | None
    due_at: dt.datetime
    # The platform's id from an earlier attempt, when one is known (for lookups).
    external_id: str | None = None
    # When the first attempt began; lookups search from here.
    first_attempt_at: dt.datetime | None = None
    # A thread part after the head: 1, 2, ... and the post it replies to (None for part 0).
    part: int = 0
    reply_to: ReplyTarget | None = None


@dataclass(frozen=True)
class PublishedPost:
    """What the platform says it stored."""

    external_id: str
    url: str | None = None
    published_at: dt.datetime | None = None
    # What a reply to this post needs besides its id (Bluesky's cid), kept on the delivery.
    reply_ref: str | None = None


@dataclass
class ChannelContext:
    """Everything an adapter needs, given in its constructor.

    `http` is the guarded requests session (SSRF checks at connect time, no proxies from the
    environment). `on_credentials_change` is called at once, with the whole new credential
    mapping, whenever the adapter is handed new tokens (a rotated single-use refresh token, a new
    Bluesky session): the caller persists it encrypted in its own short transaction before the
    adapter goes on, so a crash never loses the only valid token.
    """

    kind: str
    base_url: str
    credentials: dict[str, Any]
    http: requests.Session
    timeout: float = 10.0
    on_credentials_change: Callable[[dict[str, Any]], None] = field(default=lambda _c: None)
    # Hosts or CIDRs that may be loopback or private (config [network] allow_private_hosts).
    allow_private_hosts: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedRef:
    """A post the platform said it stored: what a metrics read needs to find it again."""

    delivery_id: int
    external_id: str
    published_at: dt.datetime | None = None


@dataclass(frozen=True)
class PlatformMetrics:
    """The figures a platform reports for one post at the moment it is asked.

    None means "this network does not report it" (or left it out of this answer), never 0:
    a zero is a real zero the platform gave.
    """

    impressions: int | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    quotes: int | None = None
    bookmarks: int | None = None
    link_clicks: int | None = None
    profile_clicks: int | None = None


@dataclass(frozen=True)
class NotFoundOnPlatform:
    """The platform has no such post (deleted, hidden, or never stored despite a success)."""

    reason: str


# Per post: its figures, or the signal that the platform cannot find it.
MetricsResult = PlatformMetrics | NotFoundOnPlatform


def metric_count(value: Any) -> int | None:
    """A count from a payload: a non-negative int (or digit string), else None, never a crash."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class ChannelError(Exception):
    """Base class; the message is shown to staff, so it must be plain words, never a token."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RetryableError(ChannelError):
    """Nothing was published (429, refused before sending): retry later with backoff."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    """The platform refused the post for good (validation, not permitted): do not retry."""


class ReconnectNeeded(PermanentError):
    """The credentials are revoked, expired or unreadable: the channel needs reconnecting."""


class DuplicateRejected(ChannelError):
    """The platform says it already has this post: it may be ours, so reconcile, never retry."""


class UnknownOutcome(ChannelError):
    """The request may have been accepted (5xx, timeout or reset after sending)."""


class LookupUnavailable(ChannelError):
    """The platform cannot be asked right now (or at all) whether the post exists."""


def reply_target(post: OutgoingPost) -> ReplyTarget | None:
    """What a thread part replies to; None for a post of its own (part 0).

    A later part without a published post to answer is refused, never sent on its own (the
    engine schedules a part only once the part before it is published, so this is a guard).
    """
    if post.part == 0:
        return None
    if post.reply_to is None:
        raise PermanentError(
            "This is a later part of a thread, but the post it replies to is not published;"
            " it was not sent on its own."
        )
    return post.reply_to


class ChannelAdapter(Protocol):
    """Publish one post; optionally find it again after an unknown outcome."""

    capabilities: ClassVar[Capabilities]

    def __init__(self, context: ChannelContext) -> None: ...

    def publish(self, post: OutgoingPost) -> PublishedPost:
        """Publish the post once, sending its idempotency key where the platform takes one."""
        ...

    def lookup(self, post: OutgoingPost) -> PublishedPost | None:
        """The published post if the platform has it, None if it surely does not.

        Raises LookupUnavailable when the platform cannot be asked (or the adapter cannot
        search), so the engine sends the delivery to a person instead of guessing.
        """
        ...


class MetricsReader(Protocol):
    """An adapter that can read engagement figures back (optional: manual channels cannot).

    `metrics_batch_size` is the most posts one call may ask for (X 100, Bluesky 25, Mastodon
    1); the collector hands `fetch_metrics` at most that many, so a rate limit part-way through
    a channel loses nothing already read.
    """

    metrics_batch_size: ClassVar[int]

    def fetch_metrics(self, posts: Sequence[PublishedRef]) -> dict[str, MetricsResult]:
        """Each post's figures, keyed by external id; NotFoundOnPlatform for a missing post.

        A failure of the whole call raises: RetryableError (429 with retry_after, 5xx,
        timeouts), ReconnectNeeded (credentials refused) or PermanentError.
        """
        ...


def reads_metrics(adapter: object) -> bool:
    """Whether this adapter can read metrics (its capabilities list some, and it has the call)."""
    capabilities: Capabilities | None = getattr(adapter, "capabilities", None)
    return (
        capabilities is not None
        and bool(capabilities.metrics)
        and not capabilities.manual
        and callable(getattr(adapter, "fetch_metrics", None))
    )


class TransactionalPublisher(ChannelAdapter, Protocol):
    """An adapter whose publishing is a write to the app's own database (the outbox).

    `publish_within` stores the posts inside the caller's open transaction, so that they commit,
    or roll back, together with their fenced completion: exactly once holds by atomicity.
    """

    def publish_within(
        self, session: Session, posts: Sequence[OutgoingPost]
    ) -> list[PublishedPost]:
        """Store each post once, published at the database clock; one result per post, in order.

        A repeat of a key returns what was stored the first time, never a second entry.
        """
        ...
