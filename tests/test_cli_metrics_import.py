"""`campaign metrics import FILE.csv --org SLUG [--dry-run]` against a fresh database of each kind."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from campaign import create_app
from campaign.cli import cli
from campaign.db import utcnow
from campaign.models import AuditEvent, Channel, Delivery, Post
from campaign.models.metrics import MetricSnapshot
from campaign.services.organisations import create_organisation
from campaign.web.context import state
from tests.conftest import settings_for


@pytest.fixture
def app(db_kind, fresh_database_url, tmp_path):
    url = fresh_database_url(db_kind)
    application = create_app(settings_for(url, tmp_path))
    assert application.test_cli_runner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    yield application
    state(application).engine.dispose()


def invoke(app, *args):
    return app.test_cli_runner().invoke(cli, list(args))


@pytest.fixture
def world(app):
    """Two organisations; "uni" has a post out on one channel and one out on two."""
    published = utcnow() - dt.timedelta(days=2)
    made = {}
    with state(app).session_factory.begin() as session:
        for slug in ("uni", "elsewhere"):
            org = create_organisation(session, slug, slug.title(), "Europe/London", published)
            channels = [
                Channel(organisation_id=org.id, kind="outbox", display_name=name,
                        audience="students", created_at=published)
                for name in ("X", "Mastodon")
            ]  # fmt: skip
            session.add_all(channels)
            for on in (channels[:1], channels):
                post = Post(
                    organisation_id=org.id, text="Hi", status="approved", created_at=published
                )
                for chan in on:
                    post.deliveries.append(
                        Delivery(
                            channel=chan, status="published", due_at=published,
                            published_at=published, external_id=f"{slug}-{uuid.uuid4().hex[:6]}",
                            idempotency_key=uuid.uuid4().hex, updated_at=published,
                        )
                    )  # fmt: skip
                session.add(post)
                session.flush()
                made.setdefault(slug, []).append(post.id)
        made["at"] = (published + dt.timedelta(hours=25)).isoformat()
    return made


def snapshot_count(app):
    with state(app).session_factory() as session:
        return session.scalar(select(func.count(MetricSnapshot.id)))


def write(tmp_path, *lines, name="figures.csv"):
    path = tmp_path / name
    path.write_bytes(("\n".join(["post_id,collected_at,likes,clicks", *lines]) + "\n").encode())
    return str(path)


def test_import_reports_each_bad_row_and_saves_the_good_ones(app, world, tmp_path):
    single, double = world["uni"]
    theirs = world["elsewhere"][0]
    when = world["at"]
    path = write(
        tmp_path,
        f"{single},{when},4,2",
        f"{double},{when},1,1",
        f"{theirs},{when},1,1",
        f"{single},not-a-time,1,1",
    )
    result = invoke(app, "metrics", "import", path, "--org", "uni")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "metrics import: checking figures.csv for uni"
    assert lines[1] == (
        f"  refused line 3, post_id: post {double} went out on 2 channels (X, Mastodon); use the "
        "external_id column to say which."
    )
    assert lines[2] == f"  refused line 4, post_id: no post {theirs} in this organisation."
    assert lines[3].startswith("  refused line 5, collected_at: “not-a-time” is not a date")
    assert lines[-1] == "metrics import: 1 readings saved, 3 rows refused"
    assert snapshot_count(app) == 2  # the 24h window and latest
    with state(app).session_factory() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "engagement.imported")
        ).one()
        assert event.detail["saved"] == 1 and event.actor_label.startswith("command line")
    # The same file again changes nothing.
    assert invoke(app, "metrics", "import", path, "--org", "uni").exit_code == 0
    assert snapshot_count(app) == 2


def test_a_dry_run_saves_nothing(app, world, tmp_path):
    single, _ = world["uni"]
    path = write(tmp_path, f"{single},{world['at']},4,2")
    result = invoke(app, "metrics", "import", path, "--org", "uni", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "metrics import (dry run): 1 readings would be saved, 0 rows refused; nothing saved"
    )
    assert snapshot_count(app) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"post_id,collected_at,views\n1,2026-03-02T10:00:00Z,1\n", "Unknown column"),
        ("post_id,collected_at,likes\n".encode("utf-16"), "UTF-16"),
        (b"post_id,collected_at,likes\n1,2026-03-02T10:00:00Z,\xff\n", "not UTF-8"),
        (b"", "The file is empty"),
    ],
)
def test_an_unusable_file_is_one_line_and_exit_1(app, world, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = invoke(app, "metrics", "import", str(path), "--org", "uni")
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert line.startswith("error: bad.csv cannot be imported: ") and message in line
    assert snapshot_count(app) == 0


def test_a_missing_file_or_unknown_organisation_is_exit_1(app, world, tmp_path):
    missing = invoke(app, "metrics", "import", str(tmp_path / "nope.csv"), "--org", "uni")
    assert missing.exit_code == 1 and "error: cannot read" in missing.output
    path = write(tmp_path, f"{world['uni'][0]},{world['at']},4,2")
    unknown = invoke(app, "metrics", "import", path, "--org", "nowhere")
    assert unknown.exit_code == 1
    assert "error: no organisation with slug 'nowhere'" in unknown.output
    assert snapshot_count(app) == 0
