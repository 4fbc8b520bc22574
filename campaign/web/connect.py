"""Admins connect X, Mastodon and Bluesky accounts, and reconnect ones that stopped working.

Nothing secret goes in the session cookie: OAuth state waits in the database. After a form
starts an OAuth approval the page links to the platform rather than redirecting to it, because
the Content-Security-Policy (`form-action 'self'`) makes browsers block a form submission that
redirects to another site.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, SelectField, StringField, URLField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from campaign.models import AUDIENCES, Channel, Role
from campaign.services import NotFound, ServiceError, connect
from campaign.services.connect import Target
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now, state

bp = Blueprint("connect", __name__)
PREFIX = "/settings/channels/connect"
NETWORK_LABELS = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky"}
SECRET = {"autocomplete": "off", "spellcheck": "false"}


class ActionForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token, for buttons that change state."""


class ChannelFields(FlaskForm):  # type: ignore[misc]
    display_name = StringField("Channel name", validators=[DataRequired(), Length(max=200)])
    audience = SelectField(
        "Audience",
        choices=[SelectChoice(a, a.capitalize()) for a in AUDIENCES],
        default=AUDIENCES[0],
    )


class MastodonForm(ChannelFields):
    instance_url = StringField("Instance address", validators=[DataRequired(), Length(max=500)])

    def validate_instance_url(self, field: StringField) -> None:
        """Refuse anything but an http(s) address, alongside the other fields' errors."""
        try:
            connect.normalise_instance_url(field.data or "")
        except ServiceError as exc:
            raise ValidationError(str(exc)) from None


class XKeyFields(FlaskForm):  # type: ignore[misc]
    consumer_key = PasswordField("API key", validators=[DataRequired(), Length(max=200)])
    consumer_secret = PasswordField("API key secret", validators=[DataRequired(), Length(max=200)])
    access_token = PasswordField("Access token", validators=[DataRequired(), Length(max=200)])
    access_token_secret = PasswordField(
        "Access token secret", validators=[DataRequired(), Length(max=200)]
    )

    def credentials(self) -> dict[str, str]:
        """The four OAuth 1.0a keys, trimmed of pasted spaces."""
        names = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
        return {name: (self[name].data or "").strip() for name in names}


class XKeysForm(ChannelFields, XKeyFields):
    pass


class BlueskyLoginFields(FlaskForm):  # type: ignore[misc]
    handle = StringField("Handle", validators=[DataRequired(), Length(max=253)])
    app_password = PasswordField("App password", validators=[DataRequired(), Length(max=100)])

    def credentials(self) -> dict[str, str]:
        """Handle (without a leading @) and app password, as the Bluesky adapter reads them."""
        handle = (self.handle.data or "").strip().lstrip("@").lower()
        return {"handle": handle, "app_password": (self.app_password.data or "").strip()}


class BlueskyForm(ChannelFields, BlueskyLoginFields):
    pds_url = URLField("Server (PDS) address", validators=[DataRequired(), Length(max=500)])


def _callback(kind: str) -> str:
    return connect.callback_url(state().settings.app.base_url, kind)


def _target(form: ChannelFields) -> Target:
    return Target(form.display_name.data or "", form.audience.data or "")


def _continue(url: str, kind: str) -> str:
    """The page that sends the admin on to approve access, naming where they are going."""
    host = urlsplit(url).netloc
    return render_template(
        "connect/continue.html", url=url, network=NETWORK_LABELS[kind], host=host
    )


def _start_mastodon(instance: str, target: Target) -> str | None:
    db, st = get_session(), state()
    redirect_uri = _callback("mastodon")
    try:
        app = connect.find_mastodon_app(db, st.credentials, instance, redirect_uri)
        # End the transaction first: no database lock is held while the instance answers.
        db.commit()
        if app is None:
            with connect.http_session(st.settings) as http:
                website = st.settings.app.base_url
                app = connect.register_mastodon_app(http, instance, redirect_uri, website)
        url = connect.begin_mastodon(
            db, st.credentials, member().actor(), instance, app, target, redirect_uri, now()
        )
    except ServiceError as exc:
        flash(str(exc), "error")
        return None
    db.commit()
    return _continue(url, "mastodon")


def _start_x(target: Target) -> str | None:
    db, st = get_session(), state()
    try:
        url = connect.begin_x(
            db,
            st.credentials,
            member().actor(),
            target,
            st.settings.x.client_id,
            st.settings.x.authorize_url,
            _callback("x"),
            now(),
        )
    except ServiceError as exc:
        flash(str(exc), "error")
        return None
    db.commit()
    return _continue(url, "x")


