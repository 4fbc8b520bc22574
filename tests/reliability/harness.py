"""The reliability harness: a real database, the fake platform and real `campaign worker` processes.

Workers are separate processes started with `sys.executable`, pointed at the fake platform by
base URL, with a short lease and a fast tick; the test kills them by process id. What reached the
"platform" is read back from the fake's own records, so a duplicate cannot hide.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from campaign.crypto import CredentialBox
from campaign.db import database_now, make_engine, make_session_factory
from campaign.models import Delivery, Post
from campaign.services.channels import NewChannel, create_channel
from campaign.services.organisations import create_organisation
from tests.fakeplatform import FakePlatform

# One fixed Fernet key for the test process (which stores credentials) and the workers.
ENCRYPTION_KEY = "n4Hq3fP6tXg8e0cVYbFh6kQ8Q0m1o2r3s4t5u6v7w8x="
CREDENTIALS = {
    "mastodon": {"access_token": "fake-mastodon-token"},
    "x": {
        "consumer_key": "ck",
        "consumer_secret": "cs",
        "access_token": "at",
        "access_token_secret": "ats",
    },
    "bluesky": {"handle": "careers.fake.test", "app_password": "aaaa-bbbb-cccc-dddd"},
}
WORKER = "from campaign.cli import main; main()"


@dataclass
class Stack:
    """One database, one fake platform and the worker processes of one test."""

    url: str
    fake: FakePlatform
    tmp_path: Path
    factory: sessionmaker[Session]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            **os.environ,
            "CAMPAIGN_DATABASE__URL": self.url,
            "CAMPAIGN_APP__ENV": "testing",
            "CAMPAIGN_APP__SECRET_KEY": "reliability-secret-key-" + "x" * 20,
            "CAMPAIGN_APP__INSTANCE_PATH": str(self.tmp_path),
            "CAMPAIGN_SECURITY__ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "CAMPAIGN_WORKER__TICK_SECONDS": "0.2",
            "CAMPAIGN_PUBLISHING__LEASE_SECONDS": "5",
            "CAMPAIGN_PUBLISHING__LOOKUP_DELAY_SECONDS": "0",
            "CAMPAIGN_PUBLISHING__BACKOFF_BASE_SECONDS": "0.2",
            "CAMPAIGN_PUBLISHING__BACKOFF_MAX_SECONDS": "1",
            "CAMPAIGN_PUBLISHING__REQUEST_TIMEOUT_SECONDS": "1.5",
            "CAMPAIGN_NETWORK__ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "CAMPAIGN_X__API_BASE_URL": self.fake.base_url,
            "CAMPAIGN_MASTODON__API_BASE_URL": self.fake.base_url,
            "CAMPAIGN_BLUESKY__API_BASE_URL": self.fake.base_url,
            # Anything that tried a real host would fail fast here; loopback goes direct.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        base.pop("CAMPAIGN_TEST_KILL_AT", None)
        return {**base, **self.settings, **extra}

    def start_worker(self, *, code: str = WORKER, command: str = "worker", **env: str) -> Any:
        """Start one worker process (or `campaign serve`, with command='serve')."""
        n = len(self.workers)
        log = (self.tmp_path / f"worker{n}.log").open("wb")
        args = [sys.executable, "-c", code, command]
        if command == "serve":
            args += ["--port", "0"]
        process = subprocess.Popen(
            args, env=self.env(**env), cwd=self.tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.workers.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- worker{n}.log ---\n{(self.tmp_path / f'worker{n}.log').read_text()[-3000:]}"
            for n in range(len(self.workers))
        )

    def stop_all(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def wait_exit(self, process: Any, timeout: float = 60.0) -> int:
        try:
            return int(process.wait(timeout=timeout))
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"worker did not exit\n{self.logs()}") from exc

    # --- database side ----------------------------------------------------------------------

    def now(self) -> dt.datetime:
        with self.factory.begin() as session:
            return database_now(session)

    def channel(self, kind: str, **spec: Any) -> int:
        """A channel of this kind in a fresh organisation, pointed at the fake platform."""
        with self.factory.begin() as session:
            now = database_now(session)
            org = create_organisation(
                session, f"r{uuid.uuid4().hex[:10]}", "Reliability", "Europe/London", now
            )
            base_url = self.fake.base_url if kind in ("mastodon", "bluesky") else None
            channel = create_channel(
                session,
                org.id,
                NewChannel(kind=kind, display_name=f"{kind} channel", base_url=base_url, **spec),
                CREDENTIALS.get(kind, {}),
                CredentialBox([ENCRYPTION_KEY]),
                None,
                now,
            )
            return channel.id

    def deliveries(
        self,
        channel_id: int,
        count: int,
        *,
        due_in: dt.timedelta = dt.timedelta(seconds=-1),
        due_at: dt.datetime | None = None,
    ) -> list[int]:
        """`count` approved posts with distinct texts, one delivery each on the channel."""
        with self.factory.begin() as session:
            now = database_now(session)
            org_id = session.scalar(
                text("SELECT organisation_id FROM channels WHERE id = :id"), {"id": channel_id}
            )
            ids = []
            for n in range(count):
                post = Post(
                    organisation_id=org_id,
                    text=f"Careers post {uuid.uuid4().hex[:8]} number {n}: https://example.ac.uk/{n}",
                    status="approved",
                    created_at=now,
                )
                post.deliveries.append(
                    Delivery(
                        channel_id=channel_id,
                        due_at=due_at or now + due_in,
                        idempotency_key=uuid.uuid4().hex,
                        updated_at=now,
                    )
                )
                session.add(post)
                session.flush()
                ids.append(post.deliveries[0].id)
            return ids

    def states(self, ids: list[int]) -> dict[int, str]:
        with self.factory.begin() as session:
            rows = session.execute(
                select(Delivery.id, Delivery.status).where(Delivery.id.in_(ids))
            ).all()
            return {row[0]: row[1] for row in rows}

    def heartbeats(self) -> int:
        with self.factory.begin() as session:
            return int(session.scalar(text("SELECT count(*) FROM worker_heartbeats")) or 0)

    def delivery(self, delivery_id: int) -> Delivery:
        with self.factory.begin() as session:
            found = session.get(Delivery, delivery_id)
            assert found is not None
            return found

    def all_in(self, ids: list[int], *wanted: str) -> Callable[[], bool]:
        return lambda: set(self.states(ids).values()) <= set(wanted)

    def creates(self, platform: str) -> list[dict[str, Any]]:
        """Every create call the fake received for this platform, faulted ones included."""
        paths = {"x": "/2/tweets", "mastodon": "/api/v1/statuses", "bluesky": "createRecord"}
        return [
            c
            for c in self.fake.calls(platform)
            if c["method"] == "POST" and paths[platform] in c["path"]
        ]


def clean_database(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        session.execute(text("DELETE FROM organisations"))
        session.execute(text("DELETE FROM worker_heartbeats"))


def stack_factory(url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()
