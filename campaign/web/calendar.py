"""Calendar week and month views, and the private iCal feed of planned posts."""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse

from campaign.models import Organisation, Role
from campaign.services import NotFound, PermissionDenied, ServiceError, calendar_view, campaigns
from campaign.services import calendar_subscription as subscription
from campaign.services.calendar_feed import build_calendar
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now

bp = Blueprint("calendar", __name__)
_ID = re.compile(r"[0-9]{1,10}")
_MAX_ID = 2**31 - 1


class ActionForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token, for buttons that change state."""


def post_href(post_id: int, delivery_id: int, external: bool = False) -> str:
    """The post's page; the delivery's page until the post page exists."""
    if "planning.post_detail" in current_app.view_functions:
        return url_for("planning.post_detail", post_id=post_id, _external=external)
    return url_for("publishing.delivery", delivery_id=delivery_id, _external=external)


def _channel_filter() -> int | None:
    """?channel=ID, or None for every channel; anything that names no channel id is a 404."""
    raw = request.args.get("channel", "").strip()
    if not raw:
        return None
    if not _ID.fullmatch(raw) or int(raw) > _MAX_ID:
        abort(404)
    return int(raw)


@bp.route("/calendar")
@role_required(Role.STAFF)
def index() -> Any:
    db, organisation = get_session(), member().membership.organisation
    view = request.args.get("view", "week")
    view = view if view in calendar_view.VIEWS else "week"
    anchor, problem = calendar_view.local_today(organisation.timezone, now()), None
    if request.args.get("date"):
        try:
            anchor = calendar_view.parse_day(request.args["date"])
        except ValueError as exc:
            problem = str(exc)
    try:
        period = calendar_view.calendar_period(
            db, organisation.id, organisation.timezone, view, anchor, now(), _channel_filter()
        )
    except NotFound:
        abort(404)
    page = render_template(
        "calendar/index.html",
        period=period,
        problem=problem,
        channels=campaigns.list_channels(db, organisation.id),
        status_labels=calendar_view.STATUS_LABELS,
        post_href=post_href,
    )
    return (page, 400) if problem else page


@bp.route("/calendar/<string(maxlength=64):secret>.ics")
def feed(secret: str) -> Response:
    """The organisation's planned posts for calendar apps; the secret in the address is the key."""
    db = get_session()
    organisation = subscription.organisation_for_secret(db, secret)
    if organisation is None:
        abort(404)
    events = subscription.feed_events(
        db, organisation.id, now(), lambda p, d: post_href(p, d, external=True)
    )
    body = build_calendar(
        events, organisation.timezone, name=f"{organisation.name}: planned posts", now_utc=now()
    )
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = 'inline; filename="planned-posts.ics"'
    # The address is a credential: keep the answer out of shared caches and search engines.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.route("/settings/calendar-feed")
@role_required(Role.ADMIN)
def feed_settings() -> str:
    organisation: Organisation = member().membership.organisation
    secret = organisation.calendar_secret
    return render_template(
        "calendar/feed.html",
        feed_url=url_for("calendar.feed", secret=secret, _external=True) if secret else None,
    )


def _feed_action(action: Any, done: str) -> BaseResponse:
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    try:
        action(db, member().actor(), now())
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        flash(str(exc), "error")
    else:
        db.commit()
        flash(done, "success")
    return redirect(url_for("calendar.feed_settings"))


@bp.route("/settings/calendar-feed/regenerate", methods=["POST"])
@role_required(Role.ADMIN)
def regenerate_feed() -> BaseResponse:
    return _feed_action(
        subscription.regenerate_feed_secret,
        "The feed has a new address. Any earlier address stopped working; subscribe again "
        "with the one below.",
    )


@bp.route("/settings/calendar-feed/off", methods=["POST"])
@role_required(Role.ADMIN)
def turn_off_feed() -> BaseResponse:
    return _feed_action(
        subscription.turn_off_feed,
        "The calendar feed is off: its address no longer works.",
    )
