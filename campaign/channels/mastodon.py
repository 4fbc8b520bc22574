"""Mastodon adapter (Mastodon.py): publish a status with its idempotency key, find it again.

Mastodon keeps an `Idempotency-Key` for one hour, so a retry inside that hour cannot duplicate;
after a lost response the engine asks `lookup`, which searches by id or by the account's recent
statuses. Every failure is mapped to one outcome class of `campaign.channels.base`.
"""

from __future__ import annotations

import datetime as dt
import html.parser
import re
import socket
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import requests
import urllib3.exceptions
from mastodon import Mastodon
from mastodon._url_regex import url_regex
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonNetworkError,
    MastodonRatelimitError,
)

from campaign.channels.base import (
    Capabilities,
    ChannelContext,
    ChannelError,
    LookupUnavailable,
    MetricsResult,
    NotFoundOnPlatform,
    OutgoingPost,
    PermanentError,
    PlatformMetrics,
    PublishedPost,
    PublishedRef,
    ReconnectNeeded,
    RetryableError,
    UnknownOutcome,
    metric_count,
    reply_target,
)

DEFAULT_MAX_CHARACTERS = 500
DEFAULT_URL_LENGTH = 23
# Our own statuses newer than this before the first attempt are candidates: clocks differ.
LOOKUP_SLACK = dt.timedelta(minutes=2)
LOOKUP_PAGE_SIZE = 40
LOOKUP_PAGES = 2
# Stands for any link when comparing texts: Mastodon shows links shortened, we have them whole.
_LINK = "\ue000"
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_LINK_TAIL = re.compile(_LINK + r"\S*")
# Mastodon shows a remote mention `@user@host` as `@user` (the same pattern Mastodon.py counts).
_REMOTE_MENTION = re.compile(r"(^|[^/\w])@([a-z0-9_]+)@[a-z0-9.\-]+[a-z0-9]+", re.IGNORECASE)

NetworkFailure = Literal["blocked", "invalid", "not_sent", "maybe_sent"]


@dataclass(frozen=True)
class InstanceLimits:
    """The instance's status length limit and what each URL counts as."""

    max_characters: int = DEFAULT_MAX_CHARACTERS
    characters_reserved_per_url: int = DEFAULT_URL_LENGTH


def mastodon_length(text: str, characters_reserved_per_url: int = DEFAULT_URL_LENGTH) -> int:
    """Count like Mastodon: graphemes, each URL as the reserved length, `@u@host` as `@u`."""
    # Mastodon.py hard-codes 23 per URL; replacing URLs first makes the reserved length ours,
    # and its own pass then only folds remote mentions and counts graphemes.
    countable = url_regex.sub(lambda m: m.group(2) + "x" * characters_reserved_per_url, text)
    return int(Mastodon.get_status_length(countable))


def fetch_instance_limits(http: requests.Session, base_url: str, timeout: float) -> InstanceLimits:
    """The instance's limits from /api/v2/instance, else /api/v1/instance, else the defaults."""
    base = base_url.rstrip("/")
    for path in ("/api/v2/instance", "/api/v1/instance"):
        try:
            response = http.get(base + path, timeout=timeout)
        except requests.RequestException as exc:
            raise _limits_network_error(exc) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(
                f"The Mastodon instance could not answer (HTTP {response.status_code}).",
                status=response.status_code,
            )
        if not response.ok:
            continue  # An older instance has no v2; a v1-less one gets the defaults.
        limits = _limits_from(response)
        if limits is not None:
            return limits
    return InstanceLimits()


