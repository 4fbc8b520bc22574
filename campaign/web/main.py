"""The working areas: dashboard, Plan, Experiments, Vacancies, Reports (Posts is in publishing)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from campaign.db import read_only
from campaign.models import Role
from campaign.services import NotFound, campaigns
from campaign.web.auth import member, role_required
from campaign.web.context import get_session

bp = Blueprint("main", __name__)


@bp.route("/")
@read_only()  # before the role check: the member is read in it too
@role_required(Role.STAFF)
def dashboard() -> str:
    db, org_id = get_session(), member().organisation_id
    return render_template(
        "main/dashboard.html",
        campaigns=campaigns.list_campaigns(db, org_id, limit=5),
        upcoming=campaigns.list_upcoming_deliveries(db, org_id, limit=5),
        counts=campaigns.count_by_status(db, org_id),
        channels=campaigns.list_channels(db, org_id),
    )


@bp.route("/plan")
@read_only()  # before the role check: the member is read in it too
@role_required(Role.STAFF)
def plan() -> str:
    db, org_id = get_session(), member().organisation_id
    archived = request.args.get("archived") == "1"
    found = campaigns.list_campaigns(db, org_id, archived=archived)
    count = len(found) if archived else campaigns.count_archived(db, org_id)
    return render_template(
        "main/plan.html", campaigns=found, archived=archived, archived_count=count
    )


@bp.route("/plan/campaigns/<int:campaign_id>")
@read_only()  # before the role check: the member is read in it too
@role_required(Role.STAFF)
def campaign_detail(campaign_id: int) -> str:
    try:
        found = campaigns.get_campaign(get_session(), member().organisation_id, campaign_id)
    except NotFound:
        abort(404)
    return render_template("main/campaign.html", campaign=found)


@bp.route("/reports")
@read_only()  # before the role check: the member is read in it too
@role_required(Role.STAFF)
def reports() -> str:
    return render_template("main/reports.html")
