"""The X (Twitter) channel: publish through tweepy's v2 Client, find posts again, count length.

tweepy hard-codes https://api.twitter.com, sets no timeout and knows nothing of our SSRF guard,
so it gets a small session of our own (`_XApiSession`) that points it at the configured base
URL, adds the default timeout and sends through the guarded session's transport adapters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import html
import logging
import re
import socket
import ssl
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import requests
import tweepy
import urllib3
from requests.adapters import BaseAdapter
from twitter_text import extract_urls_with_indices, parse_tweet

from campaign.channels import x_oauth
from campaign.channels.base import (
    Capabilities,
    ChannelContext,
    ChannelError,
    DuplicateRejected,
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

TWEEPY_ORIGIN = "https://api.twitter.com"
MAX_LENGTH = 280
# Refresh an OAuth 2.0 access token this long before it expires, so it cannot lapse mid-call.
REFRESH_MARGIN = dt.timedelta(minutes=5)
# Search a little before the first attempt: our clock and X's may disagree.
LOOKUP_SLACK = dt.timedelta(minutes=2)
# Pages of 100 posts to read when searching by content (each post read costs money).
LOOKUP_PAGES = 3
# Never sleep in the worker on a 429 (tweepy would, or loop without pause); plain dicts back,
# so our parsing does not depend on tweepy's model classes (which warn on missing fields).
_CLIENT_OPTIONS: dict[str, Any] = {"wait_on_rate_limit": False, "return_type": dict}
_RECONNECT = "The X credentials are missing or incomplete; reconnect the X account."
# X serves non-public metrics (link and profile clicks) only for posts younger than 30 days,
# and only with user-context auth (which every channel here has).
NON_PUBLIC_METRICS_AGE = dt.timedelta(days=30)
_PUBLIC_FIELDS = ["public_metrics"]
_ALL_METRIC_FIELDS = ["public_metrics", "non_public_metrics"]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def x_weighted_length(text: str) -> int:
    """X's weighted length: URLs count 23, CJK characters and emoji 2, most others 1."""
    return int(parse_tweet(text).weightedLength)


def x_text_problems(text: str) -> list[str]:
    """Plain-words reasons X would refuse this text; empty when it looks publishable."""
    if not text.strip():
        return ["The post is empty."]
    result = parse_tweet(text)
    problems = []
    if result.weightedLength > MAX_LENGTH:
        problems.append(
            f"The post is {result.weightedLength} characters by X's count; X allows "
            f"{MAX_LENGTH} (each link counts 23, emoji and CJK characters 2)."
        )
    elif not result.valid:
        problems.append("The post contains characters X does not accept.")
    return problems


