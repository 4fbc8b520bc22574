"""Fetching feeds: conditional GET, caps, refused destinations, clear errors, never a raise."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses

from campaign.netguard import AllowList, parse_allow_list
from campaign.vacancies.fetch import FetchLimits, fetch

FEED = "https://jobs.example.org/feed.xml"
NOTHING = AllowList()
BODY = b'<?xml version="1.0"?><rss version="2.0"><channel></channel></rss>'


@responses.activate
def test_success_records_validators() -> None:
    responses.get(
        FEED,
        body=BODY,
        headers={"ETag": '"v1"', "Last-Modified": "Wed, 03 Mar 2027 09:00:00 GMT"},
        content_type="application/rss+xml",
    )
    result = fetch(FEED, allow=NOTHING)
    assert result.error is None and result.ok
    assert (result.status, result.body, result.etag) == (200, BODY, '"v1"')
    assert result.last_modified == "Wed, 03 Mar 2027 09:00:00 GMT"
    assert result.content_type == "application/rss+xml"
    assert result.final_url == FEED and not result.not_modified


@responses.activate
def test_conditional_get_not_modified() -> None:
    responses.get(
        FEED,
        status=304,
        match=[
            responses.matchers.header_matcher(
                {"If-None-Match": '"v1"', "If-Modified-Since": "Wed, 03 Mar 2027 09:00:00 GMT"}
            )
        ],
    )
    result = fetch(FEED, allow=NOTHING, etag='"v1"', last_modified="Wed, 03 Mar 2027 09:00:00 GMT")
    assert result.ok and result.not_modified
    assert (result.status, result.body) == (304, b"")


@responses.activate
def test_redirect_followed_and_final_url_kept() -> None:
    responses.get(FEED, status=301, headers={"Location": "https://jobs.example.org/new.xml"})
    responses.get("https://jobs.example.org/new.xml", body=BODY)
    result = fetch(FEED, allow=NOTHING)
    assert result.ok and result.final_url == "https://jobs.example.org/new.xml"


@responses.activate
def test_too_many_redirects() -> None:
    responses.get(FEED, status=302, headers={"Location": FEED})
    result = fetch(FEED, allow=NOTHING, limits=FetchLimits(max_redirects=3))
    assert result.error == "too many redirects (more than 3)"


@responses.activate
def test_oversize_body_refused() -> None:
    responses.get(FEED, body=b"x" * 5000)  # declared Content-Length
    result = fetch(FEED, allow=NOTHING, limits=FetchLimits(max_bytes=1000))
    assert result.error == "response body exceeds the cap of 1000 bytes"
    assert result.body == b""


@responses.activate
def test_gzip_bomb_refused_after_decompression() -> None:
    bomb = gzip.compress(b"<" * 200_000)
    responses.get(FEED, body=bomb, headers={"Content-Encoding": "gzip"})
    result = fetch(FEED, allow=NOTHING, limits=FetchLimits(max_bytes=50_000))
    assert len(bomb) < 50_000
    assert result.error == "response body exceeds the cap of 50000 bytes"


@responses.activate
def test_http_error_status() -> None:
    responses.get(FEED, status=503)
    result = fetch(FEED, allow=NOTHING)
    assert (result.status, result.error) == (503, "HTTP 503 Service Unavailable")


@responses.activate
@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (requests.exceptions.ConnectTimeout("slow"), "timed out after 20 seconds"),
        (requests.exceptions.ReadTimeout("slow"), "timed out after 20 seconds"),
        (requests.exceptions.ConnectionError("refused"), "could not connect: refused"),
    ],
)
def test_network_errors_are_messages(exc: Exception, message: str) -> None:
    responses.get(FEED, body=exc)
    assert fetch(FEED, allow=NOTHING).error == message


@pytest.mark.parametrize(
    "url", ["ftp://jobs.example.org/feed", "file:///etc/passwd", "feed.xml", ""]
)
def test_wrong_scheme(url: str) -> None:
    assert fetch(url, allow=NOTHING).error == (
        "URL not allowed: only http and https feed URLs can be fetched"
    )


def test_literal_private_address_refused() -> None:
    result = fetch("http://169.254.169.254/latest/meta-data/", allow=NOTHING)
    assert result.error == "URL not allowed: '169.254.169.254' resolves to a link-local address"


# --- real loopback servers: the guard works at connect time, below `responses` ----------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        target = self.server.redirect_to  # type: ignore[attr-defined]
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/drip":
            self.send_response(200)
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"<")
                self.wfile.flush()
                time.sleep(0.05)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    started: list[ThreadingHTTPServer] = []
    yield started
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def _start(started: list[ThreadingHTTPServer], host: str, redirect_to: str = "") -> str:
    httpd = ThreadingHTTPServer((host, 0), _Handler)
    httpd.daemon_threads = True
    httpd.hits = []  # type: ignore[attr-defined]
    httpd.redirect_to = redirect_to  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    started.append(httpd)
    return f"http://{host}:{httpd.server_address[1]}"


def test_redirect_to_a_private_address_refused(servers: list[ThreadingHTTPServer]) -> None:
    canary = _start(servers, "127.0.0.2")
    origin = _start(servers, "127.0.0.1", redirect_to=f"{canary}/canary")
    result = fetch(f"{origin}/redirect", allow=parse_allow_list(["127.0.0.1"]))
    assert result.error == "URL not allowed: '127.0.0.2' resolves to a loopback address"
    assert servers[1].hits == ["/redirect"]  # type: ignore[attr-defined]
    assert servers[0].hits == []  # type: ignore[attr-defined]


def test_loopback_refused_unless_allow_listed(servers: list[ThreadingHTTPServer]) -> None:
    origin = _start(servers, "127.0.0.1")
    refused = fetch(f"{origin}/feed", allow=NOTHING)
    assert refused.error == "URL not allowed: '127.0.0.1' resolves to a loopback address"
    assert servers[0].hits == []  # type: ignore[attr-defined]
    allowed = fetch(f"{origin}/feed", allow=parse_allow_list(["127.0.0.1"]))
    assert allowed.ok and allowed.body == BODY


def test_slow_drip_body_hits_the_total_time_cap(servers: list[ThreadingHTTPServer]) -> None:
    origin = _start(servers, "127.0.0.1")
    limits = FetchLimits(timeout=0.3)
    result = fetch(f"{origin}/drip", allow=parse_allow_list(["127.0.0.1"]), limits=limits)
    assert result.error == "timed out after 0.3 seconds reading the body"
