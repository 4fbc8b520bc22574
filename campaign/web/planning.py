"""Writing and scheduling posts, the post page with its history, and approvals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from campaign.models import Organisation, Post, Role
from campaign.services import (
    NotFound,
    PermissionDenied,
    ServiceError,
    campaigns,
    engagement_view,
    posts,
)
from campaign.services.audit import Actor
from campaign.services.local_time import as_zone, format_local
from campaign.services.posts import Plan, PostInput
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now, state

bp = Blueprint("planning", __name__)

POST_STATES = {
    "draft": "Draft",
    "pending_approval": "Waiting for approval",
    "approved": "Approved",
    "rejected": "Rejected",
    "cancelled": "Cancelled",
}
# The drafts page's tabs: query value, post status, label.
DRAFT_TABS = (
    ("draft", "draft", "Drafts"),
    ("pending", "pending_approval", "Waiting for approval"),
    ("rejected", "rejected", "Rejected"),
)
HISTORY_LABELS = {
    "post.created": "Created",
    "post.edited": "Edited",
    "post.submitted": "Submitted",
    "post.approved": "Approved",
    "post.rejected": "Rejected",
    "post.scheduled": "Scheduled",
    "post.cancelled": "Cancelled",
    "post.blackout_override": "Blackout overridden",
}
MAX_TEXT = 20_000  # far beyond any network; keeps a pasted novel from reaching the checkers


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"post_states": POST_STATES, "history_labels": HISTORY_LABELS}


def _organisation() -> Organisation:
    found: Organisation = member().membership.organisation
    return found


def _form_input() -> PostInput:
    form = request.form
    ids = []
    for raw in form.getlist("channel_ids"):
        try:
            ids.append(int(raw))
        except ValueError:
            continue  # a tampered value; "choose a channel" covers it if nothing is left
    variant = form.get("variant_id", "").strip()
    return PostInput(
        text=form.get("text", "")[:MAX_TEXT],
        channel_ids=tuple(ids),
        when=form.get("when", "").strip() or None,
        use_queue=form.get("schedule") == "queue",
        link_url=form.get("link_url", "").strip() or None,
        variant_id=int(variant) if variant.isdigit() and len(variant) < 10 else None,
        blackout_override=form.get("blackout_override", "").strip() or None,
    )


def _local_input(value: dt.datetime | None, zone: str) -> str:
    """A stored instant as the value of a datetime-local input, in the organisation's zone."""
    if value is None:
        return ""
    return value.astimezone(as_zone(zone)).strftime("%Y-%m-%dT%H:%M")


def _compose(post: Post | None, data: PostInput | None, errors: list[str], status: int) -> Any:
    db, org = get_session(), _organisation()
    variant = None
    if post is None and data is None and request.args.get("variant_id", "").isdigit():
        try:
            variant = posts.variant_of(db, org.id, int(request.args["variant_id"]))
        except NotFound:
            abort(404)
    if data is None and post is not None:
        data = PostInput(
            text=post.text,
            channel_ids=tuple(d.channel_id for d in post.deliveries if d.status != "cancelled"),
            when=_local_input(post.scheduled_for, org.timezone),
            link_url=post.link_url,
            variant_id=post.variant_id,
            blackout_override=post.blackout_override,
        )
    elif data is None:
        data = PostInput(
            text=variant.text if variant else "",
            channel_ids=(),
            link_url=variant.message.link_url if variant else None,
            variant_id=variant.id if variant else None,
            use_queue=True,
        )
    channels = [c for c in campaigns.list_channels(db, org.id) if c.status != "disabled"]
    body = render_template(
        "planning/compose.html",
        post=post,
        data=data,
        variant=variant,
        channels=channels,
        errors=errors,
        zone=org.timezone,
        needs_approval=any(c.requires_approval for c in channels if c.id in data.channel_ids)
        and not member().role.covers(Role.MANAGER),
    )
    return body, status


@bp.route("/posts/new", methods=["GET", "POST"])
@role_required(Role.STAFF)
def new_post() -> Any:
    if request.method == "GET":
        return _compose(None, None, [], 200)
    db, data = get_session(), _form_input()
    submit = request.form.get("action") == "submit"
    try:
        saved = posts.create_post(db, _organisation(), data, member().actor(), now(), submit)
    except NotFound:
        abort(404)
    except ServiceError as exc:
        return _compose(None, data, _reasons(exc), 422)
    db.commit()
    _flash_saved(saved.post, saved.warnings, saved.notes, "Saved")
    return redirect(url_for("planning.post_detail", post_id=saved.post.id))


@bp.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
@role_required(Role.STAFF)
def edit_post(post_id: int) -> Any:
    db, org = get_session(), _organisation()
    post = _get(post_id)
    if request.method == "GET":
        return _compose(post, None, [], 200)
    data = _form_input()
    try:
        saved = posts.update_post(db, org, post_id, data, member().actor(), now())
    except NotFound:
        abort(404)
    except ServiceError as exc:
        db.rollback()
        return _compose(_get(post_id), data, _reasons(exc), 422)
    if request.form.get("action") == "submit" and saved.post.status in ("draft", "rejected"):
        try:
            posts.submit_post(db, org, post_id, member().actor(), now())
        except ServiceError as exc:
            flash(str(exc), "error")
    db.commit()
    _flash_saved(saved.post, saved.warnings, saved.notes, "Changes saved")
    return redirect(url_for("planning.post_detail", post_id=post_id))