class _XApiSession(requests.Session):
    """tweepy's session: rewrites its fixed origin, adds a timeout, uses the guarded transport."""

    def __init__(self, base_url: str, guarded: requests.Session, timeout: float) -> None:
        super().__init__()
        self._origin = base_url.rstrip("/")
        self._guarded = guarded
        self._timeout = timeout
        # Never pick up proxies from the environment: the guard vets the address it connects to.
        self.trust_env = False
        self.adapters.clear()  # unused: get_adapter below answers from the guarded session

    def get_adapter(self, url: str) -> BaseAdapter:
        """The guarded session's adapter (composition): every connection is still vetted."""
        return self._guarded.get_adapter(url)

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Prepare with the configured origin, so OAuth 1.0a signs the URL actually sent."""
        if request.url.startswith(TWEEPY_ORIGIN + "/"):
            request.url = self._origin + request.url[len(TWEEPY_ORIGIN) :]
        return super().prepare_request(request)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send with the default timeout when the caller (tweepy) gave none."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


class XAdapter:
    """Publishes to one X account with OAuth 1.0a or OAuth 2.0 user credentials."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        length_counting="weighted",
        max_length=MAX_LENGTH,
        url_length=23,
        idempotency_window=None,
        supports_lookup=True,
        metrics=(
            "impressions",
            "likes",
            "reposts",
            "replies",
            "quotes",
            "bookmarks",
            "clicks",
            "profile_clicks",
        ),
        cost_per_post_usd=0.015,
        cost_per_link_post_usd=0.20,
    )

    # GET /2/tweets takes up to 100 ids.
    metrics_batch_size: ClassVar[int] = 100

    def __init__(self, context: ChannelContext) -> None:
        self._context = context
        self._credentials = dict(context.credentials)
        clock = context.extra.get("clock")
        self._clock: Callable[[], dt.datetime] = clock if callable(clock) else _utc_now
        self._session = _XApiSession(context.base_url, context.http, context.timeout)
        self._user_id: str | None = None
        # tweepy logs every request's headers at DEBUG, OAuth 2.0 bearer tokens included.
        logging.getLogger("tweepy.client").setLevel(logging.INFO)

    def publish(self, post: OutgoingPost) -> PublishedPost:
        """Create the post once; X takes no idempotency key, so a repeat may be a duplicate."""
        reply = reply_target(post)
        client = self._client()
        options: dict[str, Any] = {}
        if reply is not None:
            # A thread part: a reply to the part before it, which makes the thread on X.
            options["in_reply_to_tweet_id"] = reply.parent_id
        try:
            response = client.create_tweet(text=post.text, user_auth=self._user_auth, **options)
        except tweepy.HTTPException as exc:
            raise classify_http_error(exc.response, self._clock()) from exc
        except requests.RequestException as exc:
            raise classify_network_error(exc) from exc
        try:
            external_id = str(response["data"]["id"])
        except (KeyError, TypeError) as exc:
            raise UnknownOutcome("X accepted the request but did not return the post id.") from exc
        return PublishedPost(external_id=external_id, url=_status_url(external_id))

    def lookup(self, post: OutgoingPost) -> PublishedPost | None:
        """Our post on X by id, else by matching text in the account's recent posts."""
        try:
            client = self._client()
            if post.external_id:
                return self._lookup_by_id(client, post.external_id)
            return self._lookup_by_text(client, post)
        except tweepy.HTTPException as exc:
            raise _for_lookup(classify_http_error(exc.response, self._clock())) from exc
        except requests.RequestException as exc:
            raise _for_lookup(classify_network_error(exc)) from exc
        except RetryableError as exc:
            raise _for_lookup(exc) from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise LookupUnavailable("X answered the lookup with something unexpected.") from exc

    def fetch_metrics(self, posts: Sequence[PublishedRef]) -> dict[str, MetricsResult]:
        """Public metrics of each post, plus link and profile clicks for posts under 30 days.

        If X refuses the non-public fields, those posts are read again with public ones only.
        """
        now = self._clock()
        recent = [
            ref.external_id
            for ref in posts
            if ref.published_at is not None and now - ref.published_at < NON_PUBLIC_METRICS_AGE
        ]
        older = [ref.external_id for ref in posts if ref.external_id not in recent]
        try:
            client = self._client()
            results: dict[str, MetricsResult] = {}
            if recent:
                found, refused = self._read_metrics(client, recent, _ALL_METRIC_FIELDS)
                results.update(found)
                older += refused
            if older:
                found, _refused = self._read_metrics(client, older, _PUBLIC_FIELDS)
                results.update(found)
        except tweepy.HTTPException as exc:
            raise _for_metrics(classify_http_error(exc.response, self._clock())) from exc
        except requests.RequestException as exc:
            raise _for_metrics(classify_network_error(exc)) from exc
        return results

    def _read_metrics(
        self, client: tweepy.Client, ids: list[str], fields: list[str]
    ) -> tuple[dict[str, MetricsResult], list[str]]:
        """(results, ids whose non-public fields X refused) for one GET /2/tweets?ids=..."""
        try:
            response = client.get_tweets(ids, tweet_fields=fields, user_auth=self._user_auth)
        except tweepy.HTTPException as exc:
            # A refusal of the private fields as a whole (no user context, wrong tier).
            if fields != _PUBLIC_FIELDS and exc.response.status_code in (400, 403):
                return {}, list(ids)
            raise
        body = response if isinstance(response, dict) else {}
        if not isinstance(body.get("data"), list) and not isinstance(body.get("errors"), list):
            # Never read an unreadable answer as "every post is gone".
            raise RetryableError("X answered the metrics lookup with something unreadable.")
        data = body.get("data")
        tweets = [t for t in data if isinstance(t, dict)] if isinstance(data, list) else []
        errors = body.get("errors")
        problems = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        refused = [] if fields == _PUBLIC_FIELDS else _refused_private_fields(problems, ids)
        results: dict[str, MetricsResult] = {}
        for tweet in tweets:
            tweet_id = str(tweet.get("id", ""))
            if tweet_id in ids and tweet_id not in refused:
                results[tweet_id] = _x_metrics(tweet)
        reasons = {str(e.get("resource_id")): _problem_text(e) for e in problems}
        for tweet_id in ids:
            if tweet_id not in results and tweet_id not in refused:
                # A deleted or missing post is HTTP 200 with an `errors` entry, or just absent.
                reason = reasons.get(tweet_id) or "X did not return this post."
                results[tweet_id] = NotFoundOnPlatform(reason)
        return results, refused

    @property
    def _user_auth(self) -> bool:
        # tweepy signs with OAuth 1.0a when user_auth is true; OAuth 2.0 user tokens travel
        # as the bearer token, so every call must then say user_auth=False.
        return self._credentials.get("auth") == "oauth1"

    def _client(self) -> tweepy.Client:
        """A tweepy Client on our session, refreshing an expiring OAuth 2.0 token first."""
        creds = self._credentials
        if creds.get("auth") == "oauth1":
            keys = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
            values = [creds.get(key) for key in keys]
            if not all(isinstance(value, str) and value for value in values):
                raise ReconnectNeeded(_RECONNECT)
            client = tweepy.Client(**dict(zip(keys, values, strict=True)), **_CLIENT_OPTIONS)
        elif creds.get("auth") == "oauth2":
            if self._token_expiring():
                self._refresh()
            token = self._credentials.get("access_token")
            if not isinstance(token, str) or not token:
                raise ReconnectNeeded(_RECONNECT)
            client = tweepy.Client(bearer_token=token, **_CLIENT_OPTIONS)
        else:
            raise ReconnectNeeded(_RECONNECT)
        client.session = self._session
        return client

    def _token_expiring(self) -> bool:
        raw = self._credentials.get("expires_at")
        try:
            expires_at = dt.datetime.fromisoformat(str(raw))
        except ValueError:
            return True  # an unreadable expiry is treated as expired: refreshing is harmless
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=dt.UTC)
        return expires_at - self._clock() <= REFRESH_MARGIN

    def _refresh(self) -> None:
        renewed = x_oauth.refresh_tokens(
            self._context.http,
            x_oauth.token_url(self._context.base_url),
            self._credentials,
            self._clock(),
            timeout=self._context.timeout,
        )
        # The old refresh token is spent: the caller persists the new one before we use it.
        self._context.on_credentials_change(dict(renewed))
        self._credentials = renewed

    def _lookup_by_id(self, client: tweepy.Client, external_id: str) -> PublishedPost | None:
        response = client.get_tweet(
            external_id, tweet_fields=["created_at"], user_auth=self._user_auth
        )
        # A missing or deleted post is HTTP 200 with `errors` and no data, not a 404.
        data = response.get("data")
        return _published(data) if isinstance(data, dict) else None

    def _lookup_by_text(self, client: tweepy.Client, post: OutgoingPost) -> PublishedPost | None:
        user_id = self._own_user_id(client)
        since = (post.first_attempt_at or post.due_at) - LOOKUP_SLACK
        wanted = normalise_for_match(post.text)
        found: PublishedPost | None = None
        token: str | None = None
        for _page in range(LOOKUP_PAGES):
            response = client.get_users_tweets(
                user_id,
                start_time=since,
                max_results=100,
                tweet_fields=["created_at"],
                pagination_token=token,
                user_auth=self._user_auth,
            )
            for tweet in response.get("data") or []:
                # X returns &, < and > HTML-escaped (and every link as https://t.co/...).
                theirs = html.unescape(str(tweet.get("text", "")))
                if normalise_for_match(theirs) == wanted:
                    # Newest first: keep the last (oldest) match, the attempt that went through.
                    found = _published(tweet)
            token = (response.get("meta") or {}).get("next_token")
            if not token:
                break
        return found

    def _own_user_id(self, client: tweepy.Client) -> str:
        if self._user_id is None:
            known = self._credentials.get("user_id")
            if known:
                self._user_id = str(known)
            else:
                me = client.get_me(user_auth=self._user_auth).get("data") or {}
                if "id" not in me:
                    raise LookupUnavailable("X did not say which account these credentials are.")
                self._user_id = str(me["id"])
        return self._user_id


