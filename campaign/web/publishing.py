"""Publishing as people see it: the posts lists, one delivery, the timeline, channel health."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import URLField
from wtforms.validators import Length

from campaign.models import Role
from campaign.services import NotFound, PermissionDenied, ServiceError, deliveries
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now, state

bp = Blueprint("publishing", __name__)

# The posts page's tabs: query value, service list, label.
TABS = (
    ("upcoming", "upcoming", "Upcoming"),
    ("attention", "attention", "Needs attention"),
    ("published", "published", "Published"),
    ("manual", "manual_due", "To post by hand"),
)
STATE_LABELS = {
    "waiting": "Waiting for the part before it",
    "scheduled": "Scheduled",
    "publishing": "Publishing now",
    "published": "Published",
    "unknown": "Checking with the platform",
    "needs_review": "Needs your check",
    "failed": "Failed",
    "missed": "Missed",
    "cancelled": "Cancelled",
}
STATE_EXPLANATIONS = {
    "waiting": "A later part of a thread: it is published as a reply once the part before it"
    " is published, and not at all if that part fails, is missed or is cancelled.",
    "scheduled": "It will be published automatically at the due time. You can cancel it until"
    " then.",
    "publishing": "A worker is sending it to the platform right now, so it can no longer be"
    " changed or cancelled. Its state will change within a minute or two.",
    "published": "The platform has it. Nothing more will happen to this post.",
    "unknown": "The platform did not confirm whether it received this post. We are checking"
    " before trying again, so it is never posted twice.",
    "needs_review": "We could not find out whether the platform published this post, so we"
    " stopped rather than risk posting it twice. Check the account: if the post is there, give"
    " its address below; if it is not, a manager can publish it again.",
    "failed": "It was not published: the platform refused it, or it still failed after several"
    " tries. It will not be retried by itself. A manager can publish it again once the cause"
    " below is fixed.",
    "missed": "It was not published in time, and it is never sent late without a person"
    " deciding. A manager can publish it again now if it is still wanted.",
    "cancelled": "It was cancelled and will not be published.",
}
MANUAL_EXPLANATION = (
    "This channel is posted by hand: when it is due, copy the text below, post it on the"
    " account, then mark it as posted with the post's address."
)
ATTEMPT_KINDS = {"publish": "Publish", "lookup": "Check"}
ATTEMPT_OUTCOMES = {
    "pending": "In progress, or the worker stopped",
    "published": "Published",
    "retry": "Refused for now; tried again later",
    "failed": "Failed",
    "unknown": "No confirmation from the platform",
    "duplicate": "The platform said it already had it",
    "found": "Found on the platform",
    "not_found": "Not on the platform",
    "lookup_unavailable": "Could not check",
    "lease_lost": "Another worker took over",
    "lease_expired": "The worker stopped",
    "released": "Given back before sending",
}


class ActionForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token, for buttons that change state."""


class PostedForm(FlaskForm):  # type: ignore[misc]
    # The service checks the address and names what is wrong; this only bounds the input.
    url = URLField("Address of the published post", validators=[Length(max=4000)])


