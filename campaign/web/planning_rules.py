"""Settings → Planning rules: the framing vocabulary and the duplicate guard's window."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from campaign.models import Organisation, Role
from campaign.services import NotFound, PermissionDenied, ServiceError, drafting, organisations
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now

bp = Blueprint("planning_rules", __name__, url_prefix="/settings/planning")


@bp.route("/")
@role_required(Role.MANAGER)
def index() -> str:
    db, me = get_session(), member()
    org: Organisation = me.membership.organisation
    return render_template(
        "planning_rules/index.html",
        organisation=org,
        tags=drafting.framing_vocabulary(db, org.id, include_archived=True),
        is_admin=me.role.covers(Role.ADMIN),
    )


@bp.route("/duplicate-window", methods=["POST"])
@role_required(Role.ADMIN)
def duplicate_window() -> Response:
    raw = request.form.get("hours", "").strip()
    hours = int(raw) if raw.isdigit() and len(raw) < 6 else -1
    return _apply(
        lambda db, org_id, actor: organisations.set_duplicate_window(
            db, org_id, hours, actor, now()
        ),
        "The duplicate guard's window was saved.",
    )


@bp.route("/framing-tags", methods=["POST"])
@role_required(Role.ADMIN)
def add_tag() -> Response:
    key, label = request.form.get("key", ""), request.form.get("label", "")
    return _apply(
        lambda db, org_id, actor: drafting.add_framing_tag(db, org_id, key, label, actor, now()),
        "The framing tag was added.",
    )


@bp.route("/framing-tags/<int:tag_id>", methods=["POST"])
@role_required(Role.ADMIN)
def edit_tag(tag_id: int) -> Response:
    label, archived = request.form.get("label", ""), request.form.get("archived") == "yes"
    return _apply(
        lambda db, org_id, actor: drafting.update_framing_tag(
            db, org_id, tag_id, label, archived, actor, now()
        ),
        "The framing tag was saved.",
    )


def _apply(change: Any, done: str) -> Response:
    db, me = get_session(), member()
    try:
        change(db, me.organisation_id, me.actor())
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        db.rollback()
        flash(str(exc), "error")
    else:
        db.commit()
        flash(done, "success")
    return redirect(url_for("planning_rules.index"))
