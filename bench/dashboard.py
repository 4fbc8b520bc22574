"""Benchmark the manager dashboard /dashboard against the same server's static /healthz.

Run: .venv/bin/python bench/dashboard.py [--db sqlite|postgresql|both] [--posts 3000]
     [--requests 1000] [--clients 20] [--gunicorn WORKERS]

For each database (a SQLite file in WAL mode; a throwaway PostgreSQL cluster) it:
1. migrates a fresh database, loads the demo organisation (six weeks of history) and adds
   `--posts` generated published posts over the last 80 days, spread over four channels (two of
   them without impressions, like Mastodon), the demo's framings, with readings at 1 h, 24 h,
   7 d and "latest" and tracked-link clicks (about 10 a post), written in bulk;
2. starts the production server as a subprocess on a free loopback port: by default
   `campaign serve --no-worker` (one waitress process, [server] threads; bench/redirect.py's
   start_server), or with `--gunicorn N` the README's several-process deployment,
   `gunicorn --workers N --threads 4 'campaign:create_app()'`;
3. signs `--clients` keep-alive `requests` sessions in as the demo manager, then runs them
   against /healthz and against each dashboard path: `--requests` requests per path after a
   warm-up of 10 %;
   The last path asks for a different period each time, so it measures the sums made afresh
   (the others are mostly answered from the page's one-minute cache of recent views: the sums
   and the content rendered from them);
4. prints requests/s and p50/p95/p99 latency, and checks that every dashboard answer was a 200
   with its table (a failure lists the statuses, 0 for no answer, and the server log's last
   lines); then ends the server by its pid (gunicorn: its master, which stops its workers).
The target (DESIGN.md): the dashboard's p95 under 100 ms with 20 concurrent clients.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from common import Run, closed_loop, database
from redirect import SECRET_KEY, free_port, start_server, stop_server
from sqlalchemy import insert, select, text

from campaign.db import make_engine, make_session_factory
from campaign.models import Campaign, Channel, Delivery, Message, Organisation, Post, Variant
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services.demo import DEMO_LOGINS, DEMO_SLUG, load_demo
from campaign.services.passwords import make_hasher

MANAGER = next(login for login in DEMO_LOGINS if login.role == "manager")
# "{from}": each request a period of its own, so that none is answered from the page's cache.
PATHS = (
    "/dashboard",
    "/dashboard?group=framing&trend=rate",
    "/dashboard?group=week",
    "/dashboard?from={from}",
)
AGES = ((3600, "1h"), (86400, "24h"), (7 * 86400, "7d"))
# Threads per gunicorn process (the README's deployment example).
GUNICORN_THREADS = 4


def seed(url: str, posts: int) -> int:
    """The demo, then `posts` generated published posts with readings and clicks."""
    now = dt.datetime.now(dt.UTC)
    rng = random.Random(18)
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            load_demo(session, make_hasher(time_cost=1, memory_kib=1024), now)
            org = session.scalars(select(Organisation).where(Organisation.slug == DEMO_SLUG)).one()
            channels = [
                Channel(
                    organisation_id=org.id,
                    kind=kind,
                    display_name=f"Bench {kind} {audience}",
                    audience=audience,
                    created_at=now,
                )
                for kind, audience in (
                    ("x", "students"),
                    ("x", "graduates"),
                    ("mastodon", "students"),
                    ("bluesky", "employers"),
                )
            ]
            session.add_all(channels)
            session.flush()
            variants = list(
                session.scalars(
                    select(Variant.id)
                    .join(Message, Message.id == Variant.message_id)
                    .join(Campaign, Campaign.id == Message.campaign_id)
                    .where(Campaign.organisation_id == org.id)
                    .order_by(Variant.id)
                )
            )
            made = []
            for i in range(posts):
                at = now - dt.timedelta(seconds=rng.randrange(3600, 80 * 86400))
                channel = channels[i % len(channels)]
                post = Post(
                    organisation_id=org.id,
                    variant_id=variants[i % len(variants)],
                    text=f"Bench post {i}",
                    status="approved",
                    created_at=at,
                )
                post.deliveries.append(
                    Delivery(
                        channel=channel,
                        due_at=at,
                        status="published",
                        idempotency_key=uuid.uuid4().hex,
                        published_at=at,
                        updated_at=at,
                    )
                )
                made.append((post, channel, at))
            session.add_all([post for post, _, _ in made])
            session.flush()
            snapshots, links = [], []
            for post, channel, at in made:
                delivery = post.deliveries[0]
                age_now = int((now - at).total_seconds())
                reach = max(50, int(rng.gauss(800, 250)))
                reports_impressions = channel.kind == "x"
                for seconds, label in (*AGES, (min(age_now, 9 * 86400), "latest")):
                    if seconds > age_now:
                        continue
                    share = min(1.0, seconds / (7 * 86400)) ** 0.3
                    snapshots.append(
                        {
                            "delivery_id": delivery.id,
                            "window": label,
                            "source": "platform",
                            "window_seconds": None if label == "latest" else seconds,
                            "collected_at": at + dt.timedelta(seconds=seconds + 60),
                            "age_seconds": seconds + 60,
                            "impressions": int(reach * share) if reports_impressions else None,
                            "likes": int(reach * share * 0.02),
                            "reposts": int(reach * share * 0.004),
                            "replies": int(reach * share * 0.002),
                        }
                    )
                code = uuid.uuid4().hex[:12]
                links.append(
                    {
                        "code": code,
                        "delivery_id": delivery.id,
                        "organisation_id": org.id,
                        "target_url": f"https://careers.example.ac.uk/{code}",
                        "target_sha256": hashlib.sha256(code.encode()).hexdigest(),
                        "created_at": at,
                    }
                )
            session.execute(insert(MetricSnapshot), snapshots)
            session.execute(insert(TrackedLink), links)
            link_ids = dict(
                session.execute(
                    select(TrackedLink.delivery_id, TrackedLink.id).where(
                        TrackedLink.code.in_([link["code"] for link in links])
                    )
                ).all()
            )
            clicks = []
            for post, _channel, at in made:
                for _ in range(rng.randrange(0, 21)):
                    clicked = min(now, at + dt.timedelta(seconds=rng.expovariate(1 / 40000)))
                    clicks.append(
                        {
                            "link_id": link_ids[post.deliveries[0].id],
                            "clicked_at": clicked,
                            "day": clicked.date(),
                            "visitor_hash": None,
                            "is_first_today": False,
                        }
                    )
            session.execute(insert(LinkClick), clicks)
        # Table statistics, as autovacuum (PostgreSQL) or a routine ANALYZE would have them:
        # without any the planner takes the fresh tables for empty.
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
        return len(snapshots) + len(clicks)
    finally:
        engine.dispose()


def signed_in(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    assert token, "no CSRF token on /login"
    answer = session.post(
        f"{base}/login",
        data={"email": MANAGER.email, "password": MANAGER.password, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, f"sign-in failed: {answer.status_code}"
    return session


def hammer(sessions: list[requests.Session], base: str, path: str, total: int) -> Run:
    """`total` GETs of `path`, shared between the signed-in sessions, one thread each."""

    def send(session: requests.Session, index: int, n: int) -> int:
        # 900 periods in turn: with 64 views cached, a period is never still cached.
        first = dt.date.today() - dt.timedelta(days=84 + (index * 997 + n) % 900)
        target = base + path.replace("{from}", first.isoformat())
        try:
            response = session.get(target, allow_redirects=False, timeout=30)
        except requests.RequestException:
            return 0  # no answer (a timeout, or the connection closed)
        # A dashboard answer must hold the table (a filter problem would be a 400).
        ok = response.status_code == 200 and (path == "/healthz" or "<tbody>" in response.text)
        return response.status_code if ok else -response.status_code

    return closed_loop(sessions, path, total, send)


def start_gunicorn(url: str, workdir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    """The README's deployment with several web processes: gunicorn, `workers` processes of
    GUNICORN_THREADS threads, on a loopback port, logging to server.log in `workdir`."""
    env = {k: v for k, v in os.environ.items() if k != "CAMPAIGN_CONFIG"} | {
        "CAMPAIGN_DATABASE__URL": url,
        "CAMPAIGN_APP__ENV": "testing",
        "CAMPAIGN_APP__SECRET_KEY": SECRET_KEY,
        "CAMPAIGN_APP__INSTANCE_PATH": str(workdir),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "--workers", str(workers), "--threads", str(GUNICORN_THREADS)]
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{port}", "campaign:create_app()"],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {workdir / 'server.log'}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                    return process
            except requests.RequestException:
                pass  # not listening yet, or its workers still starting
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer /healthz within 60 s")
    except BaseException:
        stop_gunicorn(process)
        raise


def stop_gunicorn(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the gunicorn master by its pid: it stops its own worker processes."""
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def bench(kind: str, posts: int, total: int, clients: int, workers: int) -> tuple[int, list[Run]]:
    """Seed a database of this kind, start the server (`workers` gunicorn processes, or 0:
    one waitress process), and hammer each path."""
    with tempfile.TemporaryDirectory(prefix="campaign-dashboard-") as tmp:
        workdir = Path(tmp)
        with database(kind, workdir) as url:
            rows = seed(url, posts)
            port = free_port()
            if workers:
                process = start_gunicorn(url, workdir, port, workers)
            else:
                process = start_server(url, workdir, port, 30.0)
            try:
                base = f"http://127.0.0.1:{port}"
                sessions = [signed_in(base) for _ in range(clients)]
                runs = []
                for path in ("/healthz", *PATHS):
                    hammer(sessions, base, path, max(clients, total // 10))
                    runs.append(hammer(sessions, base, path, total))
                for session in sessions:
                    session.close()
            finally:
                (stop_gunicorn if workers else stop_server)(process)
            if any(set(run.statuses) != {200} for run in runs):
                # What the server said about the failures (timeouts, restarted workers, ...).
                lines = (workdir / "server.log").read_text(errors="replace").splitlines()
                print(f"server.log ({kind}), last lines:", *lines[-15:], sep="\n  ")
    return rows, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--gunicorn",
        type=int,
        default=0,
        metavar="WORKERS",
        help=f"serve with gunicorn, this many processes of {GUNICORN_THREADS} threads "
        "(default: one `campaign serve` waitress process)",
    )
    args = parser.parse_args()
    if args.gunicorn < 0 or args.clients < 1 or args.requests < 1 or args.posts < 0:
        parser.error("--gunicorn, --posts must be 0 or more; --clients, --requests 1 or more")
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    server = (
        f"gunicorn, {args.gunicorn} processes x {GUNICORN_THREADS} threads"
        if args.gunicorn
        else "campaign serve (one waitress process)"
    )
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"demo + {args.posts} posts, {args.requests} requests per path, {args.clients} clients")
    print(f"server: {server}")
    print("| database | path | requests/s | p50 ms | p95 ms | p99 ms | all 200 |")
    print("|---|---|---:|---:|---:|---:|---|")
    ok = True
    for kind in kinds:
        _rows, runs = bench(kind, args.posts, args.requests, args.clients, args.gunicorn)
        for run in runs:
            good = run.statuses == {200: run.requests}
            ok = ok and good
            print(
                f"| {kind} | `{run.path}` | {run.rate:,.0f} | {run.percentile(0.5):.1f} "
                f"| {run.percentile(0.95):.1f} | {run.percentile(0.99):.1f} "
                f"| {'PASS' if good else f'FAIL {run.statuses}'} |"
            )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