@bp.route("/posts/preview", methods=["POST"])
@role_required(Role.STAFF)
def preview() -> Any:
    """The htmx preview: per-channel lengths, times, warnings, refusals; nothing is saved."""
    db, org = get_session(), _organisation()
    post_id = request.form.get("post_id", "")
    data = _form_input()
    try:
        plan = posts.check(db, org, data, now(), int(post_id) if post_id.isdigit() else None)
    except NotFound:
        plan = Plan(text=data.text, channels=[], checks=[], times={},
                    problems=["That framing no longer exists."])  # fmt: skip
    db.rollback()
    times = {cid: format_local(r.utc, org.timezone) for cid, r in plan.times.items()}
    prefixes = tuple(f"{c.display_name}: " for c in plan.channels)
    approval = [c.display_name for c in plan.channels if c.requires_approval]
    return render_template(
        "planning/_preview.html",
        plan=plan,
        rows=list(zip(plan.channels, plan.checks, strict=True)),
        times=times,
        other_problems=[p for p in plan.problems if not prefixes or not p.startswith(prefixes)],
        needs_approval=bool(approval) and not member().role.covers(Role.MANAGER),
        approval_channels=approval,
    )


@bp.route("/posts/<int:post_id>")
@role_required(Role.STAFF)
def post_detail(post_id: int) -> str:
    post = _get(post_id)
    events = posts.history(get_session(), member().organisation_id, post_id)
    return render_template(
        "planning/post.html",
        post=post,
        events=events,
        engagement=engagement_view.post_engagement(
            get_session(), post.deliveries, state().settings.app.base_url
        ),
        figure_labels=engagement_view.FIGURE_LABELS,
        source_labels=engagement_view.SOURCE_LABELS,
        metric_ages=state().settings.metrics.ages,
        needs_approval=any(
            d.channel.requires_approval for d in post.deliveries if d.status != "cancelled"
        ),
        editable=post.status != "cancelled"
        and all(d.status in ("scheduled", "waiting", "cancelled") for d in post.deliveries),
    )


@bp.route("/posts/<int:post_id>/submit", methods=["POST"])
@role_required(Role.STAFF)
def submit(post_id: int) -> Response:
    return _act(
        post_id, "submit", lambda db, org, actor: posts.submit_post(db, org, post_id, actor, now())
    )


@bp.route("/posts/<int:post_id>/approve", methods=["POST"])
@role_required(Role.MANAGER)
def approve(post_id: int) -> Response:
    comment = request.form.get("comment", "")[:2000]
    return _act(
        post_id,
        "approve",
        lambda db, org, actor: posts.approve_post(db, org, post_id, actor, now(), comment),
    )


@bp.route("/posts/<int:post_id>/reject", methods=["POST"])
@role_required(Role.MANAGER)
def reject(post_id: int) -> Response:
    comment = request.form.get("comment", "")[:2000]
    return _act(
        post_id,
        "reject",
        lambda db, org, actor: posts.reject_post(db, org, post_id, actor, now(), comment),
    )


@bp.route("/posts/<int:post_id>/cancel", methods=["POST"])
@role_required(Role.STAFF)
def cancel(post_id: int) -> Response:
    return _act(
        post_id, "cancel", lambda db, org, actor: posts.cancel_post(db, org, post_id, actor, now())
    )


def _act(
    post_id: int, action: str, change: Callable[[Session, Organisation, Actor], Post]
) -> Response:
    db = get_session()
    try:
        post = change(db, _organisation(), member().actor())
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("planning.post_detail", post_id=post_id))
    db.commit()
    flash(_done(action, post), "success")
    if request.form.get("next", "") == "approvals":
        return redirect(url_for("planning.drafts", view="pending"))
    return redirect(url_for("planning.post_detail", post_id=post_id))


@bp.route("/posts/drafts")
@role_required(Role.STAFF)
def drafts() -> str:
    db, org_id = get_session(), member().organisation_id
    chosen = request.args.get("view", "draft")
    tab = next((t for t in DRAFT_TABS if t[0] == chosen), DRAFT_TABS[0])
    counts = {key: len(posts.list_posts(db, org_id, status=st)) for key, st, _ in DRAFT_TABS}
    return render_template(
        "planning/drafts.html",
        tabs=DRAFT_TABS,
        tab=tab[0],
        counts=counts,
        found=posts.list_posts(db, org_id, status=tab[1]),
    )


def _get(post_id: int) -> Post:
    try:
        return posts.get_post(get_session(), member().organisation_id, post_id)
    except NotFound:
        abort(404)


def _reasons(exc: ServiceError) -> list[str]:
    return exc.problems if isinstance(exc, posts.Refused) else [str(exc)]


def _flash_saved(post: Post, warnings: list[str], notes: list[str], verb: str) -> None:
    state = POST_STATES[post.status].lower()
    flash(f"{verb}: the post is {state}.", "success")
    for note in notes:
        flash(note, "info")
    for warning in warnings:
        flash(warning, "warning")


def _done(action: str, post: Post) -> str:
    if action == "submit":
        if post.status == "pending_approval":
            return "Submitted: a manager will approve or reject it."
        return "Submitted: the post is scheduled and will be published at its time."
    return {
        "approve": "Approved: the post is scheduled and will be published at its time.",
        "reject": "Rejected: its author will see your comment.",
        "cancel": "Cancelled: it will not be published anywhere it was not yet sent.",
    }[action]
