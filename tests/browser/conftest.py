"""A live server on loopback with the demo loaded, and Playwright driving Debian's Chromium."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from waitress.server import create_server

from campaign import create_app
from campaign.db import utcnow
from campaign.migrate import upgrade
from campaign.services.demo import load_demo
from campaign.web.context import state
from tests.conftest import settings_for, unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def live_server(
    db_kind: str, fresh_database_url: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    url = fresh_database_url(db_kind)
    upgrade(url)
    app = create_app(settings_for(url, tmp_path_factory.mktemp("live")))
    with state(app).session_factory.begin() as session:
        load_demo(session, state(app).hasher, utcnow())
    # The same WSGI server as `campaign serve`; it closes file responses a browser abandons.
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)
    state(app).engine.dispose()


@pytest.fixture
def page(page: Any) -> Any:
    # Anything that is not the live server on loopback is refused: no test reaches the internet.
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("http://127.0.0.1") else route.abort()
        ),
    )
    return page