def web_href(url: str | None) -> str | None:
    """A link target safe to put in href: http(s) or a path on this site, else nothing."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    return url if url.startswith("/") and not url.startswith("//") else None


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "state_labels": STATE_LABELS,
        "attempt_kinds": ATTEMPT_KINDS,
        "attempt_outcomes": ATTEMPT_OUTCOMES,
        "web_href": web_href,
    }


@bp.route("/posts")
@role_required(Role.STAFF)
def posts() -> str:
    db, org_id = get_session(), member().organisation_id
    chosen = request.args.get("view", "upcoming")
    tab = next((t for t in TABS if t[0] == chosen), TABS[0])
    return render_template(
        "publishing/posts.html",
        tabs=TABS,
        tab=tab[0],
        deliveries=deliveries.list_deliveries(db, org_id, tab[1], now=now()),
        attention=sum(deliveries.count_attention(db, org_id).values()),
        manual_due=deliveries.count_manual_due(db, org_id, now()),
    )


@bp.route("/posts/deliveries/<int:delivery_id>")
@role_required(Role.STAFF)
def delivery(delivery_id: int) -> str:
    try:
        found = deliveries.get_delivery(get_session(), member().organisation_id, delivery_id)
    except NotFound:
        abort(404)
    text = deliveries.manual_text(get_session(), found, state().settings.app.base_url)
    get_session().commit()  # a manual post's tracked links, made on first view
    return render_template(
        "publishing/delivery.html",
        delivery=found,
        explanation=MANUAL_EXPLANATION
        if found.channel.kind == "manual" and found.status == "scheduled"
        else STATE_EXPLANATIONS[found.status],
        manual_text=text,
        button=ActionForm(),
        posted_form=PostedForm(formdata=None),
    )


def _act(action: Callable[[], object], done: str, back: str) -> Response:
    """Run one service call and commit it; foreign ids are 404, refusals are flashed."""
    try:
        action()
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        flash(str(exc), "error")
    else:
        get_session().commit()
        flash(done, "success")
    return redirect(back)


def _delivery_action(delivery_id: int, form: FlaskForm, call: Any, done: str) -> Response:
    if not form.validate_on_submit():
        abort(400)
    org_id, actor = member().organisation_id, member().actor()
    return _act(
        lambda: call(get_session(), org_id, delivery_id, actor, now()),
        done,
        url_for("publishing.delivery", delivery_id=delivery_id),
    )


@bp.route("/posts/deliveries/<int:delivery_id>/cancel", methods=["POST"])
@role_required(Role.STAFF)
def cancel(delivery_id: int) -> Response:
    return _delivery_action(
        delivery_id, ActionForm(), deliveries.cancel_delivery, "Cancelled: it will not be posted."
    )


@bp.route("/posts/deliveries/<int:delivery_id>/mark-posted", methods=["POST"])
@role_required(Role.STAFF)
def mark_posted(delivery_id: int) -> Response:
    form = PostedForm()
    url = form.url.data or ""
    return _delivery_action(
        delivery_id,
        form,
        lambda db, org, d_id, actor, at: deliveries.mark_posted(db, org, d_id, url, actor, at),
        "Marked as posted. Thank you.",
    )


@bp.route("/posts/deliveries/<int:delivery_id>/publish-again", methods=["POST"])
@role_required(Role.MANAGER)
def publish_again(delivery_id: int) -> Response:
    return _delivery_action(
        delivery_id,
        ActionForm(),
        deliveries.publish_again,
        "Scheduled again for now, with the same key: the next worker pass will publish it.",
    )


@bp.route("/timeline")
@role_required(Role.STAFF)
def timeline() -> str:
    db, org_id = get_session(), member().organisation_id
    channel_id = request.args.get("channel", type=int)
    try:
        entries = deliveries.list_timeline(db, org_id, channel_id)
    except NotFound:
        abort(404)
    return render_template(
        "publishing/timeline.html",
        entries=entries,
        channels=deliveries.list_outbox_channels(db, org_id),
        channel_id=channel_id,
    )


@bp.route("/settings/channels")
@role_required(Role.MANAGER)
def channels() -> str:
    health = deliveries.channel_health(get_session(), member().organisation_id, now())
    return render_template("publishing/channels.html", health=health, button=ActionForm())


def _channel_action(channel_id: int, call: Any, done: str) -> Response:
    if not ActionForm().validate_on_submit():
        abort(400)
    org_id, actor = member().organisation_id, member().actor()
    return _act(
        lambda: call(get_session(), org_id, channel_id, actor, now()),
        done,
        url_for("publishing.channels"),
    )


@bp.route("/settings/channels/<int:channel_id>/resume", methods=["POST"])
@role_required(Role.ADMIN)
def resume_channel(channel_id: int) -> Response:
    return _channel_action(
        channel_id, deliveries.resume_channel, "Channel resumed: due posts will be published."
    )


@bp.route("/settings/channels/<int:channel_id>/pause", methods=["POST"])
@role_required(Role.MANAGER)
def pause_channel(channel_id: int) -> Response:
    return _channel_action(
        channel_id, deliveries.pause_channel, "Channel paused: nothing is published to it."
    )
