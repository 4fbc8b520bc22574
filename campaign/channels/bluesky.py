"""Bluesky through the atproto SDK: app-password sessions, link facets, idempotent record keys.

Bluesky has no idempotency header, so each delivery gets a deterministic record key (a TID
built from its due time and a hash of its idempotency key). A retried create with the same key
is refused by the PDS (as a 500), and `lookup` asks for the record by that key.

Sessions are persisted, never recreated per job: `createSession` is limited to 30 per five
minutes per account. After a password login the SDK moves to the PDS endpoint named in the
account's DID document (for bsky.social accounts, their own `*.host.bsky.network` host) and the
exported session string keeps that endpoint, so a resumed session talks to it, not to the
configured base URL. Fakes should omit `didDoc` from `createSession` to stay on the base URL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import grapheme  # type: ignore[import-untyped, unused-ignore]
import httpx
from atproto_client import Client  # type: ignore[import-untyped, unused-ignore]
from atproto_client import exceptions as sdk  # type: ignore[import-untyped, unused-ignore]
from atproto_client.models import (  # type: ignore[import-untyped, unused-ignore]
    AppBskyFeedGetPosts,
)
from atproto_client.request import Request  # type: ignore[import-untyped, unused-ignore]
from atproto_core.exceptions import AtProtocolError  # type: ignore[import-untyped, unused-ignore]
from atproto_server.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    InvalidTokenError,
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

MAX_GRAPHEMES = 300
MAX_BYTES = 3000
COLLECTION = "app.bsky.feed.post"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# A URL runs to whitespace or a quote/angle bracket; it must not follow a letter ("xhttps://").
_URL = re.compile(r"(?<![\w/])https?://[^\s<>\"“”«»]+", re.IGNORECASE)
_TRAILING = ".,;:!?'’"
_PAIRS = {")": "(", "]": "[", "}": "{"}
# Errors raised by the SDK itself and the httpx errors it lets through unwrapped.
_CLIENT_ERRORS = (AtProtocolError, httpx.HTTPError)


def bluesky_length(text: str) -> int:
    """The length Bluesky counts: grapheme clusters, URLs at full length."""
    return int(grapheme.length(text))


def link_facets(text: str) -> list[dict[str, Any]]:
    """A link facet for every http(s) URL in the text, indexed by UTF-8 byte offsets."""
    facets: list[dict[str, Any]] = []
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        if not url.partition("://")[2]:
            continue
        start = len(text[: match.start()].encode())
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": start + len(url.encode())},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
            }
        )
    return facets


def _trim_url(url: str) -> str:
    # Sentence punctuation after a URL is not part of it, nor is a closing bracket the URL
    # did not open ("(see https://x.example/a)"); Wikipedia-style "/Foo_(bar)" keeps its own.
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _PAIRS and url.count(_PAIRS[last]) < url.count(last)):
            url = url[:-1]
        else:
            break
    return url


def record_key(idempotency_key: str, due_at: dt.datetime) -> str:
    """The TID record key every attempt of one delivery uses: its due second plus a key hash."""
    if due_at.tzinfo is None:
        due_at = due_at.replace(tzinfo=dt.UTC)
    seconds = (due_at - _EPOCH) // dt.timedelta(seconds=1)
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:8], "big")
    # Posts are scheduled to the minute, so two deliveries on one account can share a due
    # second; 20 hash bits in the microseconds plus the 10-bit clock id keep their keys apart.
    micros = seconds * 1_000_000 + (digest >> 10) % 1_000_000
    if not 0 <= micros < 2**53:
        raise ValueError("due time is outside the range a TID can hold")
    value = (micros << 10) | (digest & 0x3FF)
    return "".join(_TID_ALPHABET[(value >> (5 * i)) & 31] for i in range(12, -1, -1))


def _check_length(text: str) -> None:
    count = bluesky_length(text)
    if count > MAX_GRAPHEMES:
        raise PermanentError(
            f"The post is {count} characters long; Bluesky allows {MAX_GRAPHEMES}."
        )
    size = len(text.encode())
    if size > MAX_BYTES:
        raise PermanentError(f"The post is {size} bytes long; Bluesky allows {MAX_BYTES} bytes.")


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _error_name(exc: BaseException) -> str | None:
    content = getattr(getattr(exc, "response", None), "content", None)
    name = getattr(content, "error", None)
    return name if isinstance(name, str) else None


def _detail(exc: BaseException) -> str:
    """The server's error name and message, else the transport's message; never a token."""
    content = getattr(getattr(exc, "response", None), "content", None)
    name, message = getattr(content, "error", None), getattr(content, "message", None)
    if isinstance(name, str):
        return f"{name}: {message}" if message else name
    for link in _chain(exc):
        if str(link):
            return str(link)
    return type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in links:
        links.append(current)
        current = current.__cause__ or current.__context__
    return links


def _blocked(exc: BaseException) -> bool:
    # The guarded transport refuses private and loopback destinations with this message.
    return any("URL not allowed" in str(link) for link in _chain(exc))


def _never_sent(exc: BaseException) -> bool:
    """True when the request surely never left: no connection was made."""
    return any(
        isinstance(link, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        for link in _chain(exc)
    )


def _rate_limited(exc: sdk.RateLimitExceededError) -> RetryableError:
    retry_after = exc.retry_after
    if retry_after is None and exc.reset_at is not None:
        retry_after = max((exc.reset_at - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
    return RetryableError(
        f"Bluesky rate limit reached ({_detail(exc)})", retry_after=retry_after, status=429
    )


def _connect_error(exc: BaseException) -> ChannelError:
    """Map a failure while signing in, when nothing has been posted yet."""
    if _blocked(exc):
        return PermanentError(f"The Bluesky server address is not allowed: {_detail(exc)}")
    if isinstance(exc, sdk.RateLimitExceededError):
        return _rate_limited(exc)
    if isinstance(exc, sdk.UnauthorizedError | sdk.BadRequestError):
        return ReconnectNeeded(
            f"Bluesky refused the handle or app password ({_detail(exc)}); reconnect the channel.",
            status=_status(exc),
        )
    return RetryableError(f"Could not sign in to Bluesky: {_detail(exc)}", status=_status(exc))


def _publish_error(exc: BaseException) -> ChannelError:
    """Map a failure of createRecord to the engine's outcome classes."""
    status = _status(exc)
    if _blocked(exc):
        return PermanentError(f"The Bluesky server address is not allowed: {_detail(exc)}")
    if isinstance(exc, sdk.RateLimitExceededError):
        return _rate_limited(exc)
    if isinstance(exc, sdk.BadRequestError):
        return PermanentError(f"Bluesky refused the post: {_detail(exc)}", status=status)
    if isinstance(exc, sdk.UnauthorizedError):
        return ReconnectNeeded(
            f"Bluesky refused the session ({_detail(exc)}); reconnect the channel.", status=status
        )
    if status is None and _never_sent(exc):
        return RetryableError(f"Could not reach Bluesky: {_detail(exc)}")
    if isinstance(exc, sdk.RequestException) and status is not None and status < 500:
        return PermanentError(f"Bluesky refused the post: {_detail(exc)}", status=status)
    # 5xx (a real PDS answers a repeated record key with a 500), 409/413/502, timeouts after
    # sending, dropped connections and unreadable 2xx bodies: the post may exist.
    return UnknownOutcome(
        f"Bluesky's answer was lost or unclear ({_detail(exc)}); check with getRecord.",
        status=status,
    )


