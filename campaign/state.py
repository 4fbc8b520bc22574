"""The application's assembled state, shared by the web app, the worker and the CLI."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaign.config import Settings
from campaign.crypto import CredentialBox
from campaign.services.accounts import ThrottlePolicy


@dataclass
class AppState:
    """Everything create_app assembles, kept on app.extensions['campaign']."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    hasher: PasswordHasher
    credentials: CredentialBox
    throttle: ThrottlePolicy
    # Tests bind the app to their own transaction-wrapped session.
    session_override: Session | None = None
    # Tests pin the clock the views pass to services as `now`.
    pinned_now: dt.datetime | None = None