def _save(
    kind: str, target: Target, base_url: str | None, credentials: dict[str, Any]
) -> Response | None:
    """Store the connection and go to channel health; a refusal is flashed (returns None)."""
    db = get_session()
    try:
        channel = connect.save_connection(
            db, state().credentials, kind, target, base_url, credentials, member().actor(), now()
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(str(exc), "error")
        return None
    db.commit()
    _flash_connected(channel, target)
    return redirect(url_for("publishing.channels"))


def _flash_connected(channel: Channel, target: Target) -> None:
    if target.channel_id is None:
        flash(f"Connected “{channel.display_name}”. Posts scheduled to it will go out.", "success")
    else:
        flash(f"Reconnected “{channel.display_name}”. Its new access is stored.", "success")


@bp.route(PREFIX)
@role_required(Role.ADMIN)
def index() -> str:
    return render_template("connect/index.html", x_ready=bool(state().settings.x.client_id))


@bp.route(PREFIX + "/mastodon", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def mastodon() -> Any:
    form = MastodonForm()
    if form.validate_on_submit():
        instance = connect.normalise_instance_url(form.instance_url.data or "")
        page = _start_mastodon(instance, _target(form))
        if page is not None:
            return page
    return render_template("connect/mastodon.html", form=form, channel=None)


@bp.route(PREFIX + "/x", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def x() -> Any:
    if state().settings.x.client_id:
        form: ChannelFields = ChannelFields()
        if form.validate_on_submit():
            page = _start_x(_target(form))
            if page is not None:
                return page
    else:
        form = XKeysForm()
        if form.validate_on_submit():
            done = _save("x", _target(form), None, form.credentials())
            if done is not None:
                return done
    return render_template("connect/x.html", form=form, channel=None, **_x_page())


def _usd(value: float | None) -> str | None:
    """$0.015 stays so; 0.2 shows as $0.20."""
    if value is None:
        return None
    return f"${value:.2f}" if round(value, 2) == value else f"${value:.3f}"


def _x_page() -> dict[str, Any]:
    per_post, per_link = connect.x_prices()
    return {
        "oauth2": bool(state().settings.x.client_id),
        "per_post": _usd(per_post),
        "per_link_post": _usd(per_link),
        "callback": _callback("x"),
    }


@bp.route(PREFIX + "/bluesky", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def bluesky() -> Any:
    default = state().settings.bluesky.api_base_url
    form = BlueskyForm(pds_url=default)
    if form.validate_on_submit():
        pds = (form.pds_url.data or "").strip().rstrip("/")
        # The configured default is kept as "none", so a changed default applies here too.
        base_url = None if pds == default.rstrip("/") else pds
        done = _save("bluesky", _target(form), base_url, form.credentials())
        if done is not None:
            return done
    return render_template("connect/bluesky.html", form=form, channel=None)


@bp.route(PREFIX + "/mastodon/callback")
@role_required(Role.ADMIN)
def mastodon_callback() -> Response:
    return _finish("mastodon")


@bp.route(PREFIX + "/x/callback")
@role_required(Role.ADMIN)
def x_callback() -> Response:
    return _finish("x")


def _declined(kind: str, error: str) -> str:
    label = NETWORK_LABELS[kind]
    if error == "access_denied":
        return f"You declined to connect the {label} account; nothing was changed."
    # The code comes from the query string: show it only if it looks like an OAuth error code.
    code = f" ({error})" if re.fullmatch(r"[a-z_]{1,40}", error) else ""
    return f"{label} did not grant access{code}; nothing was changed."


def _finish(kind: str) -> Response:
    """The OAuth callback: spend the state, ask the platform for tokens, store the channel."""
    st, db, actor = state(), get_session(), member().actor()
    error, code = request.args.get("error", ""), request.args.get("code", "")
    back = redirect(url_for("connect.index"))
    try:
        claimed = connect.claim_authorization(
            db, st.credentials, kind, request.args.get("state", ""), actor, now()
        )
    except ServiceError as exc:
        flash(_declined(kind, error) if error else str(exc), "error")
        return back
    # Spent before the platform is asked, so a replayed callback fails even if this one does.
    db.commit()
    if error or not code:
        flash(_declined(kind, error or "no_code"), "error")
        return back
    redirect_uri = _callback(kind)
    try:
        with connect.http_session(st.settings) as http:
            if kind == "mastodon":
                credentials = connect.fetch_mastodon_token(http, claimed, code, redirect_uri)
            else:
                credentials = connect.fetch_x_token(
                    http, claimed, code, st.settings, redirect_uri, now()
                )
    except ServiceError as exc:
        flash(str(exc), "error")
        return back
    done = _save(kind, claimed.target, claimed.base_url, credentials)
    return done if done is not None else back


@bp.route("/settings/channels/<int:channel_id>/reconnect", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def reconnect(channel_id: int) -> Any:
    try:
        channel = connect.channel_to_reconnect(get_session(), member().organisation_id, channel_id)
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(str(exc), "error")
        return redirect(url_for("publishing.channels"))
    target = Target(channel.display_name, channel.audience, channel.id)
    form, page = _reconnect_form(channel, target)
    if page is not None:
        return page
    extra = _x_page() if channel.kind == "x" else {}
    return render_template(f"connect/{channel.kind}.html", form=form, channel=channel, **extra)


def _reconnect_form(channel: Channel, target: Target) -> tuple[FlaskForm, str | Response | None]:
    """The form that reconnects this kind of channel, and the response if it was submitted."""
    settings = state().settings
    if channel.kind == "bluesky":
        login = BlueskyLoginFields(handle=channel.account_label)
        if login.validate_on_submit():
            return login, _save("bluesky", target, channel.base_url, login.credentials())
        return login, None
    if channel.kind == "x" and not settings.x.client_id:
        keys = XKeyFields()
        if keys.validate_on_submit():
            return keys, _save("x", target, None, keys.credentials())
        return keys, None
    button = ActionForm()
    if not button.validate_on_submit():
        return button, None
    if channel.kind == "x":
        return button, _start_x(target)
    try:
        instance = connect.normalise_instance_url(
            channel.base_url or settings.mastodon.api_base_url
        )
    except ServiceError as exc:
        flash(str(exc), "error")
        return button, None
    return button, _start_mastodon(instance, target)
