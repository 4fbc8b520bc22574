"""Sign-in, sign-out and the role checks every route goes through."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from campaign.models import Membership, Role, User
from campaign.services import accounts
from campaign.services.audit import Actor
from campaign.web.context import get_session, now, state
from campaign.web.security import safe_next

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"

P = ParamSpec("P")
R = TypeVar("R")


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class SessionUser:
    """The signed-in user as Flask-Login sees it, with their current organisation membership."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user: User, membership: Membership) -> None:
        self.user = user
        self.membership = membership

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_version}"

    @property
    def role(self) -> Role:
        return self.membership.role_enum

    @property
    def organisation_id(self) -> int:
        return self.membership.organisation_id

    def actor(self) -> Actor:
        return Actor(
            organisation_id=self.organisation_id,
            label=self.user.email,
            user_id=self.user.id,
            role=self.role.value,
        )


def _load_user(user_id: str) -> SessionUser | None:
    try:
        raw_id, raw_version = user_id.split(":", 1)
        uid, version = int(raw_id), int(raw_version)
    except ValueError:
        return None
    user = accounts.user_with_memberships(get_session(), uid)
    if user is None or not user.is_active or user.session_version != version:
        return None
    org_id = session.get("org_id")
    membership = accounts.pick_membership(user, int(org_id) if org_id is not None else None)
    return SessionUser(user, membership) if membership else None


login_manager.user_loader(_load_user)


def member() -> SessionUser:
    """The signed-in member; only call inside a route guarded by role_required."""
    found: SessionUser = current_user._get_current_object()
    return found


def role_required(role: Role) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """Require a signed-in member whose role covers `role`; anonymous users go to sign-in."""

    def decorate(view: Callable[P, R]) -> Callable[P, R | Response]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            if not current_user.is_authenticated:
                result: Response = login_manager.unauthorized()
                return result
            if not member().role.covers(role):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped

    return decorate


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        st, db = state(), get_session()
        try:
            user = accounts.authenticate(
                db,
                form.email.data,
                form.password.data,
                request.remote_addr or "",
                st.hasher,
                st.throttle,
                now(),
            )
        except accounts.LoginThrottled as exc:
            db.commit()
            flash(str(exc), "error")
            return render_template("auth/login.html", form=form), 429
        membership = accounts.primary_membership(db, user.id) if user else None
        db.commit()
        if user is None or membership is None:
            flash("That email and password do not match an active account.", "error")
            return render_template("auth/login.html", form=form), 401
        # A fresh session on sign-in: nothing set before authentication survives it.
        session.clear()
        login_user(SessionUser(user, membership))
        session["org_id"] = membership.organisation_id
        session.permanent = True
        return redirect(safe_next(request.args.get("next"), url_for("main.dashboard")))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))
