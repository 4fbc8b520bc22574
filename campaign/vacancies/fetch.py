"""Fetching a feed through netguard's guarded session: caps, conditional GET, clear errors.

`fetch` never raises for network trouble: a refused address or scheme, a body over the size
cap, a timeout, too many redirects or an HTTP error all come back as `FetchResult.error`.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace

import requests

from campaign.netguard import AllowList, BlockedDestination, guarded_session
from campaign.vacancies import examples

USER_AGENT = "campaign-vacancy-fetcher/0.1 (+https://github.com/)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, "
    "application/json;q=0.8, text/csv;q=0.8, text/html;q=0.7, */*;q=0.1"
)


@dataclass(frozen=True)
class FetchLimits:
    """Caps on one fetch: body bytes (after decompression), total seconds, redirects."""

    max_bytes: int = 10 * 1024 * 1024
    timeout: float = 20.0
    max_redirects: int = 5


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one fetch; `error` is None on success (including 304 Not Modified)."""

    url: str
    status: int | None = None
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    final_url: str = ""
    not_modified: bool = False
    content_type: str = ""
    error: str | None = None
    retry_after: str | None = None  # the server's Retry-After header on a 429 or 503, as sent

    @property
    def ok(self) -> bool:
        return self.error is None


class _TooSlow(Exception):
    pass


class _TooLarge(Exception):
    pass


def _read(response: requests.Response, limits: FetchLimits, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _TooLarge
    body = bytearray()
    for chunk in response.iter_content(chunk_size=65536):
        body += chunk
        if len(body) > limits.max_bytes:
            raise _TooLarge
        if time.monotonic() > deadline:
            raise _TooSlow
    return bytes(body)


def fetch(
    url: str,
    *,
    allow: AllowList,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: FetchLimits | None = None,
) -> FetchResult:
    """GET `url` with conditional headers; the body is capped and the whole fetch timed."""
    limits = limits or FetchLimits()
    if examples.is_example(url):
        return fetch_example(url, etag=etag)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        return FetchResult(
            url, error="URL not allowed: only http and https feed URLs can be fetched"
        )
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + limits.timeout
    session = guarded_session(allow, max_redirects=limits.max_redirects, timeout=limits.timeout)
    try:
        with session:
            response = session.get(url, headers=headers, stream=True, timeout=limits.timeout)
            with response:
                return _result(url, response, limits, deadline)
    except BlockedDestination as exc:
        return FetchResult(url, error=str(exc))
    except requests.exceptions.TooManyRedirects:
        return FetchResult(url, error=f"too many redirects (more than {limits.max_redirects})")
    except requests.exceptions.Timeout:
        return FetchResult(url, error=f"timed out after {limits.timeout:g} seconds")
    except requests.exceptions.ConnectionError as exc:
        return FetchResult(url, error=f"could not connect: {_short(exc)}")
    except requests.exceptions.RequestException as exc:
        return FetchResult(url, error=f"request failed: {_short(exc)}")


def fetch_example(
    url: str, *, etag: str | None = None, today: dt.date | None = None
) -> FetchResult:
    """One of the app's built-in example feeds, answered like a server with conditional GET:
    no network, and the feed as it reads today (UTC) unless `today` is given."""
    problem = examples.problem(url)
    if problem is not None:
        return FetchResult(url, error=problem)
    body, content_type = examples.body_of(url, today or dt.datetime.now(dt.UTC).date())
    tag = examples.etag_of(body)
    if etag == tag:
        return FetchResult(url, status=304, etag=tag, final_url=url, not_modified=True)
    return FetchResult(
        url, status=200, body=body, etag=tag, final_url=url, content_type=content_type
    )


def _result(
    url: str, response: requests.Response, limits: FetchLimits, deadline: float
) -> FetchResult:
    base = FetchResult(
        url,
        status=response.status_code,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        final_url=response.url,
        content_type=response.headers.get("Content-Type", ""),
    )
    if response.status_code == 304:
        return replace(base, not_modified=True)
    if response.status_code >= 400:
        error = f"HTTP {response.status_code} {response.reason or 'error'}"
        retry_after = response.headers.get("Retry-After")
        if response.status_code in (429, 503) and retry_after:
            return replace(base, error=error, retry_after=retry_after[:100])
        return replace(base, error=error)
    try:
        return replace(base, body=_read(response, limits, deadline))
    except _TooLarge:
        return replace(base, error=f"response body exceeds the cap of {limits.max_bytes} bytes")
    except _TooSlow:
        return replace(base, error=f"timed out after {limits.timeout:g} seconds reading the body")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."
