"""Settings: channels (managers), users and API tokens (admins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from campaign.models import API_SCOPES, Role
from campaign.services import NotFound, ServiceError, accounts, audit, campaigns, tokens
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now, state

bp = Blueprint("settings", __name__, url_prefix="/settings")
AUDIT_PAGE = 50
ROLE_CHOICES = [SelectChoice(role.value, role.value.capitalize()) for role in Role]


class UserForm(FlaskForm):  # type: ignore[misc]
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    display_name = StringField("Name", validators=[Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.STAFF.value)
    password = PasswordField("Initial password", validators=[DataRequired(), Length(max=1024)])


class RoleForm(FlaskForm):  # type: ignore[misc]
    role = SelectField("Role", choices=ROLE_CHOICES)


class EmptyForm(FlaskForm):  # type: ignore[misc]
    """A form with only the CSRF token, for buttons that change state."""


class TokenForm(FlaskForm):  # type: ignore[misc]
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    scopes = SelectMultipleField(
        "Scopes",
        choices=[SelectChoice(scope) for scope in API_SCOPES],
        default=["read"],
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
    )


@bp.route("/")
@role_required(Role.MANAGER)
def index() -> str:
    channels = campaigns.list_channels(get_session(), member().organisation_id)
    return render_template("settings/index.html", channels=channels)


@bp.route("/audit")
@role_required(Role.MANAGER)
def audit_log() -> str:
    before = request.args.get("before", type=int)
    events = audit.list_events(get_session(), member().organisation_id, AUDIT_PAGE + 1, before)
    more = len(events) > AUDIT_PAGE
    return render_template("settings/audit.html", events=events[:AUDIT_PAGE], more=more)


@bp.route("/users", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def users() -> Any:
    form, db = UserForm(), get_session()
    if form.validate_on_submit():
        try:
            accounts.create_user(
                db,
                member().organisation_id,
                form.email.data,
                form.password.data,
                Role(form.role.data),
                form.display_name.data or "",
                state().hasher,
                member().actor(),
                now(),
            )
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            db.commit()
            flash(
                f"Added {form.email.data}. Give them their initial password in person.", "success"
            )
            return redirect(url_for("settings.users"))
    members = accounts.list_members(db, member().organisation_id)
    return render_template(
        "settings/users.html", form=form, members=members, role_form=RoleForm, button=EmptyForm()
    )


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@role_required(Role.ADMIN)
def change_role(user_id: int) -> Response:
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    return _apply(
        lambda: accounts.change_role(
            get_session(), member().actor(), user_id, Role(form.role.data), now()
        ),
        "Role changed.",
    )


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@role_required(Role.ADMIN)
def deactivate(user_id: int) -> Response:
    return _set_active(user_id, False)


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
@role_required(Role.ADMIN)
def reactivate(user_id: int) -> Response:
    return _set_active(user_id, True)


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
@role_required(Role.ADMIN)
def reset_password(user_id: int) -> Any:
    if not EmptyForm().validate_on_submit():
        abort(400)
    db = get_session()
    try:
        temporary = accounts.reset_password(db, member().actor(), user_id, state().hasher, now())
    except NotFound:
        abort(404)
    db.commit()
    target = accounts.get_member(db, member().organisation_id, user_id).user
    return render_template("settings/password_reset.html", target=target, temporary=temporary)


def _set_active(user_id: int, active: bool) -> Response:
    if not EmptyForm().validate_on_submit():
        abort(400)
    return _apply(
        lambda: accounts.set_active(get_session(), member().actor(), user_id, active, now()),
        "User reactivated." if active else "User deactivated; their sessions have ended.",
    )


def _apply(action: Any, done: str, target: str = "settings.users") -> Response:
    """Run a service call, commit it, and report the outcome; foreign ids are 404."""
    try:
        action()
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(str(exc), "error")
    else:
        get_session().commit()
        flash(done, "success")
    return redirect(url_for(target))


@bp.route("/tokens", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def api_tokens() -> Any:
    form, db, created = TokenForm(), get_session(), None
    if form.validate_on_submit():
        try:
            _token, created = tokens.create_token(
                db,
                member().organisation_id,
                form.name.data,
                list(form.scopes.data or []),
                member().actor(),
                now(),
            )
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            db.commit()
            form = TokenForm(formdata=None)
    listed = tokens.list_tokens(db, member().organisation_id)
    return render_template(
        "settings/tokens.html", form=form, tokens=listed, created=created, button=EmptyForm()
    )


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@role_required(Role.ADMIN)
def revoke_token(token_id: int) -> Response:
    if not EmptyForm().validate_on_submit():
        abort(400)
    return _apply(
        lambda: tokens.revoke_token(get_session(), member().actor(), token_id, now()),
        "Token revoked.",
        "settings.api_tokens",
    )