class MastodonAdapter:
    """Publishes public statuses to one Mastodon account and finds them again."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        length_counting="characters",
        max_length=DEFAULT_MAX_CHARACTERS,
        url_length=DEFAULT_URL_LENGTH,
        idempotency_window=dt.timedelta(hours=1),
        supports_lookup=True,
        metrics=("likes", "reposts", "replies", "quotes"),
    )
    # One status per call: the multi-id endpoint needs Mastodon 4.3 and silently drops ids.
    metrics_batch_size: ClassVar[int] = 1

    def __init__(self, context: ChannelContext) -> None:
        token = context.credentials.get("access_token")
        if not isinstance(token, str) or not token:
            raise ReconnectNeeded("This Mastodon account has no access token: reconnect it.")
        self._secrets = tuple(
            value
            for key in ("access_token", "client_secret")
            if isinstance(value := context.credentials.get(key), str) and value
        )
        self._client = Mastodon(
            api_base_url=context.base_url,
            session=context.http,
            ratelimit_method="throw",  # "wait" sleeps in the worker and re-sends POSTs
            version_check_mode="none",
            request_timeout=context.timeout,
        )
        # Set after construction: given to the constructor, a token that happens to name an
        # existing file would be read from disk and sent to the instance instead.
        self._client.access_token = token

    def publish(self, post: OutgoingPost) -> PublishedPost:
        """Post the text publicly once, with the delivery's key as the Idempotency-Key header."""
        reply = reply_target(post)
        options: dict[str, Any] = {}
        if reply is not None:
            options["in_reply_to_id"] = reply.parent_id  # a thread part answers the one before
        try:
            status = self._client.status_post(
                post.text, visibility="public", idempotency_key=post.idempotency_key, **options
            )
        except MastodonError as exc:
            raise self._publish_error(exc) from None
        published = _published(status)
        if published is None:
            raise UnknownOutcome("Mastodon answered without a status id; the post may exist.")
        return published

    def lookup(self, post: OutgoingPost) -> PublishedPost | None:
        """Find the status by its id, or among the account's statuses since the first attempt."""
        try:
            if post.external_id:
                return self._lookup_by_id(post.external_id)
            return self._lookup_by_content(post)
        except MastodonError as exc:
            raise self._lookup_error(exc) from None

    def fetch_metrics(self, posts: Sequence[PublishedRef]) -> dict[str, MetricsResult]:
        """Favourites, boosts, replies (and quotes on 4.5+) per status; no impressions."""
        results: dict[str, MetricsResult] = {}
        for ref in posts:
            try:
                status = self._client.status(ref.external_id)
            except MastodonError as exc:
                if _status_of(exc) in (404, 410):
                    results[ref.external_id] = NotFoundOnPlatform(
                        "Mastodon has no such status (deleted, or never stored)."
                    )
                    continue
                raise self._metrics_error(exc) from None
            results[ref.external_id] = _status_metrics(status)
        return results

    def _metrics_error(self, exc: MastodonError) -> ChannelError:
        status = _status_of(exc)
        if isinstance(exc, MastodonRatelimitError):
            return RetryableError(
                "Mastodon's rate limit was reached; metrics will be read later.",
                retry_after=self._retry_after(),
                status=429,
            )
        if status == 401:
            return ReconnectNeeded(
                "Mastodon no longer accepts this account's access: reconnect it.", status=401
            )
        if isinstance(exc, MastodonNetworkError):
            kind = network_failure_kind(exc)
            if kind in ("blocked", "invalid"):
                return _network_error(kind)
            return RetryableError("Mastodon could not be reached to read metrics.")
        if status is None or status >= 500:
            suffix = f" (HTTP {status})" if status is not None else ""
            return RetryableError(f"Mastodon could not answer{suffix}.", status=status)
        detail = self._scrub(_error_text(exc))
        reason = f": {detail}" if detail else ""
        return PermanentError(
            f"Mastodon refused to show the status (HTTP {status}){reason}", status=status
        )

    def _lookup_by_id(self, external_id: str) -> PublishedPost | None:
        try:
            status = self._client.status(external_id)
        except MastodonAPIError as exc:
            if _status_of(exc) == 404:
                return None
            raise
        return _published(status)

    def _lookup_by_content(self, post: OutgoingPost) -> PublishedPost | None:
        since = (post.first_attempt_at or post.due_at) - LOOKUP_SLACK
        account_id = self._client.account_verify_credentials()["id"]
        max_id: Any = None
        for _ in range(LOOKUP_PAGES):
            page = self._client.account_statuses(
                account_id, limit=LOOKUP_PAGE_SIZE, max_id=max_id, exclude_reblogs=True
            )
            for status in page:
                created = _aware(status.get("created_at"))
                if created is not None and created < since:
                    return None  # Newest first: everything further is older still.
                if same_text(post.text, status.get("content") or ""):
                    return _published(status)
            if len(page) < LOOKUP_PAGE_SIZE:
                return None
            max_id = page[-1]["id"]
        raise LookupUnavailable(
            "The account posted too much since the first attempt to check every status."
        )

    def _publish_error(self, exc: MastodonError) -> ChannelError:
        status = _status_of(exc)
        detail = self._scrub(_error_text(exc))
        if isinstance(exc, MastodonRatelimitError):
            if "calculations failed" in str(exc):
                # Raised after a response arrived, even a 2xx one: the post may exist.
                return UnknownOutcome("Mastodon sent an unreadable rate-limit header.")
            return RetryableError(
                "Mastodon's rate limit was reached; the post will be retried.",
                retry_after=self._retry_after(),
                status=429,
            )
        if isinstance(exc, MastodonNetworkError):
            return _network_error(network_failure_kind(exc))
        if isinstance(exc, MastodonIllegalArgumentError):
            return PermanentError("The post could not be sent to Mastodon as written.")
        if status == 401:
            return ReconnectNeeded(
                "Mastodon no longer accepts this account's access: reconnect it.", status=401
            )
        if status is not None and status >= 500:
            return UnknownOutcome(
                f"Mastodon had a server error (HTTP {status}); the post may exist.", status=status
            )
        if status == 404:
            return PermanentError(
                "This server does not offer Mastodon's posting API (HTTP 404).", status=404
            )
        if status is not None and 400 <= status < 500:
            reason = f": {detail}" if detail else ""
            return PermanentError(
                f"Mastodon refused the post (HTTP {status}){reason}", status=status
            )
        # A 2xx Mastodon.py could not parse, or something stranger: it may have been stored.
        return UnknownOutcome("Mastodon's answer could not be read; the post may exist.")

    def _lookup_error(self, exc: MastodonError) -> ChannelError:
        status = _status_of(exc)
        if status == 401:
            return ReconnectNeeded(
                "Mastodon no longer accepts this account's access: reconnect it.", status=401
            )
        if isinstance(exc, MastodonRatelimitError):
            return LookupUnavailable("Mastodon's rate limit was reached; cannot check now.")
        if isinstance(exc, MastodonNetworkError):
            return LookupUnavailable("Mastodon could not be reached to check for the post.")
        suffix = f" (HTTP {status})" if status is not None else ""
        return LookupUnavailable(
            f"Mastodon could not be asked for the post{suffix}.", status=status
        )

    def _retry_after(self) -> float | None:
        # Mastodon.py has already parsed X-RateLimit-Reset (ISO or epoch) and corrected it for
        # the server's Date header; a reset in the past leaves it None.
        reset = self._client.ratelimit_reset
        if reset is None:
            return None
        return max(0.0, float(reset) - time.time())

    def _scrub(self, text: str | None) -> str | None:
        # The instance's error text is shown to staff; never let a credential ride along.
        if text is None:
            return None
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text[:300]


