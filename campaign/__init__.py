"""campaign: social media campaigns and vacancy alerts for careers services, run as experiments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from campaign.config import Settings, check_production_safety, load_settings
from campaign.crypto import CredentialBox
from campaign.db import make_engine, make_session_factory
from campaign.services.accounts import ThrottlePolicy
from campaign.services.passwords import make_hasher

ROOT = Path(__file__).resolve().parent.parent
csrf = CSRFProtect()


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Assemble the app: settings, database, security, blueprints. Nothing runs at import."""
    settings = config if isinstance(config, Settings) else load_settings(dict(config or {}))
    check_production_safety(settings)

    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        instance_path=str(Path(settings.app.instance_path).resolve()),
    )
    app.config.update(
        SECRET_KEY=settings.app.secret_key,
        DEBUG=settings.app.debug,
        TESTING=settings.app.env == "testing",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="campaign_session",
        REMEMBER_COOKIE_SECURE=settings.cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.security.session_lifetime_hours),
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,
    )
    if settings.server.proxy_count:
        count = settings.server.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]
    _attach_state(app, settings)
    _register_web(app, settings)
    return app


def _attach_state(app: Flask, settings: Settings) -> None:
    from campaign.state import AppState

    if settings.database_url.startswith("sqlite"):
        Path(settings.app.instance_path).mkdir(parents=True, exist_ok=True)
    engine = make_engine(
        settings.database_url,
        echo=settings.database.echo,
        busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
    )
    keys = settings.security.encryption_keys
    app.extensions["campaign"] = AppState(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        hasher=make_hasher(settings.security.argon2_time_cost, settings.security.argon2_memory_kib),
        credentials=CredentialBox(keys)
        if keys
        else CredentialBox.for_development(settings.app.secret_key),
        throttle=ThrottlePolicy(
            max_failures=settings.security.login_max_failures,
            max_failures_per_ip=settings.security.login_max_failures_per_ip,
            window=dt.timedelta(seconds=settings.security.login_window_seconds),
        ),
    )


class _DatabaseId(IntegerConverter):
    """`<int:...>` in every route, bounded to the database's integer range.

    An id beyond it can name no row; without the bound PostgreSQL would refuse the query
    ("integer out of range") and the client would see a 500 instead of a 404.
    """

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def _register_web(app: Flask, settings: Settings) -> None:
    from campaign.web import (
        account,
        alerts,
        api,
        auth,
        calendar,
        connect,
        dashboard,
        drafting,
        engagement,
        experiments,
        link_settings,
        links,
        main,
        planning,
        planning_rules,
        planning_settings,
        post_csv,
        publishing,
        reports,
        vacancies,
    )
    from campaign.web import settings as settings_views
    from campaign.web.api.errors import install_error_handlers
    from campaign.web.context import close_session
    from campaign.web.filters import install_template_helpers
    from campaign.web.security import install_security_headers

    app.url_map.converters["int"] = _DatabaseId  # before any route is added
    csrf.init_app(app)
    auth.login_manager.init_app(app)
    install_security_headers(app, hsts=settings.is_production)
    install_error_handlers(app)
    install_template_helpers(app)
    app.teardown_appcontext(close_session)

    app.register_blueprint(auth.bp)
    app.register_blueprint(main.bp)
    app.register_blueprint(experiments.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(publishing.bp)
    app.register_blueprint(connect.bp)
    app.register_blueprint(settings_views.bp)
    app.register_blueprint(planning.bp)
    app.register_blueprint(drafting.bp)
    app.register_blueprint(planning_rules.bp)
    app.register_blueprint(calendar.bp)
    app.register_blueprint(planning_settings.bp)
    app.register_blueprint(post_csv.bp)
    app.register_blueprint(engagement.bp)
    app.register_blueprint(links.bp)  # /l/<code>: public, the code is the credential
    app.register_blueprint(link_settings.bp)
    app.register_blueprint(vacancies.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(dashboard.bp)
    csrf.exempt(api.bp)  # the API authenticates with bearer tokens, not cookies
    app.register_blueprint(api.bp)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")
