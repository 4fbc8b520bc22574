"""The `campaign` command against a fresh database of each kind (no shared transaction here)."""

import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import func, select, update

from campaign import create_app
from campaign.cli import cli
from campaign.crypto import CredentialBox, generate_key
from campaign.models import ApiToken, Channel, Delivery, Organisation, OutboxEntry, User
from campaign.web.context import state
from tests.conftest import settings_for


@pytest.fixture
def fresh_app(db_kind, fresh_database_url, tmp_path):
    url = fresh_database_url(db_kind)
    application = create_app(settings_for(url, tmp_path))
    yield application
    state(application).engine.dispose()


def invoke(app, *args, stdin=None):
    return app.test_cli_runner().invoke(cli, list(args), input=stdin)


@pytest.fixture
def migrated_app(fresh_app):
    assert invoke(fresh_app, "db", "upgrade").exit_code == 0
    return fresh_app


def test_db_upgrade_creates_the_schema(fresh_app):
    result = invoke(fresh_app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    with state(fresh_app).session_factory() as session:
        assert session.scalar(select(func.count(Organisation.id))) == 0


def test_demo_loads_once_and_prints_logins(migrated_app):
    first = invoke(migrated_app, "demo")
    second = invoke(migrated_app, "demo")
    assert first.exit_code == second.exit_code == 0
    assert "staff@demo.example" in first.output and "password:" in first.output
    assert "already present" in second.output
    with state(migrated_app).session_factory() as session:
        assert session.scalar(select(func.count(Organisation.id))) == 1
        assert session.scalar(select(func.count(User.id))) == 3


def test_demo_if_empty_leaves_other_organisations_alone(migrated_app):
    invoke(
        migrated_app,
        "users",
        "create",
        "--org",
        "nope",
        "--email",
        "a@b.c",
        "--role",
        "staff",
        stdin="x\n",
    )
    from campaign.db import utcnow
    from campaign.services.organisations import create_organisation

    with state(migrated_app).session_factory.begin() as session:
        create_organisation(session, "real-uni", "Real", "Europe/London", utcnow())
    result = invoke(migrated_app, "demo", "--if-empty")
    assert "not loaded" in result.output


def test_users_create_reads_the_password_from_stdin(migrated_app):
    invoke(migrated_app, "demo")
    result = invoke(
        migrated_app,
        "users",
        "create",
        "--org",
        "demo",
        "--email",
        "Adviser@Demo.example",
        "--role",
        "manager",
        stdin="a-long-enough-password\n",
    )
    assert result.exit_code == 0, result.output
    with state(migrated_app).session_factory() as session:
        user = session.scalar(select(User).where(User.email == "adviser@demo.example"))
        assert user is not None and "a-long-enough-password" not in user.password_hash


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["users", "create", "--org", "demo", "--email", "x@demo.example", "--role", "staff"],
            "short\n",
            "at least 12",
        ),
        (
            ["users", "create", "--org", "missing", "--email", "x@demo.example", "--role", "staff"],
            "a-long-enough-password\n",
            "no organisation",
        ),
        (
            ["tokens", "create", "--org", "demo", "--name", "t", "--scopes", "read,bogus"],
            None,
            "unknown scope",
        ),
    ],
)
def test_user_errors_exit_1_with_one_line(migrated_app, args, stdin, message):
    invoke(migrated_app, "demo")
    result = invoke(migrated_app, *args, stdin=stdin)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_usage_exits_2(migrated_app):
    assert invoke(migrated_app, "users", "create", "--role", "emperor").exit_code == 2


