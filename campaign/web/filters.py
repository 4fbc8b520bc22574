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


def install_template_helpers(app: Flask) -> None:
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.globals["roles"] = Role
