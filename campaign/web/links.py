"""The click redirector, `/l/<code>`: the one public, unauthenticated hot path.

The code is the credential (nine random letters and digits). The target only ever comes from
the stored link; any query string on /l/ is ignored. A person's GET is recorded as one click
and a preview fetcher's or crawler's hit as one bot hit, each in one short transaction, and a
recording that fails (database locked or down) is logged while the visitor is still sent on.
No cookie is set and no address is stored (see campaign.services.click_privacy).

Headers: `Cache-Control: no-store` (a cached redirect would hide clicks) and
`Referrer-Policy: no-referrer`: the UTM parameters tell the target where the visitor came from,
so the page (and instance) the visitor clicked on is not passed on as well.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from flask.signals import request_finished
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from campaign.services.click_privacy import SaltCache, utc_day, visitor_hash
from campaign.services.link_bots import classify
from campaign.services.links import (
    LinkTarget,
    looks_like_code,
    record_bot_hit,
    record_click,
    target_for,
)
from campaign.web.context import get_session, now, state

bp = Blueprint("links", __name__)
log = logging.getLogger(__name__)

_EXTENSION = "campaign.links"
_MAX_CACHED = 10_000
_NOT_FOUND = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Link not found</title>"
    "<p>This link is not known here. It may have been mistyped or removed.</p></html>"
)
_BUSY = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Try again</title>"
    "<p>This link cannot be looked up just now. Please try again in a moment.</p></html>"
)


class _Runtime:
    """Per-app caches: targets by code (for `cache_seconds`) and the daily salts."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.salts = SaltCache()
        self._targets: dict[str, tuple[float, LinkTarget]] = {}
        self._lock = threading.Lock()
        # SQLite lets one writer in at a time and makes the others poll with growing sleeps
        # (up to 100 ms each); queueing this process's click writes on a lock hands over at once.
        self.sqlite_writes = threading.Lock()

    def cached(self, code: str) -> LinkTarget | None:
        found = self._targets.get(code)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def remember(self, code: str, target: LinkTarget) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._targets) >= _MAX_CACHED:
                self._targets.clear()
            self._targets[code] = (time.monotonic() + self.ttl, target)


def _runtime(app: Flask) -> _Runtime:
    found: _Runtime | None = app.extensions.get(_EXTENSION)
    if found is None:
        found = app.extensions.setdefault(
            _EXTENSION, _Runtime(state(app).settings.links.cache_seconds)
        )
    return found


def _page(body: str, status: int) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _lookup(session: Session, runtime: _Runtime, code: str) -> LinkTarget | None:
    target = runtime.cached(code)
    if target is not None:
        return target
    try:
        target = target_for(session, code, now())
        # End the read at once: on SQLite every transaction holds the write lock.
        session.commit()
    except BaseException:
        session.rollback()
        raise
    if target is not None:
        runtime.remember(code, target)
    return target


def _record(session: Session, runtime: _Runtime, target: LinkTarget) -> None:
    moment = now()
    agent = request.headers.get("User-Agent")
    bot = classify(request.method, agent)
    on_sqlite = session.get_bind().dialect.name == "sqlite"
    st = state()
    # The write goes straight through the engine (half the cost of an ORM session); tests pin
    # one session for the whole request, and then it is used.
    writer = session if st.session_override is not None else st.engine
    with runtime.sqlite_writes if on_sqlite else contextlib.nullcontext():
        if bot is not None:
            record_bot_hit(writer, target.link_id, moment, bot, agent)
            return
        salt = runtime.salts.get(session, utc_day(moment), moment)
        hashed = visitor_hash(salt, request.remote_addr, agent)
        record_click(writer, target.link_id, moment, hashed)


@bp.route("/l/<code>", methods=["GET", "HEAD"])
def follow(code: str) -> Response:
    """302 to the stored target with UTM parameters; 404 for an unknown code."""
    if not looks_like_code(code):
        return _page(_NOT_FOUND, 404)
    runtime = _runtime(current_app)
    session = get_session()
    try:
        target = _lookup(session, runtime, code)
    except SQLAlchemyError:
        log.exception("tracked link %s: the target could not be looked up", code)
        return _page(_BUSY, 503)
    if target is None:
        return _page(_NOT_FOUND, 404)
    try:
        _record(session, runtime, target)
    except SQLAlchemyError:
        # The visitor is sent on regardless; the lost click is in the log.
        session.rollback()
        log.exception("tracked link %s: the click could not be recorded", code)
    response = Response(status=302)
    response.headers["Location"] = target.location
    response.headers["Cache-Control"] = "no-store"
    return response


def _private_headers(sender: Flask, response: Response, **_extra: Any) -> None:
    # Runs after every after_request hook and after the session is saved, so it wins over the
    # site-wide Referrer-Policy and drops the refreshed session cookie of a signed-in member:
    # the redirector never sets a cookie.
    if request.blueprint == bp.name:
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.remove("Set-Cookie")


@bp.record_once
def _on_register(setup: Any) -> None:
    request_finished.connect(_private_headers, setup.app, weak=False)