def _metrics_error(exc: BaseException) -> ChannelError:
    """Map a failure of getPosts: reading changes nothing, so unclear answers are retried."""
    status = _status(exc)
    if _blocked(exc):
        return PermanentError(f"The Bluesky server address is not allowed: {_detail(exc)}")
    if isinstance(exc, sdk.RateLimitExceededError):
        return _rate_limited(exc)
    if isinstance(exc, sdk.UnauthorizedError):
        return ReconnectNeeded(
            f"Bluesky refused the session ({_detail(exc)}); reconnect the channel.", status=status
        )
    if isinstance(exc, sdk.BadRequestError):
        return PermanentError(f"Bluesky refused the metrics request: {_detail(exc)}", status=status)
    return RetryableError(f"Could not read metrics from Bluesky: {_detail(exc)}", status=status)


def _post_view_metrics(view: dict[str, Any]) -> PlatformMetrics:
    # No impressions or clicks on Bluesky; a count left out of the answer stays None.
    return PlatformMetrics(
        likes=metric_count(view.get("likeCount")),
        reposts=metric_count(view.get("repostCount")),
        replies=metric_count(view.get("replyCount")),
        quotes=metric_count(view.get("quoteCount")),
        bookmarks=metric_count(view.get("bookmarkCount")),
    )


