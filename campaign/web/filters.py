"""Template helpers: local times in the organisation's zone, and the roles for nav checks."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask_login import current_user

from campaign.models import Role


def localtime(value: dt.datetime | None) -> str:
    """An aware UTC datetime shown in the member's organisation time zone."""
    if value is None:
        return ""
    if current_user.is_authenticated:
        value = value.astimezone(current_user.membership.organisation.zone)
    return value.strftime("%a %d %b %Y, %H:%M %Z")


def percent(value: float | None, digits: int = 1) -> str:
    """0.0173 as '1.7%'; a blank figure as an em dash."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def per_thousand(value: float | None, signed: bool = False) -> str:
    """A rate or difference as clicks per 1,000 views: 0.0052 as '5.2' (or '+5.2')."""
    if value is None:
        return "—"
    return f"{value * 1000:+.1f}" if signed else f"{value * 1000:.1f}"


def install_template_helpers(app: Flask) -> None:
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.filters["per_thousand"] = per_thousand
    app.jinja_env.globals["roles"] = Role
