"""A fake X, Mastodon and Bluesky on loopback, for end-to-end publishing tests.

Worker processes reach it by base URL, through the real client libraries; the test process sets
faults and reads what arrived over the control endpoints under /_fake/. All state lives in one
SQLite file, so every server thread (and the fake run as its own process) sees the same posts,
calls and faults. Duplicates are refused by unique indexes, as the platforms refuse them, never
by counting first.

A fault is a JSON object posted to /_fake/faults (or a list of them; DELETE clears them all):

    {"kind": "status", "status": 503, "platform": "x", "path": "create", "times": 2}

Each matching request consumes one use of the oldest matching fault. Kinds: delay (`seconds`),
status (`status`, optional `message` or a whole `body`), stored_status (the same, after storing;
504 by default), rate_limit (`retry_after`), duplicate (X only), accept_then_drop,
success_not_stored, lookup_down. `path` is create, lookup or other (sessions, accounts,
instance); without `platform`, `path` or `times` a fault matches every platform, path and
request. Calls still in flight, or dropped, have no status.

    python -m tests.fakeplatform --port 8123 --db fake.sqlite3
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import html
import json
import re
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import grapheme  # type: ignore[import-untyped]
import requests
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

X_USER = {"id": "42", "name": "Careers Service", "username": "careers"}
MASTODON_ACCOUNT_ID = "1"
BLUESKY_DID = "did:plc:fakeaccount"
ACCOUNTS = {"x": X_USER["id"], "mastodon": MASTODON_ACCOUNT_ID, "bluesky": BLUESKY_DID}
BLUESKY_HANDLE = "careers.fake.test"
POST_COLLECTION = "app.bsky.feed.post"
# External ids look like each platform's (long digit strings); the fake derives them from one
# counter so a "success but not stored" id never collides with a later real post.
X_ID_BASE = 1_880_000_000_000_000_000
MASTODON_ID_BASE = 113_000_000_000_000_000
TOKEN_LIFETIME = 90 * 24 * 3600  # far future: the atproto SDK refreshes 15 min before `exp`
URL_RE = re.compile(r"https?://\S+")
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # stored times: UTC, microseconds, so they sort as text
PostRow = sqlite3.Row | dict[str, Any]  # a stored post, or the one a faked success pretends

CREATE_ONLY = {"stored_status", "duplicate", "accept_then_drop", "success_not_stored"}
KINDS = CREATE_ONLY | {"delay", "status", "rate_limit", "lookup_down"}
PATH_KINDS = {"create", "lookup", "other"}
PLATFORMS = {"x", "mastodon", "bluesky"}
FAULT_STATUSES = {400, 401, 403, 404, 422, 500, 502, 503, 504}
FAULT_PARAMS = ("seconds", "status", "retry_after", "message", "body")

X_DETAILS = {401: "Unauthorized", 403: "You are not permitted to perform this action."}
X_DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
MASTODON_ERRORS = {
    401: "The access token is invalid",
    403: "This action is not allowed",
    404: "Record not found",
    422: "Validation failed: Text can't be blank",
    429: "Too many requests",
}
XRPC_ERRORS = {
    400: "InvalidRequest",
    401: "AuthenticationRequired",
    403: "Forbidden",
    404: "NotFound",
    422: "InvalidRequest",
    429: "RateLimitExceeded",
    500: "InternalServerError",
    502: "UpstreamFailure",
    503: "NotEnoughResources",
    504: "UpstreamTimeout",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS ids (id INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY, platform TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    idempotency_key TEXT, authorization TEXT, body TEXT, status INTEGER, fault TEXT,
    at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY, platform TEXT NOT NULL, account TEXT NOT NULL,
    external_id TEXT NOT NULL, text TEXT NOT NULL, idempotency_key TEXT, rkey TEXT,
    visibility TEXT, record TEXT, created_at TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS posts_external ON posts (platform, external_id);
CREATE UNIQUE INDEX IF NOT EXISTS posts_mastodon_key ON posts (platform, idempotency_key)
    WHERE platform = 'mastodon';
CREATE UNIQUE INDEX IF NOT EXISTS posts_bluesky_rkey ON posts (platform, rkey)
    WHERE platform = 'bluesky';
CREATE UNIQUE INDEX IF NOT EXISTS posts_x_text ON posts (platform, account, text)
    WHERE platform = 'x';
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, platform TEXT, path TEXT, remaining INTEGER,
    params TEXT NOT NULL);
"""


