"""The signed-in person's own account: their password, and which organisation they work in."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import login_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from campaign.models import Role
from campaign.services import ServiceError, accounts
from campaign.web.auth import SessionUser, member, role_required
from campaign.web.context import get_session, now, state

bp = Blueprint("account", __name__)


class PasswordForm(FlaskForm):  # type: ignore[misc]
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    new = PasswordField("New password", validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("new", message="The new passwords differ.")],
    )


@bp.route("/account", methods=["GET", "POST"])
@role_required(Role.STAFF)
def account() -> Any:
    form, me = PasswordForm(), member()
    if form.validate_on_submit():
        db = get_session()
        try:
            accounts.change_password(
                db, me.user, form.current.data, form.new.data, state().hasher, now()
            )
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            db.commit()
            # The version bump ended every session, this one included: sign it back in.
            login_user(SessionUser(me.user, me.membership))
            flash("Password changed. Other devices have been signed out.", "success")
            return redirect(url_for("account.account"))
    return render_template("account/account.html", form=form)


@bp.route("/account/organisation", methods=["POST"])
@role_required(Role.STAFF)
def switch_organisation() -> Response:
    """Work in another organisation the person belongs to; every page then shows that one."""
    raw = request.form.get("organisation_id", "")
    me = member()
    found = (
        accounts.membership_for(get_session(), me.user.id, int(raw))
        if raw.isdigit() and len(raw) < 10
        else None
    )
    if found is None:
        abort(404)
    session["org_id"] = found.organisation_id
    flash(f"You are now working in {found.organisation.name}, as {found.role}.", "success")
    return redirect(url_for("main.dashboard"))
