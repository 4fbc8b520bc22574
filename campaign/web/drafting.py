"""Writing campaigns, their messages and each message's framings (variants), under Plan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from campaign.models import AUDIENCES, Role
from campaign.services import NotFound, PermissionDenied, ServiceError, campaigns, drafting
from campaign.services.drafting import CampaignInput, MessageInput, VariantInput
from campaign.services.text_rules import ChannelLimits, check_text
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now

bp = Blueprint("drafting", __name__, url_prefix="/plan")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"audiences": AUDIENCES}


def _date(name: str) -> dt.date | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ServiceError(f"{raw!r} is not a date; write it like 2026-09-28.") from None


def _campaign_input() -> CampaignInput:
    owner = request.form.get("owner_id", "").strip()
    return CampaignInput(
        name=request.form.get("name", ""),
        description=request.form.get("description", ""),
        goal=request.form.get("goal", ""),
        audience=request.form.get("audience", "").strip() or None,
        starts_on=_date("starts_on"),
        ends_on=_date("ends_on"),
        owner_id=int(owner) if owner.isdigit() and len(owner) < 10 else None,
    )


def _message_input() -> MessageInput:
    form = request.form
    return MessageInput(
        title=form.get("title", ""),
        link_url=form.get("link_url", "").strip() or None,
        resource_name=form.get("resource_name", "").strip() or None,
        intent=form.get("intent", ""),
        context=form.get("context", ""),
    )


def _variant_input() -> VariantInput:
    form = request.form
    return VariantInput(
        label=form.get("label", ""),
        text=form.get("text", ""),
        audience=form.get("audience", ""),
        framing_tags=tuple(form.getlist("framing_tags")),
    )


def _run(save: Callable[[], Any], form: Callable[[str], Any], done: Callable[[Any], str]) -> Any:
    """Save and go on, or show the form again with the reason (the input kept)."""
    db = get_session()
    try:
        saved = save()
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        db.rollback()
        return form(str(exc)), 422
    db.commit()
    return redirect(done(saved))


def _members() -> list[Any]:
    from campaign.services import accounts

    return accounts.list_members(get_session(), member().organisation_id)


# --- campaigns ------------------------------------------------------------------------------


@bp.route("/campaigns/new", methods=["GET", "POST"])
@role_required(Role.STAFF)
def new_campaign() -> Any:
    def form(error: str = "") -> str:
        return render_template(
            "drafting/campaign_form.html", campaign=None, values=request.form, error=error,
            members=_members(),
        )  # fmt: skip

    if request.method == "GET":
        return form()
    org_id = member().organisation_id
    return _run(
        lambda: drafting.create_campaign(
            get_session(), org_id, _campaign_input(), member().actor(), now()
        ),
        form,
        lambda c: url_for("main.campaign_detail", campaign_id=c.id),
    )


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@role_required(Role.STAFF)
def edit_campaign(campaign_id: int) -> Any:
    db, org_id = get_session(), member().organisation_id
    try:
        found = campaigns.get_campaign(db, org_id, campaign_id)
    except NotFound:
        abort(404)

    def form(error: str = "") -> str:
        values = request.form if request.method == "POST" else _campaign_values(found)
        return render_template(
            "drafting/campaign_form.html", campaign=found, values=values, error=error,
            members=_members(),
        )  # fmt: skip

    if request.method == "GET":
        return form()
    return _run(
        lambda: drafting.update_campaign(
            db, org_id, campaign_id, _campaign_input(), member().actor(), now()
        ),
        form,
        lambda c: url_for("main.campaign_detail", campaign_id=c.id),
    )


@bp.route("/campaigns/<int:campaign_id>/archive", methods=["POST"])
@role_required(Role.STAFF)
def archive_campaign(campaign_id: int) -> Response:
    done = "Archived: the campaign is kept, read-only, for its reports."
    return _campaign_change(campaign_id, drafting.archive_campaign, done, url_for("main.plan"))


@bp.route("/campaigns/<int:campaign_id>/restore", methods=["POST"])
@role_required(Role.STAFF)
def restore_campaign(campaign_id: int) -> Response:
    done = "Restored: the campaign is back on the Plan page and can be changed."
    page = url_for("main.campaign_detail", campaign_id=campaign_id)
    return _campaign_change(campaign_id, drafting.restore_campaign, done, page)


def _campaign_change(campaign_id: int, change: Any, done: str, then: str) -> Response:
    db, org_id = get_session(), member().organisation_id
    try:
        change(db, org_id, campaign_id, member().actor(), now())
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(str(exc), "error")
        return redirect(url_for("main.campaign_detail", campaign_id=campaign_id))
    db.commit()
    flash(done, "success")
    return redirect(then)


def _campaign_values(found: Any) -> dict[str, str]:
    return {
        "name": found.name,
        "description": found.description,
        "goal": found.goal,
        "audience": found.audience or "",
        "starts_on": found.starts_on.isoformat() if found.starts_on else "",
        "ends_on": found.ends_on.isoformat() if found.ends_on else "",
        "owner_id": str(found.owner_id or ""),
    }


# --- messages -------------------------------------------------------------------------------


@bp.route("/campaigns/<int:campaign_id>/messages/new", methods=["GET", "POST"])
@role_required(Role.STAFF)
def new_message(campaign_id: int) -> Any:
    db, org_id = get_session(), member().organisation_id
    try:
        found = campaigns.get_campaign(db, org_id, campaign_id)
    except NotFound:
        abort(404)

    def form(error: str = "") -> str:
        return render_template(
            "drafting/message_form.html", campaign=found, message=None, values=request.form,
            error=error,
        )  # fmt: skip

    if request.method == "GET":
        return form()
    return _run(
        lambda: drafting.create_message(
            db, org_id, campaign_id, _message_input(), member().actor(), now()
        ),
        form,
        lambda m: url_for("drafting.new_variant", message_id=m.id),
    )


@bp.route("/messages/<int:message_id>/edit", methods=["GET", "POST"])
@role_required(Role.STAFF)
def edit_message(message_id: int) -> Any:
    db, org_id = get_session(), member().organisation_id
    try:
        found = drafting.get_message(db, org_id, message_id)
    except NotFound:
        abort(404)

    def form(error: str = "") -> str:
        values = request.form if request.method == "POST" else {
            "title": found.title, "link_url": found.link_url or "",
            "resource_name": found.resource_name or "", "intent": found.intent,
            "context": found.context,
        }  # fmt: skip
        return render_template(
            "drafting/message_form.html", campaign=found.campaign, message=found, values=values,
            error=error,
        )  # fmt: skip

    if request.method == "GET":
        return form()
    return _run(
        lambda: drafting.update_message(
            db, org_id, message_id, _message_input(), member().actor(), now()
        ),
        form,
        lambda m: url_for("main.campaign_detail", campaign_id=m.campaign_id),
    )


@bp.route("/messages/<int:message_id>/delete", methods=["POST"])
@role_required(Role.STAFF)
def delete_message(message_id: int) -> Response:
    db, org_id = get_session(), member().organisation_id
    try:
        campaign_id = drafting.get_message(db, org_id, message_id).campaign_id
        drafting.delete_message(db, org_id, message_id, member().actor(), now())
    except NotFound:
        abort(404)
    except ServiceError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("drafting.edit_message", message_id=message_id))
    db.commit()
    flash("The message and its framings were deleted.", "success")
    return redirect(url_for("main.campaign_detail", campaign_id=campaign_id))


# --- variants (framings) --------------------------------------------------------------------


def _variant_form(message: Any, variant: Any, values: Any, error: str) -> str:
    db, org_id = get_session(), member().organisation_id
    return render_template(
        "drafting/variant_form.html",
        message=message,
        variant=variant,
        values=values,
        chosen=set(values.getlist("framing_tags") if hasattr(values, "getlist") else values.get(
            "framing_tags", ())),
        error=error,
        vocabulary=drafting.framing_vocabulary(db, org_id),
        warnings=drafting.message_warnings(message),
    )  # fmt: skip


@bp.route("/messages/<int:message_id>/variants/new", methods=["GET", "POST"])
@role_required(Role.STAFF)
def new_variant(message_id: int) -> Any:
    db, org_id = get_session(), member().organisation_id
    try:
        found = drafting.get_message(db, org_id, message_id)
    except NotFound:
        abort(404)
    if request.method == "GET":
        audience = found.campaign.audience or "students"
        return _variant_form(found, None, {"audience": audience, "text": ""}, "")
    after = request.form.get("after", "")
    return _run(
        lambda: drafting.create_variant(
            db, org_id, message_id, _variant_input(), member().actor(), now()
        ),
        lambda error: _variant_form(found, None, request.form, error),
        lambda v: (
            url_for("drafting.new_variant", message_id=message_id)
            if after == "another"
            else url_for("main.campaign_detail", campaign_id=found.campaign_id)
            + f"#message-{v.message_id}"
        ),
    )


@bp.route("/variants/<int:variant_id>/edit", methods=["GET", "POST"])
@role_required(Role.STAFF)
def edit_variant(variant_id: int) -> Any:
    db, org_id = get_session(), member().organisation_id
    try:
        found = drafting.get_variant(db, org_id, variant_id)
    except NotFound:
        abort(404)
    if request.method == "GET":
        values = {
            "label": found.label, "text": found.text, "audience": found.audience,
            "framing_tags": [t.key for t in found.framing_tags],
        }  # fmt: skip
        return _variant_form(found.message, found, values, "")
    return _run(
        lambda: drafting.update_variant(
            db, org_id, variant_id, _variant_input(), member().actor(), now()
        ),
        lambda error: _variant_form(found.message, found, request.form, error),
        lambda v: (
            url_for("main.campaign_detail", campaign_id=found.message.campaign_id)
            + f"#message-{v.message_id}"
        ),
    )


@bp.route("/variants/<int:variant_id>/delete", methods=["POST"])
@role_required(Role.STAFF)
def delete_variant(variant_id: int) -> Response:
    db, org_id = get_session(), member().organisation_id
    try:
        campaign_id = drafting.get_variant(db, org_id, variant_id).message.campaign_id
        drafting.delete_variant(db, org_id, variant_id, member().actor(), now())
    except NotFound:
        abort(404)
    except ServiceError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("drafting.edit_variant", variant_id=variant_id))
    db.commit()
    flash("The framing was deleted.", "success")
    return redirect(url_for("main.campaign_detail", campaign_id=campaign_id))


@bp.route("/variants/check", methods=["POST"])
@role_required(Role.STAFF)
def check_variant() -> str:
    """The htmx check while a framing is written: its length on each of the channels."""
    db, org_id = get_session(), member().organisation_id
    text = request.form.get("text", "")[:20_000]
    channels = [c for c in campaigns.list_channels(db, org_id) if c.status != "disabled"]
    rows = [(c, check_text(text, ChannelLimits.of(c))) for c in channels]
    return render_template("drafting/_variant_check.html", rows=rows)