_URL_PLACEHOLDER = "\x00url\x00"
# To whitespace, but not a last sentence mark (as X itself leaves "." after a link).
_BARE_URL = re.compile(r"https?://[^\s\x00]*[^\s\x00.,;:!?'\")\]]", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def normalise_for_match(text: str) -> str:
    """Text as compared across X's rewriting: NFC, every URL one placeholder, spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    parts = []
    position = 0
    for entity in extract_urls_with_indices(text):
        start, end = entity["indices"]
        parts.append(text[position:start])
        parts.append(_URL_PLACEHOLDER)
        position = end
    parts.append(text[position:])
    # twitter-text knows only real top-level domains; a link to an address such as the app's own
    # tracked link on a test or intranet host (http://10.0.0.5/l/...) is a link to X all the same.
    joined = _BARE_URL.sub(_URL_PLACEHOLDER, "".join(parts))
    return _WHITESPACE.sub(" ", joined).strip()


def _status_url(external_id: str) -> str:
    return f"https://x.com/i/web/status/{external_id}"


def _published(tweet: dict[str, Any]) -> PublishedPost:
    external_id = str(tweet["id"])
    published_at = None
    with contextlib.suppress(KeyError, ValueError):  # the time is a nicety; the id matters
        published_at = dt.datetime.fromisoformat(str(tweet["created_at"]))
    return PublishedPost(external_id, _status_url(external_id), published_at)


def _x_metrics(tweet: dict[str, Any]) -> PlatformMetrics:
    public = tweet.get("public_metrics")
    public = public if isinstance(public, dict) else {}
    private = tweet.get("non_public_metrics")
    private = private if isinstance(private, dict) else {}
    # The docs example says retweet_count, the OpenAPI schema repost_count: take either.
    reposts = public.get("retweet_count", public.get("repost_count"))
    impressions = public.get("impression_count", private.get("impression_count"))
    return PlatformMetrics(
        impressions=metric_count(impressions),
        likes=metric_count(public.get("like_count")),
        reposts=metric_count(reposts),
        replies=metric_count(public.get("reply_count")),
        quotes=metric_count(public.get("quote_count")),
        bookmarks=metric_count(public.get("bookmark_count")),
        link_clicks=metric_count(private.get("url_link_clicks")),
        profile_clicks=metric_count(private.get("user_profile_clicks")),
    )


def _refused_private_fields(problems: list[dict[str, Any]], ids: list[str]) -> list[str]:
    """Ids whose `errors` entry says we may not read a non-public field of it."""
    refused: list[str] = []
    for problem in problems:
        said = " ".join(str(problem.get(key, "")) for key in ("type", "field", "detail", "title"))
        if "not-authorized-for-field" in said or "non_public_metrics" in said:
            resource = str(problem.get("resource_id", ""))
            targets = [resource] if resource in ids else list(ids)
            refused += [target for target in targets if target not in refused]
    return refused


def _problem_text(problem: dict[str, Any]) -> str:
    text = str(problem.get("detail") or problem.get("title") or "X could not find this post.")
    return _WHITESPACE.sub(" ", text).strip()[:300]


def _for_metrics(error: ChannelError) -> ChannelError:
    """Reading figures changes nothing, so "may have been sent" is simply "try again later"."""
    if isinstance(error, (UnknownOutcome, LookupUnavailable)):
        return RetryableError(error.message, status=error.status)
    if isinstance(error, DuplicateRejected):
        return PermanentError(error.message, status=error.status)
    return error


def _for_lookup(error: ChannelError) -> ChannelError:
    """During a lookup only a credential problem stands; anything else means "cannot ask"."""
    if isinstance(error, ReconnectNeeded):
        return error
    return LookupUnavailable(error.message, status=error.status)


def classify_http_error(response: requests.Response, now: dt.datetime) -> ChannelError:
    """The outcome class for an X error response (v2 problem JSON, the v1 shape, or neither)."""
    status = response.status_code
    problem_type, detail, codes = _problem(response)
    said = f": {detail}" if detail else ""
    if status == 401:
        return ReconnectNeeded(
            f"X rejected the stored credentials{said}. Reconnect the X account.", status=status
        )
    if status == 402:
        return PermanentError(
            "The X account has no API credits left; add credits in the X developer console.",
            status=status,
        )
    if status == 403 and ("duplicate" in detail.lower() or 187 in codes):
        return DuplicateRejected(f"X refused the post as a duplicate{said}", status=status)
    if status == 429 and problem_type.endswith("usage-capped"):
        return PermanentError(
            f"X usage cap reached{said}; fix billing in the X developer console.", status=status
        )
    if status == 429:
        return RetryableError(
            "X is rate limiting this account; will try again later.",
            retry_after=_retry_after(response.headers, now),
            status=status,
        )
    if status >= 500:
        return UnknownOutcome(f"X had a server error (HTTP {status}).", status=status)
    return PermanentError(f"X refused the request (HTTP {status}){said}", status=status)


def classify_network_error(exc: requests.RequestException) -> ChannelError:
    """The outcome class for a transport failure: was anything sent before it broke?"""
    if "URL not allowed" in str(exc):
        # netguard's BlockedDestination: the configured address is private or otherwise refused.
        return PermanentError(
            "The X API address is blocked by the network settings; check the X base URL."
        )
    if isinstance(exc, requests.ConnectTimeout):  # checked first: it is also a ConnectionError
        return RetryableError("Timed out connecting to X; nothing was sent.")
    if isinstance(exc, requests.ReadTimeout):
        return UnknownOutcome("X did not answer in time; the post may have been published.")
    if isinstance(exc, requests.exceptions.InvalidJSONError):
        return UnknownOutcome("X answered with something unreadable.")
    if isinstance(exc, requests.ConnectionError):
        if _failed_before_sending(exc):
            return RetryableError("Could not connect to X; nothing was sent.")
        return UnknownOutcome("The connection to X broke; the post may have been published.")
    return PermanentError("The request to X could not be made; check the X base URL.")


# Failures that can only happen while opening the connection, before any byte of the request.
_BEFORE_SENDING: tuple[type[BaseException], ...] = (
    urllib3.exceptions.NewConnectionError,  # refused, unreachable; includes DNS failures
    urllib3.exceptions.ConnectTimeoutError,
    ConnectionRefusedError,
    socket.gaierror,
    ssl.SSLCertVerificationError,
)


def _failed_before_sending(exc: BaseException) -> bool:
    """Whether the exception chain shows a connect-phase failure (requests nests urllib3's)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, _BEFORE_SENDING):
            return True
        linked = [*error.args, error.__cause__, error.__context__, getattr(error, "reason", None)]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return False


def _problem(response: requests.Response) -> tuple[str, str, list[int]]:
    """(type, detail, v1 codes) from an error body; detail trimmed, since staff will read it."""
    try:
        body = response.json()
    except ValueError:
        return "", "", []
    if not isinstance(body, dict):
        return "", "", []
    problem_type = body.get("type") if isinstance(body.get("type"), str) else ""
    detail = body.get("detail") or body.get("title") or ""
    codes = []
    errors = body.get("errors")
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict):
            if isinstance(item.get("code"), int):
                codes.append(item["code"])
            detail = detail or item.get("message") or item.get("detail") or ""
    detail = _WHITESPACE.sub(" ", str(detail)).strip()
    return str(problem_type), detail[:300], codes


def _retry_after(headers: Any, now: dt.datetime) -> float | None:
    """Seconds until X lets this account post again, from the most specific header present."""
    for scope in ("user", "app"):
        # When a daily cap is what was hit, the 15-minute x-rate-limit-reset is too early.
        if headers.get(f"x-{scope}-limit-24hour-remaining") == "0":
            reset = _epoch(headers.get(f"x-{scope}-limit-24hour-reset"))
            if reset is not None:
                return max(0.0, reset - now.timestamp())
    reset = _epoch(headers.get("x-rate-limit-reset"))
    if reset is not None:
        return max(0.0, reset - now.timestamp())
    value = headers.get("Retry-After")
    return _retry_after_header(value, now) if value else None


def _epoch(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after_header(value: str, now: dt.datetime) -> float | None:
    """Retry-After as seconds, whether it gives seconds or an HTTP date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())