# --- storage -------------------------------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    # Autocommit, so each write takes the lock explicitly (BEGIN IMMEDIATE) and waits for it.
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    # No fsync: the fake's state only has to outlive a worker, not a power cut, and with
    # syncing on, each request's connection close costs a checkpoint of ~20 ms.
    conn.execute("PRAGMA synchronous = OFF")
    return conn


@contextlib.contextmanager
def writing(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def init_db(path: Path) -> None:
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
    finally:
        conn.close()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime(STAMP)


def millis(stamp: str) -> str:
    return stamp[:23] + "Z"  # the platforms show milliseconds


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_jwt(scope: str) -> str:
    """A real HS256 JWT, so the atproto SDK can read `exp` and schedule its refresh."""
    issued = int(time.time())
    claims = {"scope": scope, "sub": BLUESKY_DID, "aud": "did:web:fake.test", "iat": issued}
    claims["exp"] = issued + TOKEN_LIFETIME
    header = b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(b"fake-platform", signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def make_cid(data: bytes) -> str:
    """A well-formed CIDv1 (dag-cbor, sha-256), like the `bafyrei...` ids a PDS returns."""
    raw = b"\x01\x71\x12\x20" + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def make_tid(counter: int) -> str:
    """A record key in atproto's TID form: microseconds and a clock id, base32-sortable."""
    value = (time.time_ns() // 1000) << 10 | (counter & 1023)
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[(value >> shift) & 31] for shift in range(60, -1, -5))


@dataclass
class Ctx:
    """One request: its body, its connection, and whether posts are really stored."""

    request: Request
    db: sqlite3.Connection
    store_posts: bool = True

    def store(
        self,
        platform: str,
        text: str,
        *,
        key: str | None = None,
        rkey: str | None = None,
        visibility: str | None = None,
        record: str | None = None,
    ) -> dict[str, Any]:
        """Insert a post (IntegrityError on a duplicate), or only allocate an id when faking."""
        with writing(self.db):
            new_id = self.db.execute("INSERT INTO ids DEFAULT VALUES").lastrowid or 0
            if platform == "bluesky":
                rkey = rkey or make_tid(new_id)
            external = {"x": X_ID_BASE + new_id, "mastodon": MASTODON_ID_BASE + new_id}
            row = dict(
                id=new_id,
                platform=platform,
                account=ACCOUNTS[platform],
                external_id=str(external.get(platform, rkey)),
                text=text,
                idempotency_key=key,
                rkey=rkey,
                visibility=visibility,
                record=record,
                created_at=now_iso(),
            )
            if self.store_posts:
                columns = ", ".join(row)
                values = ", ".join(f":{name}" for name in row)
                self.db.execute(f"INSERT INTO posts ({columns}) VALUES ({values})", row)
        return row

    def find(self, platform: str, external_id: str) -> sqlite3.Row | None:
        return self.db.execute(  # type: ignore[no-any-return]
            "SELECT * FROM posts WHERE platform = ? AND external_id = ?", (platform, external_id)
        ).fetchone()


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(json.dumps(data), status, headers, mimetype="application/json")


def error_body(platform: str, status: int, message: str | None = None) -> dict[str, Any]:
    """Each platform's documented error shape for this status."""
    phrase = HTTPStatus(status).phrase
    if platform == "x":
        detail = message or X_DETAILS.get(status, phrase)
        return {"title": phrase, "type": "about:blank", "status": status, "detail": detail}
    if platform == "mastodon":
        return {"error": message or MASTODON_ERRORS.get(status, phrase)}
    return {"error": XRPC_ERRORS.get(status, "InternalServerError"), "message": message or phrase}


def error_response(platform: str, status: int, params: Mapping[str, Any]) -> Response:
    body = params.get("body")
    if isinstance(body, str):  # e.g. a proxy's HTML 502 page
        return Response(body, status, mimetype="text/html")
    return json_response(body or error_body(platform, status, params.get("message")), status)


def rate_headers(platform: str, remaining: int, window: float) -> dict[str, str]:
    """Rate-limit headers as each platform spells them; note the three reset formats."""
    reset = time.time() + window
    if platform == "x":
        names, stamp = ("x-rate-limit-", str(int(reset)))
    elif platform == "mastodon":
        stamp = dt.datetime.fromtimestamp(reset, dt.UTC).strftime(STAMP)
        names = "X-RateLimit-"
    else:
        names, stamp = "RateLimit-", str(int(reset))
    limit = {"x": 900, "mastodon": 300}.get(platform, 3000)
    headers = {f"{names}Limit": str(limit), f"{names}Remaining": str(remaining)}
    headers[f"{names}Reset"] = stamp
    if platform == "bluesky":
        headers["RateLimit-Policy"] = f"{limit};w=300"
    return headers


def rate_limited(platform: str, params: Mapping[str, Any]) -> Response:
    retry_after = int(params.get("retry_after", 1))
    headers = rate_headers(platform, 0, retry_after) | {"Retry-After": str(retry_after)}
    message = params.get("message") or ("Rate Limit Exceeded" if platform == "bluesky" else None)
    return json_response(params.get("body") or error_body(platform, 429, message), 429, headers)


# --- Mastodon ------------------------------------------------------------------------------


def mastodon_html(text: str) -> str:
    """Mastodon's rendering: escaped text in paragraphs, <br /> for newlines, links wrapped."""

    def escape(part: str) -> str:
        return html.escape(part).replace("&#x27;", "&#39;")

    def link(url: str) -> str:
        scheme, rest = url.split("://", 1)
        return (
            f'<a href="{escape(url)}" rel="nofollow noopener" translate="no" target="_blank">'
            f'<span class="invisible">{scheme}://</span><span class="">{escape(rest)}</span>'
            '<span class="invisible"></span></a>'
        )

    paragraphs = []
    for paragraph in re.split(r"\n{2,}", text):
        pieces, last = [], 0
        for match in URL_RE.finditer(paragraph):
            pieces += [escape(paragraph[last : match.start()]), link(match.group())]
            last = match.end()
        pieces.append(escape(paragraph[last:]))
        paragraphs.append("<p>" + "".join(pieces).replace("\n", "<br />") + "</p>")
    return "".join(paragraphs)


def mastodon_account(base: str) -> dict[str, Any]:
    return {
        "id": MASTODON_ACCOUNT_ID,
        "username": "careers",
        "acct": "careers",
        "display_name": X_USER["name"],
        "url": f"{base}@careers",
        "created_at": "2024-01-01T00:00:00.000Z",
        "locked": False,
        "bot": False,
    }


def mastodon_status(row: PostRow, base: str) -> dict[str, Any]:
    sid = row["external_id"]
    counts = dict.fromkeys(("replies_count", "reblogs_count", "favourites_count"), 0)
    return counts | {
        "id": sid,
        "created_at": millis(row["created_at"]),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": row["visibility"] or "public",
        "language": "en",
        "uri": f"{base}users/careers/statuses/{sid}",
        "url": f"{base}@careers/{sid}",
        "quotes_count": 0,
        "content": mastodon_html(row["text"]),
        "account": mastodon_account(base),
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": None,
        "poll": None,
    }


def mastodon_create(ctx: Ctx) -> Response:
    form = ctx.request.form if ctx.request.form else (ctx.request.get_json(silent=True) or {})
    text = form.get("status", "")
    if not text.strip():
        return json_response(error_body("mastodon", 422), 422)
    if len(URL_RE.sub("x" * 23, text)) > 500:  # Mastodon counts every URL as 23 characters
        message = "Validation failed: Text character limit of 500 exceeded"
        return json_response(error_body("mastodon", 422, message), 422)
    key = ctx.request.headers.get("Idempotency-Key")
    try:
        row = ctx.store("mastodon", text, key=key, visibility=form.get("visibility", "public"))
    except sqlite3.IntegrityError:  # the key was seen: Mastodon answers with the first status
        row = ctx.db.execute(
            "SELECT * FROM posts WHERE platform = 'mastodon' AND idempotency_key = ?", (key,)
        ).fetchone()
    return json_response(mastodon_status(row, ctx.request.host_url))


def mastodon_get(ctx: Ctx, status_id: str) -> Response:
    row = ctx.find("mastodon", status_id)
    if row is None:
        return json_response(error_body("mastodon", 404), 404)
    return json_response(mastodon_status(row, ctx.request.host_url))


def mastodon_timeline(ctx: Ctx, account_id: str) -> Response:
    if account_id != MASTODON_ACCOUNT_ID:
        return json_response(error_body("mastodon", 404), 404)
    limit = min(int(ctx.request.args.get("limit", 20)), 40)
    max_id = int(ctx.request.args.get("max_id") or sys.maxsize)  # paging: older than max_id
    rows = ctx.db.execute(
        "SELECT * FROM posts WHERE platform = 'mastodon' AND CAST(external_id AS INTEGER) < ?"
        " ORDER BY id DESC LIMIT ?",
        (max_id, limit),
    )
    return json_response([mastodon_status(row, ctx.request.host_url) for row in rows])


def mastodon_me(ctx: Ctx) -> Response:
    return json_response(mastodon_account(ctx.request.host_url))


def mastodon_instance(ctx: Ctx, version: str) -> Response:
    statuses = {"max_characters": 500, "max_media_attachments": 4}
    statuses["characters_reserved_per_url"] = 23
    body: dict[str, Any] = {"title": "Fake Mastodon", "version": "4.5.0"}
    body["configuration"] = {"statuses": statuses}
    host = ctx.request.host
    return json_response(body | ({"domain": host} if version == "v2" else {"uri": host}))


# --- X -------------------------------------------------------------------------------------


def tco(url: str) -> str:
    return "https://t.co/" + hashlib.sha256(url.encode()).hexdigest()[:10]


def x_tweet(row: PostRow, fields: set[str]) -> dict[str, Any]:
    """A tweet as X returns it: URLs replaced by t.co links, extra fields only on request."""
    tid, text = row["external_id"], row["text"]
    tweet: dict[str, Any] = {"id": tid, "text": URL_RE.sub(lambda m: tco(m.group()), text)}
    tweet["edit_history_tweet_ids"] = [tid]
    if "created_at" in fields:
        tweet["created_at"] = millis(row["created_at"])
    if "author_id" in fields:
        tweet["author_id"] = row["account"]
    if "public_metrics" in fields:
        names = ("retweet_count", "reply_count", "like_count", "quote_count")
        tweet["public_metrics"] = dict.fromkeys((*names, "bookmark_count", "impression_count"), 0)
    if "entities" in fields and URL_RE.search(text):
        urls, shift = [], 0
        for match in URL_RE.finditer(text):
            short = tco(match.group())
            start = match.start() + shift
            urls.append({"start": start, "end": start + len(short), "url": short})
            urls[-1] |= {"expanded_url": match.group(), "display_url": match.group()[:30]}
            shift += len(short) - len(match.group())
        tweet["entities"] = {"urls": urls}
    return tweet


def x_fields(ctx: Ctx) -> set[str]:
    return set(ctx.request.args.get("tweet.fields", "").split(","))


def x_create(ctx: Ctx) -> Response:
    text = (ctx.request.get_json(silent=True) or {}).get("text")
    if not isinstance(text, str) or not text:
        body = error_body("x", 400, "One or more parameters to your request was invalid.")
        body |= {"type": "https://api.x.com/2/problems/invalid-request", "title": "Invalid Request"}
        return json_response(body, 400)
    try:
        row = ctx.store("x", text)
    except sqlite3.IntegrityError:  # X refuses the same text from the same account
        return json_response(X_DUPLICATE, 403)
    return json_response({"data": x_tweet(row, set())}, 201)


def x_get(ctx: Ctx, tweet_id: str) -> Response:
    row = ctx.find("x", tweet_id)
    if row is not None:
        return json_response({"data": x_tweet(row, x_fields(ctx))})
    missing = {"value": tweet_id, "resource_id": tweet_id, "resource_type": "tweet"}
    missing |= {"parameter": "id", "title": "Not Found Error"}
    missing["detail"] = f"Could not find tweet with id: [{tweet_id}]."
    missing["type"] = "https://api.twitter.com/2/problems/resource-not-found"
    return json_response({"errors": [missing]})  # X answers 200, with no `data`


def x_me(ctx: Ctx) -> Response:
    return json_response({"data": X_USER})


def x_timeline(ctx: Ctx, user_id: str) -> Response:
    """Newest first; the next_token is simply the oldest id on the page."""
    args = ctx.request.args
    sql = "SELECT * FROM posts WHERE platform = 'x' AND account = ?"
    params: list[Any] = [user_id]
    for name, operator in (("start_time", ">="), ("end_time", "<")):
        if args.get(name):
            when = dt.datetime.fromisoformat(args[name]).astimezone(dt.UTC)
            sql += f" AND created_at {operator} ?"
            params.append(when.strftime(STAMP))
    if args.get("pagination_token"):
        sql += " AND CAST(external_id AS INTEGER) < ?"
        params.append(int(args["pagination_token"]))
    limit = max(5, min(int(args.get("max_results", 10)), 100))
    rows = ctx.db.execute(f"{sql} ORDER BY id DESC LIMIT ?", (*params, limit + 1)).fetchall()
    body: dict[str, Any] = {"meta": {"result_count": min(len(rows), limit)}}
    if rows:
        page = rows[:limit]
        body["data"] = [x_tweet(row, x_fields(ctx)) for row in page]
        body["meta"] |= {"newest_id": page[0]["external_id"], "oldest_id": page[-1]["external_id"]}
        if len(rows) > limit:
            body["meta"]["next_token"] = page[-1]["external_id"]
    return json_response(body)


# --- Bluesky -------------------------------------------------------------------------------


def xrpc_error(status: int, name: str, message: str) -> Response:
    return json_response({"error": name, "message": message}, status)


def bsky_session(ctx: Ctx) -> Response:
    """createSession and refreshSession: any password works; no didDoc, so the SDK stays here."""
    body = ctx.request.get_json(silent=True) or {}
    if ctx.request.path.endswith("createSession") and not (
        body.get("identifier") and body.get("password")
    ):
        return xrpc_error(400, "InvalidRequest", "Input must have the property identifier")
    tokens = {"accessJwt": make_jwt("com.atproto.appPass")}
    tokens["refreshJwt"] = make_jwt("com.atproto.refresh")
    return json_response(tokens | {"handle": BLUESKY_HANDLE, "did": BLUESKY_DID, "active": True})


def bsky_get_session(ctx: Ctx) -> Response:
    return json_response({"handle": BLUESKY_HANDLE, "did": BLUESKY_DID, "active": True})


def bsky_profile(ctx: Ctx) -> Response:
    count = ctx.db.execute("SELECT count(*) FROM posts WHERE platform = 'bluesky'").fetchone()[0]
    profile = {"did": BLUESKY_DID, "handle": BLUESKY_HANDLE, "displayName": X_USER["name"]}
    return json_response(profile | {"followersCount": 0, "followsCount": 0, "postsCount": count})


def bsky_record(row: PostRow) -> dict[str, Any]:
    uri = f"at://{BLUESKY_DID}/{POST_COLLECTION}/{row['rkey']}"
    return {"uri": uri, "cid": make_cid(row["record"].encode()), "value": json.loads(row["record"])}


def bsky_commit() -> dict[str, str]:
    return {"cid": make_cid(str(time.time_ns()).encode()), "rev": make_tid(0)}


def bsky_repo_error(params: Mapping[str, Any]) -> Response | None:
    if params.get("repo") not in (BLUESKY_DID, BLUESKY_HANDLE):
        return xrpc_error(400, "InvalidRequest", f"Could not find repo: {params.get('repo')}")
    if params.get("collection") != POST_COLLECTION:
        return xrpc_error(400, "InvalidRequest", "The fake only stores app.bsky.feed.post")
    return None


def bsky_create(ctx: Ctx) -> Response:
    body = ctx.request.get_json(silent=True) or {}
    if (refused := bsky_repo_error(body)) is not None:
        return refused
    record = body.get("record") or {}
    text = record.get("text", "")
    if (length := grapheme.length(text)) > 300:  # the PDS, not the SDK, enforces this
        message = f"grapheme too big (maximum 300, got {length}) at $.record.text"
        return xrpc_error(400, "InvalidRequest", f"Invalid {POST_COLLECTION} record: {message}")
    try:
        row = ctx.store("bluesky", text, rkey=body.get("rkey"), record=json.dumps(record))
    except sqlite3.IntegrityError:  # a real PDS refuses a taken rkey with a bare 500
        return xrpc_error(500, "InternalServerError", "Internal Server Error")
    result = {k: v for k, v in bsky_record(row).items() if k != "value"}
    return json_response(result | {"commit": bsky_commit(), "validationStatus": "valid"})


def bsky_get_record(ctx: Ctx) -> Response:
    args = ctx.request.args
    row = None if bsky_repo_error(args) else ctx.find("bluesky", args.get("rkey", ""))
    if row is None:
        uri = f"at://{args.get('repo')}/{args.get('collection')}/{args.get('rkey')}"
        return xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
    return json_response(bsky_record(row))


def bsky_delete(ctx: Ctx) -> Response:
    body = ctx.request.get_json(silent=True) or {}
    if (refused := bsky_repo_error(body)) is not None:
        return refused
    with writing(ctx.db):
        ctx.db.execute(
            "DELETE FROM posts WHERE platform = 'bluesky' AND rkey = ?", (body.get("rkey"),)
        )
    return json_response({"commit": bsky_commit()})


# --- routing, faults and the WSGI app ------------------------------------------------------

Handler = Callable[..., Response]
# rule, method, platform, path kind (what a fault's `path` matches), needs an Authorization header
ROUTES: list[tuple[str, str, str, str, bool, Handler]] = [
    ("/api/v1/statuses", "POST", "mastodon", "create", True, mastodon_create),
    ("/api/v1/statuses/<status_id>", "GET", "mastodon", "lookup", True, mastodon_get),
    (
        "/api/v1/accounts/<account_id>/statuses",
        "GET",
        "mastodon",
        "lookup",
        True,
        mastodon_timeline,
    ),
    ("/api/v1/accounts/verify_credentials", "GET", "mastodon", "other", True, mastodon_me),
    ("/api/<version>/instance", "GET", "mastodon", "other", False, mastodon_instance),
    ("/2/tweets", "POST", "x", "create", True, x_create),
    ("/2/tweets/<tweet_id>", "GET", "x", "lookup", True, x_get),
    ("/2/users/me", "GET", "x", "other", True, x_me),
    ("/2/users/<user_id>/tweets", "GET", "x", "lookup", True, x_timeline),
    ("/xrpc/com.atproto.server.createSession", "POST", "bluesky", "other", False, bsky_session),
    ("/xrpc/com.atproto.server.refreshSession", "POST", "bluesky", "other", True, bsky_session),
    ("/xrpc/com.atproto.server.getSession", "GET", "bluesky", "other", True, bsky_get_session),
    ("/xrpc/app.bsky.actor.getProfile", "GET", "bluesky", "other", True, bsky_profile),
    ("/xrpc/com.atproto.repo.createRecord", "POST", "bluesky", "create", True, bsky_create),
    ("/xrpc/com.atproto.repo.getRecord", "GET", "bluesky", "lookup", True, bsky_get_record),
    ("/xrpc/com.atproto.repo.deleteRecord", "POST", "bluesky", "other", True, bsky_delete),
]
CONTROL = ["/_fake/posts", "/_fake/calls", "/_fake/faults", "/_fake/reset"]
URL_MAP = Map(
    [Rule(r[0], methods=[r[1]], endpoint=i) for i, r in enumerate(ROUTES)]
    + [Rule(path, endpoint=path) for path in CONTROL],
    strict_slashes=False,  # Mastodon.py asks for /api/v1/instance/ with the slash
)


def parse_fault(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    """A fault as a database row; create-only kinds default to `create`, lookup_down to `lookup`."""
    kind, platform = spec.get("kind"), spec.get("platform")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}")
    default_path = "create" if kind in CREATE_ONLY else "lookup" if kind == "lookup_down" else None
    path = spec.get("path", default_path)
    platform = "x" if kind == "duplicate" and platform is None else platform
    times = spec.get("times")
    status = spec.get("status", {"stored_status": 504, "lookup_down": 503}.get(kind, 500))
    if path not in PATH_KINDS | {None} or platform not in PLATFORMS | {None}:
        raise ValueError("path must be create, lookup or other; platform x, mastodon or bluesky")
    if kind == "duplicate" and platform != "x":
        raise ValueError("only X refuses duplicate content")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError("times must be a positive integer")
    if status not in FAULT_STATUSES:
        raise ValueError(f"status must be one of {sorted(FAULT_STATUSES)}")
    params = {key: spec[key] for key in FAULT_PARAMS if key in spec} | {"status": status}
    return kind, platform, path, times, json.dumps(params)


def take_fault(
    db: sqlite3.Connection, platform: str, path: str
) -> tuple[str, dict[str, Any]] | None:
    """Consume one use of the oldest matching fault; one statement, so each request gets its own."""
    rows = db.execute(
        """UPDATE faults SET remaining = remaining - 1 WHERE id = (
               SELECT id FROM faults WHERE (platform IS NULL OR platform = ?)
               AND (path IS NULL OR path = ?) AND (remaining IS NULL OR remaining > 0)
               ORDER BY id LIMIT 1)
           RETURNING kind, params""",
        (platform, path),
    ).fetchall()  # exhaust the cursor: the statement (and its write) ends only then
    return (rows[0]["kind"], json.loads(rows[0]["params"])) if rows else None


class DropConnection(Exception):
    """Raised after storing a post, to close the socket without an answer."""


class FakePlatformApp:
    """The WSGI app: real API paths, a recorded call for each, faults from the database."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        init_db(db_path)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        db = connect(self.db_path)
        try:
            response = self.dispatch(request, db)
        except DropConnection:
            sock = environ.get("werkzeug.socket")
            with contextlib.suppress(OSError):  # the client may have gone already
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            # Werkzeug treats a ConnectionError from the app as a vanished client: no 500 is
            # written, the connection is closed, and the client sees no response at all.
            raise ConnectionAbortedError("fake platform dropped the connection") from None
        finally:
            db.close()
        return response(environ, start_response)

    def dispatch(self, request: Request, db: sqlite3.Connection) -> Response:
        try:
            endpoint, args = URL_MAP.bind_to_environ(request.environ).match()
        except NotFound:
            if request.path.startswith("/xrpc/"):
                return xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")
            return json_response({"error": "Not Found"}, 404)
        except MethodNotAllowed:
            return json_response({"error": "Method Not Allowed"}, 405)
        if isinstance(endpoint, str):
            return self.control(endpoint, request, db)
        _rule, _method, platform, path_kind, needs_auth, handler = ROUTES[endpoint]
        body = request.get_data(as_text=True)
        key = request.headers.get("Idempotency-Key")
        if platform == "bluesky" and path_kind == "create":
            key = (request.get_json(silent=True) or {}).get("rkey")
        call_id = db.execute(
            "INSERT INTO calls (platform, method, path, idempotency_key, authorization, body, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (platform, request.method, request.full_path.rstrip("?"), key,
             request.headers.get("Authorization"), body, now_iso()),
        ).lastrowid  # fmt: skip
        fault = None
        try:
            if needs_auth and not request.headers.get("Authorization"):
                response = json_response(error_body(platform, 401), 401)
            else:
                fault = take_fault(db, platform, path_kind)
                response = self.respond(Ctx(request, db), platform, handler, args, fault)
        except DropConnection:
            db.execute("UPDATE calls SET fault = ? WHERE id = ?", ("accept_then_drop", call_id))
            raise
        except ValueError as exc:  # a malformed parameter, such as a bad start_time or limit
            response = json_response(error_body(platform, 400, str(exc)), 400)
        if "Retry-After" not in response.headers:
            response.headers.update(rate_headers(platform, 299, 300))
        db.execute(
            "UPDATE calls SET status = ?, fault = ? WHERE id = ?",
            (response.status_code, fault and fault[0], call_id),
        )
        return response

    def respond(
        self,
        ctx: Ctx,
        platform: str,
        handler: Handler,
        args: Mapping[str, Any],
        fault: tuple[str, dict[str, Any]] | None,
    ) -> Response:
        kind, params = fault or ("", {})
        if kind == "delay":
            time.sleep(float(params.get("seconds", 1)))
        elif kind in ("status", "lookup_down"):
            return error_response(platform, params["status"], params)
        elif kind == "rate_limit":
            return rate_limited(platform, params)
        elif kind == "duplicate":
            return json_response(X_DUPLICATE, 403)
        elif kind == "success_not_stored":
            ctx.store_posts = False
        response = handler(ctx, **args)
        if kind == "stored_status" and response.status_code < 300:
            return error_response(platform, params["status"], params)
        if kind == "accept_then_drop":
            raise DropConnection
        return response

    def control(self, endpoint: str, request: Request, db: sqlite3.Connection) -> Response:
        table = endpoint.rsplit("/", 1)[1]
        if request.method == "GET" and table in ("posts", "calls", "faults"):
            platform = request.args.get("platform")
            where = " WHERE platform = ?" if platform else ""
            rows = db.execute(
                f"SELECT * FROM {table}{where} ORDER BY id", (platform,) * bool(where)
            )
            return json_response([dict(row) for row in rows])
        if table == "faults" and request.method == "POST":
            specs = request.get_json(silent=True)
            specs = specs if isinstance(specs, list) else [specs or {}]
            try:
                faults = [parse_fault(spec) for spec in specs]
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
            with writing(db):
                db.executemany(
                    "INSERT INTO faults (kind, platform, path, remaining, params)"
                    " VALUES (?, ?, ?, ?, ?)",
                    faults,
                )
            return json_response({"added": len(faults)}, 201)
        if (table, request.method) in (("faults", "DELETE"), ("reset", "POST")):
            with writing(db):
                for name in ("faults",) if table == "faults" else ("faults", "calls", "posts"):
                    db.execute(f"DELETE FROM {name}")
            return json_response({})
        return json_response({"error": "Method Not Allowed"}, 405)


# --- running it ----------------------------------------------------------------------------


class FakePlatform:
    """A handle on a running fake: its base URL and its control endpoints."""

    def __init__(self, base_url: str, db_path: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.db_path = db_path
        self._http = requests.Session()
        self._http.trust_env = False  # never send loopback control calls through a proxy

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"{self.base_url}/_fake/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def set_faults(self, *faults: Mapping[str, Any]) -> None:
        """Replace every fault with these (the keys are in the module docstring)."""
        self.clear_faults()
        if faults:
            self._call("POST", "faults", json=list(faults))

    def add_fault(self, kind: str, **spec: Any) -> None:
        self._call("POST", "faults", json={"kind": kind, **spec})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")  # type: ignore[no-any-return]

    def posts(self, platform: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "posts", params={"platform": platform})  # type: ignore[no-any-return]

    def calls(self, platform: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "calls", params={"platform": platform})  # type: ignore[no-any-return]

    def reset(self) -> None:
        self._call("POST", "reset")

    def close(self) -> None:
        self._http.close()


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per call would drown the test output; errors are still logged


@contextlib.contextmanager
def running_fake_platform(tmp_path: Path) -> Iterator[FakePlatform]:
    """Serve the fake on a free loopback port in a background thread for the block's duration."""
    db_path = tmp_path / "fakeplatform.sqlite3"
    server = make_server(
        "127.0.0.1", 0, FakePlatformApp(db_path), threaded=True, request_handler=QuietHandler
    )
    # shutdown() waits for the loop's next poll: keep it short, each test starts a fake.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    fake = FakePlatform(f"http://127.0.0.1:{server.server_port}", db_path)
    try:
        yield fake
    finally:
        fake.close()
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake X, Mastodon and Bluesky.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", type=Path, required=True)
    options = parser.parse_args()
    server = make_server(
        "127.0.0.1", options.port, FakePlatformApp(options.db), threaded=True,
        request_handler=QuietHandler,
    )  # fmt: skip
    print(f"http://127.0.0.1:{server.server_port}", flush=True)  # the caller reads the port
    server.serve_forever()


if __name__ == "__main__":
    main()
