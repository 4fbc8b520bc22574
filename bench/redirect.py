"""Benchmark the click redirector /l/<code> against the same server's static /healthz.

Run: .venv/bin/python bench/redirect.py [--db sqlite|postgresql|both] [--requests 4000]
     [--clients 20] [--cache-seconds 30]

For each database (a SQLite file in WAL mode; a throwaway PostgreSQL cluster) it:
1. migrates a fresh database and creates one organisation, channel, post and delivery, and the
   delivery's tracked link (through campaign.services.links.ensure_links);
2. starts the production server, `campaign serve --no-worker` (waitress, [server] threads), as a
   subprocess on a free loopback port;
3. runs the same client against /healthz and then /l/<code>: `--clients` threads, each with its
   own `requests` session (keep-alive), sending a browser's user agent, redirects not followed,
   `--requests` requests in all after a warm-up of 10 %;
4. prints requests/s and p50/p99 latency for both, and the ratio of the redirector's rate to
   /healthz's (the limit: /healthz does no database work);
5. checks that the redirector answered 302 every time and that exactly one click was stored per
   request; then ends the server by its pid.
The client runs in this process, on the same machine as the server: both targets pay for it
alike, which is why the ratio means more than either rate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from common import Run, closed_loop, database
from sqlalchemy import func, select

from campaign.db import make_engine, make_session_factory
from campaign.models import Channel, Delivery, Post
from campaign.models.engagement import LinkClick
from campaign.services.links import ensure_links
from campaign.services.organisations import create_organisation

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-secret-key-" + "x" * 32
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def seed_link(url: str) -> str:
    """One delivery whose text carries a link; returns the link's code."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            org = create_organisation(session, "bench-uni", "Bench Uni", "Europe/London", now)
            channel = Channel(
                organisation_id=org.id,
                kind="outbox",
                display_name="Bench outbox",
                audience="students",
                created_at=now,
            )
            post = Post(
                organisation_id=org.id,
                text="Book a CV review https://careers.example.ac.uk/cv?from=post",
                status="approved",
                created_at=now,
            )
            post.deliveries.append(
                Delivery(
                    channel=channel, due_at=now, idempotency_key=uuid.uuid4().hex, updated_at=now
                )
            )
            session.add_all([channel, post])
            session.flush()
            delivery_id = post.deliveries[0].id
            published = ensure_links(session, [delivery_id], "http://127.0.0.1", now)
            (code,) = published[delivery_id].codes.values()
            return code
    finally:
        engine.dispose()


def clicks_stored(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(LinkClick)).scalar_one())
    finally:
        engine.dispose()


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    url: str, workdir: Path, port: int, cache_seconds: float
) -> subprocess.Popen[bytes]:
    """`campaign serve --no-worker` on a loopback port, logging to server.log in `workdir`."""
    env = {k: v for k, v in os.environ.items() if k != "CAMPAIGN_CONFIG"} | {
        "CAMPAIGN_DATABASE__URL": url,
        "CAMPAIGN_APP__ENV": "testing",
        "CAMPAIGN_APP__SECRET_KEY": SECRET_KEY,
        "CAMPAIGN_APP__INSTANCE_PATH": str(workdir),
        "CAMPAIGN_LINKS__CACHE_SECONDS": str(cache_seconds),
    }
    command = [sys.executable, "-c", "from campaign.cli import main; main()", "serve"]
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited; see {workdir / 'server.log'}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        time.sleep(0.1)
    stop_server(process)
    raise SystemExit("the server did not answer /healthz within 30 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def hammer(base: str, path: str, total: int, clients: int) -> Run:
    """`total` GETs of `path` from `clients` threads, each with its own keep-alive session."""
    sessions = [requests.Session() for _ in range(clients)]
    for session in sessions:
        session.headers["User-Agent"] = BROWSER

    def send(session: requests.Session, index: int, n: int) -> int:
        return session.get(base + path, allow_redirects=False, timeout=30).status_code

    try:
        return closed_loop(sessions, path, total, send)
    finally:
        for session in sessions:
            session.close()


def bench(kind: str, total: int, clients: int, cache_seconds: float) -> tuple[Run, Run, bool]:
    with tempfile.TemporaryDirectory(prefix="campaign-redirect-") as tmp:
        workdir = Path(tmp)
        with database(kind, workdir) as url:
            code = seed_link(url)
            port = free_port()
            process = start_server(url, workdir, port, cache_seconds)
            try:
                base = f"http://127.0.0.1:{port}"
                warm = max(clients, total // 10)
                hammer(base, "/healthz", warm, clients)
                hammer(base, f"/l/{code}", warm, clients)
                health = hammer(base, "/healthz", total, clients)
                redirect = hammer(base, f"/l/{code}", total, clients)
            finally:
                stop_server(process)
            once = redirect.statuses == {302: total} and clicks_stored(url) == warm + total
    return health, redirect, once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--cache-seconds", type=float, default=30.0)
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(
        f"{args.requests} requests per path, {args.clients} clients, "
        f"[links] cache_seconds = {args.cache_seconds:g}"
    )
    print(
        "| database | path | requests/s | p50 ms | p99 ms | redirect / healthz | one click each |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    ok = True
    for kind in kinds:
        health, redirect, once = bench(kind, args.requests, args.clients, args.cache_seconds)
        ok = ok and once
        ratio = redirect.rate / health.rate
        for run, extra in ((health, ""), (redirect, f"{ratio:.2f}")):
            print(
                f"| {kind} | {'/healthz' if run.path == '/healthz' else '/l/<code>'} "
                f"| {run.rate:,.0f} | {run.percentile(0.5):.1f} | {run.percentile(0.99):.1f} "
                f"| {extra} | {('PASS' if once else 'FAIL') if extra else ''} |"
            )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