def _status_of(exc: BaseException) -> int | None:
    # Mastodon.py errors carry no status attribute: it is args[1] when there is one.
    if len(exc.args) > 1 and isinstance(exc.args[1], int):
        return exc.args[1]
    return None


def _error_text(exc: BaseException) -> str | None:
    if len(exc.args) > 3 and isinstance(exc.args[3], str) and exc.args[3].strip():
        return exc.args[3].strip()
    return None


def _network_error(kind: NetworkFailure) -> ChannelError:
    if kind == "blocked":
        return PermanentError("The Mastodon instance address is not allowed by the network guard.")
    if kind == "invalid":
        return PermanentError("The Mastodon instance address is not a valid URL.")
    if kind == "not_sent":
        return RetryableError("Mastodon could not be reached; nothing was sent.")
    return UnknownOutcome("The connection to Mastodon failed after sending; the post may exist.")


def _limits_network_error(exc: requests.RequestException) -> ChannelError:
    kind = network_failure_kind(exc)
    if kind in ("blocked", "invalid"):
        return _network_error(kind)
    return RetryableError("The Mastodon instance could not be reached for its limits.")


def _limits_from(response: requests.Response) -> InstanceLimits | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    config = body.get("configuration")
    statuses = config.get("statuses") if isinstance(config, dict) else None
    statuses = statuses if isinstance(statuses, dict) else {}
    # Pleroma and old forks put the limit at the top level of v1 as max_toot_chars.
    max_chars = statuses.get("max_characters", body.get("max_toot_chars"))
    per_url = statuses.get("characters_reserved_per_url")
    return InstanceLimits(
        max_characters=_positive(max_chars, DEFAULT_MAX_CHARACTERS),
        characters_reserved_per_url=_positive(per_url, DEFAULT_URL_LENGTH),
    )


