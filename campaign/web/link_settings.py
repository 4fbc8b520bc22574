"""Settings → Tracked links: the UTM parameters added to every tracked link's redirect."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from campaign.models import Role
from campaign.models.engagement import (
    UTM_CAMPAIGN_MODES,
    UTM_CONTENT_MODES,
    UTM_MEDIUM_MODES,
    UTM_SOURCE_MODES,
)
from campaign.services import PermissionDenied, ServiceError, links, utm_settings
from campaign.services.links import UtmSettings
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now

bp = Blueprint("link_settings", __name__, url_prefix="/settings/links")

# Each parameter: its form name, what it is called, and the words for each of its modes.
PARAMETERS = (
    ("source", "utm_source", UTM_SOURCE_MODES, {
        "network": "The network (x, mastodon, bluesky...)",
        "channel": "The channel's name",
        "custom": "This value:",
        "off": "Leave it out",
    }),
    ("medium", "utm_medium", UTM_MEDIUM_MODES, {"custom": "This value:", "off": "Leave it out"}),
    ("campaign", "utm_campaign", UTM_CAMPAIGN_MODES, {
        "campaign": "The campaign (its name as a slug, and its number)",
        "custom": "This value:",
        "off": "Leave it out",
    }),
    ("content", "utm_content", UTM_CONTENT_MODES, {
        "variant": "The framing (its label as a slug, and its number)",
        "custom": "This value:",
        "off": "Leave it out",
    }),
)  # fmt: skip


@bp.route("/")
@role_required(Role.MANAGER)
def index() -> str:
    current = links.utm_settings(get_session(), member().organisation_id)
    return _page(current)


@bp.route("/", methods=["POST"])
@role_required(Role.ADMIN)
def save() -> Response | str:
    db, me = get_session(), member()
    form = request.form
    chosen = UtmSettings(
        enabled=form.get("enabled") == "yes",
        override_existing=form.get("override_existing") == "yes",
        **{
            f"{name}_{part}": form.get(f"{name}_{part}", "")[:500]
            for name, *_ in PARAMETERS
            for part in ("mode", "value")
        },
    )
    try:
        utm_settings.change(db, me.organisation_id, chosen, me.actor(), now())
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        db.rollback()
        flash(str(exc), "error")
        return _page(chosen, status_error=True)
    db.commit()
    flash("Tracked links will carry these parameters from now on.", "success")
    return redirect(url_for("link_settings.index"))


def _page(current: UtmSettings, status_error: bool = False) -> str:
    return render_template(
        "link_settings/index.html",
        current=current,
        parameters=PARAMETERS,
        example_target=utm_settings.EXAMPLE_TARGET,
        example=utm_settings.example_link(current) if not status_error else None,
        is_admin=member().role.covers(Role.ADMIN),
    )