def test_tokens_create_prints_the_token_once_and_stores_its_hash(migrated_app):
    invoke(migrated_app, "demo")
    result = invoke(
        migrated_app,
        "tokens",
        "create",
        "--org",
        "demo",
        "--name",
        "feed",
        "--scopes",
        "vacancies:write,read",
    )
    assert result.exit_code == 0
    plaintext = result.output.strip().splitlines()[-1]
    with state(migrated_app).session_factory() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.name == "feed"))
        assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert token.scope_list == ["read", "vacancies:write"]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_web_and_worker_together(db_kind, fresh_database_url, tmp_path):
    url, port = fresh_database_url(db_kind), _free_port()
    env = {
        **os.environ,
        "CAMPAIGN_DATABASE__URL": url,
        "CAMPAIGN_APP__INSTANCE_PATH": str(tmp_path),
        "CAMPAIGN_WORKER__TICK_SECONDS": "0.2",
        "CAMPAIGN_CONFIG": "",
    }
    env.pop("CAMPAIGN_CONFIG")
    campaign = [sys.executable, "-c", "from campaign.cli import main; main()"]
    subprocess.run(
        [*campaign, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=tmp_path
    )
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [*campaign, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        for _ in range(300):  # up to about 30 s on a slow, busy machine
            try:
                body = requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).json()
                if body["worker"]["last_tick"]:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        assert body is not None, "the server never answered"
        assert body["database"] == "ok"
        assert body["worker"]["last_tick"].endswith("Z")
        # waitress identifies as "campaign"; Flask's development server would say Werkzeug.
        assert (
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).headers["Server"]
            == "campaign"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_worker_ticks_and_stops_on_sigterm(db_kind, fresh_database_url, tmp_path):
    from campaign.migrate import upgrade
    from campaign.services.system import last_worker_tick

    url = fresh_database_url(db_kind)
    upgrade(url)
    env = {
        **os.environ,
        "CAMPAIGN_DATABASE__URL": url,
        "CAMPAIGN_APP__INSTANCE_PATH": str(tmp_path),
        "CAMPAIGN_WORKER__TICK_SECONDS": "0.2",
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-c", "from campaign.cli import main; main()", "worker"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    app = create_app(settings_for(url, tmp_path))
    try:
        tick = None
        for _ in range(300):  # up to about 30 s on a slow, busy machine
            with state(app).session_factory() as session:
                tick = last_worker_tick(session)
            if tick:
                break
            time.sleep(0.1)
        assert tick is not None, (tmp_path / "worker.log").read_text()
    finally:
        worker.terminate()
        assert worker.wait(timeout=10) == 0
        log.close()
        state(app).engine.dispose()


SECRET = "tok-very-secret-value"


def test_channels_add_reads_credentials_from_stdin_and_stores_them_encrypted(migrated_app):
    invoke(migrated_app, "demo")
    result = invoke(
        migrated_app,
        "channels", "add", "--org", "demo", "--kind", "mastodon", "--name", "Careers",
        "--base-url", "https://mastodon.example", "--max-per-hour", "4",
        stdin=json.dumps({"access_token": SECRET}),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    with state(migrated_app).session_factory() as session:
        channel = session.scalar(select(Channel).where(Channel.display_name == "Careers"))
        assert SECRET.encode() not in channel.credentials_encrypted
        assert channel.max_posts_per_hour == 4
    listed = invoke(migrated_app, "channels", "list", "--org", "demo")
    assert "Careers" in listed.output and SECRET not in listed.output


def test_channels_add_refuses_bad_credentials_json_in_one_line(migrated_app):
    invoke(migrated_app, "demo")
    result = invoke(
        migrated_app, "channels", "add", "--org", "demo", "--kind", "bluesky", "--name", "B",
        stdin="{not json",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "not valid JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_channels_add_has_no_way_to_pass_credentials_as_arguments(migrated_app):
    result = invoke(migrated_app, "channels", "add", "--help")
    assert "--token" not in result.output and "--password" not in result.output
    assert "standard input" in result.output


def test_rotate_keys_reencrypts_and_flags_unreadable_channels(migrated_app):
    invoke(migrated_app, "demo")
    st = state(migrated_app)
    invoke(
        migrated_app,
        "channels", "add", "--org", "demo", "--kind", "mastodon", "--name", "M",
        "--base-url", "https://m.example",
        stdin=json.dumps({"access_token": SECRET}),
    )  # fmt: skip
    with st.session_factory.begin() as session:
        session.execute(
            update(Channel)
            .where(Channel.display_name == "Outbox: employers")
            .values(credentials_encrypted=CredentialBox([generate_key()]).encrypt(b"{}"))
        )
    result = invoke(migrated_app, "channels", "rotate-keys")
    assert result.exit_code == 0
    assert "rotated credentials of 1 channel(s)" in result.output
    assert "marked 'reconnect needed'" in result.stderr
    with st.session_factory() as session:
        flagged = session.scalar(select(Channel).where(Channel.display_name == "Outbox: employers"))
        assert flagged.status == "needs_reauth"


def test_publish_due_publishes_due_outbox_posts_and_prints_what_it_did(migrated_app):
    invoke(migrated_app, "demo")
    st = state(migrated_app)
    with st.session_factory.begin() as session:
        first = session.scalar(select(Delivery).order_by(Delivery.id).limit(1))
        first.due_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        first_id = first.id
    result = invoke(migrated_app, "publish-due")
    assert result.exit_code == 0, result.output
    assert "claimed 1, published 1" in result.output
    with st.session_factory() as session:
        assert session.get(Delivery, first_id).status == "published"
        assert session.scalar(select(OutboxEntry.text)) is not None
    again = invoke(migrated_app, "publish-due")
    assert "claimed 0, published 0" in again.output
