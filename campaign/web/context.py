"""Per-request plumbing: the app's state, the request's database session, the acting member."""

from __future__ import annotations

import datetime as dt

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from campaign.db import utcnow
from campaign.state import AppState

__all__ = ["AppState", "close_session", "get_session", "now", "state"]


def state(app: Flask | None = None) -> AppState:
    found: AppState = (app or current_app).extensions["campaign"]
    return found


def get_session() -> Session:
    """The request's session, opened lazily; the view commits, teardown rolls back the rest."""
    st = state()
    if st.session_override is not None:
        return st.session_override
    session: Session | None = g.get("db_session")
    if session is None:
        session = st.session_factory()
        g.db_session = session
    return session


def now() -> dt.datetime:
    """The current time, which tests may pin."""
    return state().pinned_now or utcnow()


def close_session(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