def _record_field(value: Any, model_name: str, json_name: str) -> Any:
    if isinstance(value, dict):
        return value.get(json_name)
    return getattr(value, model_name, None)


def _cid(response: Any) -> str | None:
    """The content id of a created or fetched record (what a reply to it must name)."""
    cid = getattr(response, "cid", None)
    return str(cid) if cid else None


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class BlueskyAdapter:
    """Publishes to one Bluesky account; finds a post again by its deterministic record key."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        length_counting="graphemes",
        max_length=MAX_GRAPHEMES,
        url_length=None,
        # The record key makes a repeat fail rather than duplicate, but only a lookup can tell
        # "ours" from "someone's", so no window is claimed.
        idempotency_window=None,
        supports_lookup=True,
        metrics=("likes", "reposts", "replies", "quotes", "bookmarks"),
    )
    # app.bsky.feed.getPosts takes up to 25 URIs.
    metrics_batch_size: ClassVar[int] = 25

    def __init__(self, context: ChannelContext) -> None:
        self._context = context
        self._credentials = dict(context.credentials)
        self._session: Any = None
        self._ready = False
        self._client = self._new_client()

    def _new_client(self) -> Any:
        options: dict[str, Any] = {"timeout": self._context.timeout}
        transport = self._context.extra.get("httpx_transport")
        if transport is not None:
            options["transport"] = transport
        client = Client(base_url=self._context.base_url, request=Request(**options))
        client.on_session_change(self._session_changed)
        return client

    def close(self) -> None:
        """Close the connection pool, unless the transport was handed in (its owner closes it)."""
        self._close_client()

    def _close_client(self) -> None:
        if self._context.extra.get("httpx_transport") is None:
            self._client.request.close()

    def _session_changed(self, _event: Any, session: Any) -> None:
        # Called by the SDK on import, login and refresh. Persist at once: refresh tokens
        # rotate, so a crash after a refresh must not leave only the spent token stored.
        self._session = session
        exported = str(session.export())
        if exported != self._credentials.get("session"):
            self._credentials = {**self._credentials, "session": exported}
            self._context.on_credentials_change(dict(self._credentials))

    def _connect(self) -> None:
        """Resume the stored session (refreshed if due), else log in once with the app password."""
        if self._ready:
            return
        try:
            if not self._resume():
                self._password_login()
        except ChannelError:
            raise
        except _CLIENT_ERRORS as exc:
            raise _connect_error(exc) from exc
        self._ready = True

    def _resume(self) -> bool:
        stored = self._credentials.get("session")
        if not stored:
            return False
        try:
            self._client.login(session_string=stored, fetch_bsky_profile=False)
        except ValueError:
            return False  # not a session string the SDK can read
        try:
            # One cheap authenticated call: the SDK refreshes a nearly expired session first,
            # and a revoked one fails here rather than halfway through a publish.
            self._client.com.atproto.server.get_session()
        except (sdk.UnauthorizedError, sdk.BadRequestError):
            return False  # refresh refused or session revoked: worth one password login
        except (sdk.LoginRequiredError, InvalidTokenError):
            return False  # the stored tokens are unreadable or carry no expiry
        return True

    def _password_login(self) -> None:
        handle = self._credentials.get("handle")
        password = self._credentials.get("app_password")
        if not handle or not password:
            raise ReconnectNeeded("No Bluesky handle and app password are stored; reconnect.")
        # A fresh client, so the failed session's tokens are not sent along with the login.
        self._session = None
        self._close_client()
        self._client = self._new_client()
        self._client.login(handle, password, fetch_bsky_profile=False)

    def _post_url(self, rkey: str) -> str:
        handle = getattr(self._session, "handle", None) or self._credentials.get("handle")
        return f"https://bsky.app/profile/{handle}/post/{rkey}"

    def publish(self, post: OutgoingPost) -> PublishedPost:
        """Create the post once under its delivery's record key; a repeat never duplicates."""
        _check_length(post.text)
        reply = reply_target(post)
        if reply is not None and not (reply.parent_ref and reply.root_ref):
            raise PermanentError(
                "Bluesky needs the content ids of the posts this reply answers, and they were"
                " not recorded when those were published."
            )
        rkey = record_key(post.idempotency_key, post.due_at)
        self._connect()
        created_at = dt.datetime.now(dt.UTC)
        record: dict[str, Any] = {
            "$type": COLLECTION,
            "text": post.text,
            "createdAt": created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "langs": ["en"],
        }
        facets = link_facets(post.text)
        if facets:
            record["facets"] = facets
        if reply is not None:
            # A thread part: strong references to the thread's first post and to its parent.
            record["reply"] = {
                "root": {"uri": reply.root_id, "cid": reply.root_ref},
                "parent": {"uri": reply.parent_id, "cid": reply.parent_ref},
            }
        data = {"repo": self._session.did, "collection": COLLECTION, "rkey": rkey, "record": record}
        try:
            response = self._client.com.atproto.repo.create_record(data)
        except _CLIENT_ERRORS as exc:
            raise _publish_error(exc) from exc
        return PublishedPost(
            external_id=str(response.uri),
            url=self._post_url(rkey),
            published_at=created_at,
            reply_ref=_cid(response),
        )

    def lookup(self, post: OutgoingPost) -> PublishedPost | None:
        """The post stored under this delivery's record key, or None if there is none."""
        rkey = record_key(post.idempotency_key, post.due_at)
        try:
            self._connect()
        except ChannelError as exc:
            raise LookupUnavailable(
                f"Cannot ask Bluesky: {exc.message}", status=exc.status
            ) from exc
        params = {"repo": self._session.did, "collection": COLLECTION, "rkey": rkey}
        try:
            response = self._client.com.atproto.repo.get_record(params)
        except _CLIENT_ERRORS as exc:
            if _error_name(exc) == "RecordNotFound":
                return None
            raise LookupUnavailable(
                f"Cannot ask Bluesky: {_detail(exc)}", status=_status(exc)
            ) from exc
        text = _record_field(response.value, "text", "text")
        if text is not None and text != post.text:
            # Only a hash collision or a hand-made record could put other text here.
            raise LookupUnavailable("Bluesky holds a different post under this delivery's key.")
        created = _record_field(response.value, "created_at", "createdAt")
        return PublishedPost(
            external_id=str(response.uri),
            url=self._post_url(rkey),
            published_at=_parse_time(created),
            reply_ref=_cid(response),
        )

    def fetch_metrics(self, posts: Sequence[PublishedRef]) -> dict[str, MetricsResult]:
        """Likes, reposts, replies, quotes and bookmarks per post; a URI left out is not found."""
        uris = [ref.external_id for ref in posts]
        if not uris:
            return {}
        try:
            self._connect()
        except ChannelError as exc:
            raise _for_metrics(exc) from exc
        try:
            # The raw answer, not the SDK's model: a payload missing a field must not fail.
            response = self._client.invoke_query(
                "app.bsky.feed.getPosts", params=AppBskyFeedGetPosts.Params(uris=uris)
            )
        except _CLIENT_ERRORS as exc:
            raise _metrics_error(exc) from exc
        content = response.content if isinstance(response.content, dict) else {}
        views = content.get("posts")
        if not isinstance(views, list):
            # Never read an unreadable answer as "every post is gone".
            raise RetryableError("Bluesky answered getPosts with something unreadable.")
        found = {
            str(view.get("uri")): _post_view_metrics(view)
            for view in views
            if isinstance(view, dict)
        }
        # getPosts silently leaves out posts that are deleted or hidden.
        missing = NotFoundOnPlatform("Bluesky did not return this post (deleted or hidden).")
        return {uri: found.get(uri, missing) for uri in uris}


def _for_metrics(error: ChannelError) -> ChannelError:
    if isinstance(error, UnknownOutcome | LookupUnavailable):
        return RetryableError(error.message, status=error.status)
    return error
