"""Fixtures are the test API: databases (SQLite and a real PostgreSQL), app, client, login helper."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from campaign import create_app
from campaign.db import make_engine
from campaign.migrate import upgrade
from campaign.web.context import state
from tests import factories
from tests.pgserver import PostgresUnavailable, create_database, running_postgres

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# CI runs the property tests on a fixed sequence of examples, so a run is reproducible; locally
# each run explores new examples.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
_db_names = itertools.count()

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def unavailable(reason: str) -> None:
    """In CI a missing PostgreSQL or Chromium fails the run; on a laptop it skips."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    explicit = os.environ.get("CAMPAIGN_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    try:
        with running_postgres() as url:
            yield url
    except PostgresUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def fresh_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """A factory of empty databases of the parametrised kind."""

    def make(kind: str) -> str:
        n = next(_db_names)
        if kind == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / f'test{n}.sqlite3'}"
        server = request.getfixturevalue("pg_server")
        return create_database(server, f"campaign_test_{n}")

    return make


@pytest.fixture(scope="session", params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(scope="session")
def database_url(db_kind: str, fresh_database_url: Any) -> str:
    """A database of each kind, migrated to head once per session (which tests the migrations)."""
    url: str = fresh_database_url(db_kind)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def factory(db_kind: str, fresh_database_url: Any) -> Iterator[Any]:
    """A session factory on a fresh database of this test module's own, for code that commits."""
    from campaign.db import make_session_factory

    url = fresh_database_url(db_kind)
    upgrade(url)
    eng = make_engine(url)
    yield make_session_factory(eng)
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


def settings_for(database_url: str, tmp_path: Any, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "app": {
            "env": "testing",
            "secret_key": "test-secret-key-" + "x" * 32,
            "instance_path": str(tmp_path),
        },
        "database": {"url": database_url},
        "security": {
            "session_cookie_secure": False,
            "argon2_time_cost": 1,
            "argon2_memory_kib": 64,
        },
    }
    for section, values in extra.items():
        settings.setdefault(section, {}).update(values)
    return settings


@pytest.fixture
def app(database_url: str, db: Session, tmp_path: Any) -> Iterator[Any]:
    application = create_app(settings_for(database_url, tmp_path))
    state(application).session_override = db
    state(application).pinned_now = NOW
    yield application
    state(application).engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def hasher(app: Any) -> Any:
    return state(app).hasher


@pytest.fixture
def world(db: Session, hasher: Any) -> factories.World:
    """Two organisations, each with a staff member, a manager and an admin, and some content."""
    return factories.build_world(db, hasher, NOW)


class AuthActions:
    def __init__(self, client: Any) -> None:
        self.client = client

    def csrf(self, path: str = "/login") -> str:
        import re

        page = self.client.get(path).get_data(as_text=True)
        found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="csrf_token" value="([^"]+)"', page
        )
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def login(self, email: str, password: str = factories.PASSWORD) -> Any:
        token = self.csrf("/login")
        return self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )

    def logout(self) -> Any:
        token = self.csrf("/")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client: Any) -> AuthActions:
    return AuthActions(client)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many tests ran on each database and in the browser, so skips cannot hide."""
    passed = terminalreporter.stats.get("passed", [])
    counts = {
        "sqlite": sum("[sqlite" in r.nodeid for r in passed),
        "postgresql": sum("postgresql" in r.nodeid for r in passed),
        "browser (Chromium)": sum("tests/browser/" in r.nodeid for r in passed),
    }
    skipped = len(terminalreporter.stats.get("skipped", []))
    summary = ", ".join(f"{n} on {kind}" for kind, n in counts.items())
    terminalreporter.write_line(f"campaign: passed {summary}; {skipped} skipped")
