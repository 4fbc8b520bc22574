"""The dashboard and report pages read in read-only transactions (issue #18).

These tests run the app on its own database, without the test session shared by the other web
tests, so that each request's transactions begin as in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from campaign import create_app
from campaign.db import ReadOnlyTransactionError, make_engine, read_only
from campaign.migrate import upgrade
from campaign.models import Role
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, state
from tests import factories
from tests.conftest import NOW, AuthActions, settings_for

READ_ONLY_PAGES = (
    "/dashboard",
    "/dashboard?group=framing&sort=group&dir=asc",
    "/dashboard.csv",
    "/reports/framing",
)


@pytest.fixture(scope="module")
def live_database(db_kind: str, fresh_database_url: Any, tmp_path_factory: Any) -> Any:
    """A migrated database of each kind with the two organisations' world, committed."""
    url = fresh_database_url(db_kind)
    upgrade(url)
    app = create_app(settings_for(url, tmp_path_factory.mktemp("live")))
    try:
        with state(app).session_factory() as session:
            world = factories.build_world(session, state(app).hasher, NOW)
            session.commit()
    finally:
        state(app).engine.dispose()
    return url, world


@pytest.fixture
def live_app(live_database: Any, tmp_path: Any) -> Iterator[Flask]:
    url, _world = live_database
    # A waiting request gives up after 100 ms, so that a page kept waiting fails quickly.
    application = create_app(settings_for(url, tmp_path, database={"sqlite_busy_timeout_ms": 100}))
    state(application).pinned_now = NOW

    @application.get("/test-only/read-only-write")
    @read_only()
    @role_required(Role.STAFF)
    def writes_while_marked_read_only() -> str:
        session = get_session()
        session.execute(
            text("UPDATE users SET display_name = display_name WHERE id = :id"),
            {"id": member().user.id},
        )
        return "written"

    yield application
    state(application).engine.dispose()


@pytest.fixture
def signed_in(live_app: Flask, live_database: Any) -> Any:
    client = live_app.test_client()
    AuthActions(client).login(live_database[1].home.manager.email)
    return client


@pytest.fixture
def writer_holding_the_lock(live_database: Any) -> Iterator[Any]:
    """Another connection in the middle of a write transaction (SQLite: holding the lock)."""
    engine: Engine = make_engine(live_database[0])
    connection = engine.connect()
    connection.execute(text("UPDATE organisations SET name = name"))
    try:
        yield connection
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()


@pytest.mark.parametrize("path", READ_ONLY_PAGES)
def test_read_only_pages_answer_while_a_writer_holds_the_lock(
    signed_in, writer_holding_the_lock, path
):
    response = signed_in.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


def test_an_experiment_report_is_read_while_a_writer_holds_the_lock(
    signed_in, writer_holding_the_lock
):
    assert signed_in.get("/experiments/999999/report").status_code == 404


def test_a_page_not_marked_still_takes_the_write_lock(signed_in, writer_holding_the_lock, db_kind):
    # The control: on SQLite, an ordinary page waits for the lock, then fails.
    if db_kind == "sqlite":
        with pytest.raises(OperationalError, match="locked"):
            signed_in.get("/account")
    else:
        assert signed_in.get("/account").status_code == 200


def test_a_write_in_a_page_marked_read_only_is_refused_loudly(signed_in):
    with pytest.raises(ReadOnlyTransactionError, match="read-only transaction"):
        signed_in.get("/test-only/read-only-write")
    # The connection is not left read-only: signing in again (a write) still works.
    AuthActions(signed_in).logout()
    client = signed_in.application.test_client()
    assert AuthActions(client).login("manager@home-uni.example").status_code == 302