def _positive(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return default


def _aware(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _status_metrics(status: Any) -> PlatformMetrics:
    def count(key: str) -> int | None:
        return metric_count(status.get(key)) if hasattr(status, "get") else None

    # quotes_count exists from Mastodon 4.5 only: absent means "not reported", not zero.
    return PlatformMetrics(
        likes=count("favourites_count"),
        reposts=count("reblogs_count"),
        replies=count("replies_count"),
        quotes=count("quotes_count"),
    )


def _published(status: Any) -> PublishedPost | None:
    status_id = status.get("id") if hasattr(status, "get") else None
    if status_id is None or str(status_id) == "":
        return None
    return PublishedPost(
        external_id=str(status_id),
        url=status.get("url") or status.get("uri"),
        published_at=_aware(status.get("created_at")),
    )


def network_failure_kind(exc: BaseException) -> NetworkFailure:
    """Read a transport failure: our guard refused, bad URL, nothing sent, or maybe sent."""
    chain = _exception_chain(exc)
    if any(_is_guard_block(e) for e in chain):
        return "blocked"
    invalid = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)
    if any(isinstance(e, (*invalid, requests.exceptions.InvalidSchema)) for e in chain):
        return "invalid"
    for e in chain:
        if isinstance(e, requests.ConnectTimeout):
            return "not_sent"
        if isinstance(e, requests.ReadTimeout):
            return "maybe_sent"
    # Refused, unresolvable or failed before the request left (TLS, proxy): nothing was sent.
    before_sending = (
        urllib3.exceptions.ConnectTimeoutError,  # includes NewConnectionError, NameResolutionError
        ConnectionRefusedError,
        socket.gaierror,
        requests.exceptions.SSLError,
        requests.exceptions.ProxyError,
    )
    if any(isinstance(e, before_sending) for e in chain):
        return "not_sent"
    # A reset or a dropped connection may come after the server stored the post.
    return "maybe_sent"


def _exception_chain(exc: BaseException) -> list[BaseException]:
    # requests and urllib3 nest the cause in args and `reason` as well as in __context__.
    seen: list[BaseException] = []
    queue: list[BaseException] = [exc]
    while queue and len(seen) < 20:
        current = queue.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested.extend(current.args)
        queue.extend(n for n in nested if isinstance(n, BaseException))
    return seen


def _is_guard_block(exc: BaseException) -> bool:
    # campaign.netguard raises a RequestException saying "URL not allowed"; matched by message
    # so this module does not depend on it.
    return type(exc).__name__ == "BlockedDestination" or (
        isinstance(exc, requests.RequestException) and "URL not allowed" in str(exc)
    )


def same_text(plain: str, content_html: str) -> bool:
    """Whether Mastodon's HTML `content` shows the plain text we sent (links compared as links)."""
    ours = _comparable(plain)
    return bool(ours) and ours == _comparable(_html_to_text(content_html))


def _comparable(text: str) -> str:
    text = _URL.sub(_LINK, unicodedata.normalize("NFC", text))
    # Mastodon links a URL without trailing punctuation; drop whatever sticks to the link.
    text = _LINK_TAIL.sub(_LINK, text)
    text = _REMOTE_MENTION.sub(r"\1@\2", text)
    return " ".join(text.split())


class _TextExtractor(html.parser.HTMLParser):
    """Status HTML to text: paragraphs and breaks become spaces, links become the marker."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._anchors: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "p"):
            self.parts.append("\n")
        elif tag == "a":
            self._anchors.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append("\n")
        elif tag == "a" and self._anchors:
            shown = "".join(self._anchors.pop())
            # Mentions and hashtags are links too, but show their own text in full.
            self._emit(shown if shown.lstrip().startswith(("@", "#")) else _LINK)

    def handle_data(self, data: str) -> None:
        self._emit(data)

    def _emit(self, text: str) -> None:
        (self._anchors[-1] if self._anchors else self.parts).append(text)


def _html_to_text(content_html: str) -> str:
    parser = _TextExtractor()
    parser.feed(content_html)
    parser.close()
    return "".join(parser.parts)
