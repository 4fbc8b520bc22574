"""The `campaign` command: a Flask CLI group bound to the app factory."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from typing import Any, NoReturn

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from campaign import create_app
from campaign.config import ConfigError
from campaign.db import utcnow
from campaign.models import AUDIENCES, CHANNEL_KINDS, Role
from campaign.services import ServiceError, accounts, campaigns, demo, demo_vacancies, tokens
from campaign.services.organisations import get_organisation_by_slug
from campaign.state import AppState


def _app_state() -> AppState:
    found: AppState = current_app.extensions["campaign"]
    return found


def _fail(message: str) -> NoReturn:
    """A user error: one line on stderr, exit code 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _make_app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        _fail(str(exc))
        raise


@click.group(cls=FlaskGroup, create_app=_make_app, add_version_option=False, load_dotenv=False)
def cli() -> None:
    """Social media campaigns and vacancy alerts for careers services."""


@cli.command("serve")
@click.option("--host", default=None, help="Interface to listen on (default from [server] host).")
@click.option("--port", type=int, default=None, help="Port (default from [server] port).")
@click.option(
    "--no-worker", is_flag=True, help="Serve the web app only; run `campaign worker` separately."
)
@with_appcontext
def serve(host: str | None, port: int | None, no_worker: bool) -> None:
    """Serve the app with a production WSGI server (waitress), plus the embedded worker."""
    from waitress import serve as waitress_serve

    from campaign.worker.scheduler import build_scheduler

    app, st = current_app._get_current_object(), _app_state()  # type: ignore[attr-defined]
    host = host or st.settings.server.host
    port = st.settings.server.port if port is None else port
    scheduler = None
    stop = threading.Event()
    if not no_worker:
        scheduler = build_scheduler(st, blocking=False, stop=stop)
        scheduler.start()
    click.echo(
        f"campaign is serving at http://{host}:{port} (worker: {'off' if no_worker else 'on'})"
    )
    try:
        waitress_serve(
            app, host=host, port=port, threads=st.settings.server.threads, ident="campaign"
        )
    finally:
        stop.set()
        if scheduler is not None:
            scheduler.shutdown(wait=True)


@cli.command("worker")
@with_appcontext
def worker() -> None:
    """Run the worker only: ticks for dispatch, reaping, reconciliation, feeds and metrics."""
    from campaign.worker.scheduler import build_scheduler

    stop = threading.Event()
    scheduler = build_scheduler(_app_state(), blocking=True, stop=stop)

    def _stop(_signum: int, _frame: Any) -> None:
        # Finish the call in flight, give back claimed deliveries not yet started, then exit.
        stop.set()
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, _stop)
    click.echo("campaign worker started; stop with Ctrl-C")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


@cli.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the configured database to the latest schema (Alembic)."""
    from campaign.migrate import upgrade

    upgrade(_app_state().settings.database_url, revision)
    click.echo(f"database is at {revision}")


@cli.command("demo")
@click.option(
    "--if-empty", is_flag=True, help="Only load when the database has no organisation yet."
)
@with_appcontext
def demo_command(if_empty: bool) -> None:
    """Load the demo organisation (idempotent) and print its logins."""
    from sqlalchemy import select

    from campaign.models import Organisation

    st = _app_state()
    with st.session_factory.begin() as session:
        has_orgs = session.scalar(select(Organisation.id).limit(1)) is not None
        demo_id = session.scalar(select(Organisation.id).where(Organisation.slug == demo.DEMO_SLUG))
        if if_empty and has_orgs and demo_id is None:
            click.echo("the database already holds organisations; demo not loaded")
            return
        _org, created = demo.load_demo(
            session,
            st.hasher,
            utcnow(),
            link_base_url=st.settings.app.base_url,
            metric_ages=st.settings.metrics.ages,
        )
    click.echo("demo organisation loaded" if created else "demo organisation already present")
    if created:
        started = demo_vacancies.start_vacancy_feeds(
            st.session_factory, st.settings, _org.id, utcnow()
        )
        for outcome in started.polled:
            click.echo(f"  vacancy {outcome.line()}")
        click.echo(
            f"  {len(started.alert_posts)} vacancy alert posts planned, "
            f"{len(started.held_for_review)} of them held for a manager's review"
        )
    click.echo("Demo logins (organisation 'demo'):")
    for login in demo.DEMO_LOGINS:
        click.echo(f"  {login.role:<8} {login.email:<24} password: {login.password}")


@cli.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create")
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", default="", help="Display name (defaults to the email's local part).")
@with_appcontext
def users_create(org_slug: str, email: str, role: str, name: str) -> None:
    """Create a user; the password is read from standard input."""
    password = sys.stdin.readline().rstrip("\n")
    st = _app_state()
    try:
        with st.session_factory.begin() as session:
            org = get_organisation_by_slug(session, org_slug)
            user = accounts.create_user(
                session, org.id, email, password, Role(role), name, st.hasher, None, utcnow()
            )
            created = user.email
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"created {role} {created} in {org_slug}")


@cli.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--name", required=True)
@click.option(
    "--scopes",
    required=True,
    help="Comma-separated: read, posts:write, vacancies:write, metrics:write, admin.",
)
@with_appcontext
def tokens_create(org_slug: str, name: str, scopes: str) -> None:
    """Create an API token and print it once; only its hash is stored."""
    st = _app_state()
    try:
        with st.session_factory.begin() as session:
            org = get_organisation_by_slug(session, org_slug)
            _token, plaintext = tokens.create_token(
                session, org.id, name, tokens.parse_scopes(scopes), None, utcnow()
            )
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(plaintext)


@cli.command("publish-due")
@with_appcontext
def publish_due() -> None:
    """One dispatch pass now (reap, mark missed, publish, reconcile), then exit."""
    from campaign.worker.dispatch import PassReport
    from campaign.worker.scheduler import build_dispatcher, new_identity

    dispatcher = build_dispatcher(_app_state(), f"cli:{new_identity().worker_id}")
    report = PassReport()
    dispatcher.housekeeping(report)
    dispatcher.dispatch(report)
    dispatcher.reconcile(report)
    click.echo(f"publish-due: {report.summary()}")


@cli.group("metrics")
def metrics_group() -> None:
    """Engagement figures: read them from the platforms, or import them from a CSV file."""


@metrics_group.command("collect")
@with_appcontext
def metrics_collect() -> None:
    """Read the figures of every delivery due at a post age now (one pass), then exit."""
    from campaign.services.metrics import ChannelReport
    from campaign.worker.scheduler import build_metrics_collector

    def progress(channel: ChannelReport) -> None:
        click.echo(channel.line())

    report = build_metrics_collector(_app_state())(progress)
    click.echo(f"metrics collect: {report.summary()}")


@cli.group("feeds")
def feeds_group() -> None:
    """Vacancy feed sources."""


@feeds_group.command("poll")
@click.option("--source", "source_id", type=int, default=None, help="Poll only this source id.")
@with_appcontext
def feeds_poll(source_id: int | None) -> None:
    """One polling pass now (every enabled feed source, due or not), then exit."""
    from campaign.services.vacancy_sources import PollOutcome, poll_all

    st = _app_state()

    def progress(outcome: PollOutcome) -> None:
        click.echo(outcome.line())

    outcomes = poll_all(
        st.session_factory,
        st.settings,
        st.pinned_now or utcnow(),
        source_id=source_id,
        progress=progress,
    )
    errors = sum(1 for o in outcomes if o.status == "error")
    click.echo(f"feeds poll: {len(outcomes)} source(s) polled, {errors} with errors")


@metrics_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--dry-run", is_flag=True, help="Check every row and report; save nothing.")
@with_appcontext
def metrics_import(file: str, org_slug: str, dry_run: bool) -> None:
    """Import engagement figures from an engagement CSV file (every bad row is reported)."""
    from pathlib import Path

    from campaign.services import engagement_import
    from campaign.services.audit import Actor
    from campaign.services.metric_windows import windows_from

    path = Path(file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    st = _app_state()
    windows = windows_from(st.settings.metrics.ages)
    with st.session_factory() as session:
        try:
            org = get_organisation_by_slug(session, org_slug)
        except ServiceError as exc:
            _fail(str(exc))
        now = utcnow()
        click.echo(f"metrics import: checking {path.name} for {org_slug}")
        checked = engagement_import.preview(session, org, data, now, windows)
        if checked.errors:
            _fail(f"{path.name} cannot be imported: {' '.join(checked.errors)}")
        for problem in checked.problems:
            click.echo(f"  refused {problem}")
        good, bad = len(checked.readings), len(checked.bad_lines)
        skipped = f", {len(checked.skipped)} tracked-link rows skipped" if checked.skipped else ""
        if dry_run:
            click.echo(
                f"metrics import (dry run): {good} readings would be saved, {bad} rows refused"
                f"{skipped}; nothing saved"
            )
            return
        actor = Actor(org.id, "command line (campaign metrics import)", role=Role.ADMIN.value)
        report = engagement_import.commit(session, actor, org, data, now, None, windows)
        session.commit()
    refused = len({p.line for p in report.refused})
    click.echo(
        f"metrics import: {len(report.saved)} readings saved, {refused} rows refused{skipped}"
    )


@cli.group("channels")
def channels_group() -> None:
    """Manage channels (where posts go)."""


@channels_group.command("add")
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--kind", type=click.Choice(list(CHANNEL_KINDS)), required=True)
@click.option("--name", required=True, help="Display name, e.g. 'Careers on Mastodon'.")
@click.option("--base-url", default=None, help="Mastodon instance or Bluesky PDS address.")
@click.option("--audience", type=click.Choice(list(AUDIENCES)), default="students")
@click.option("--requires-approval", is_flag=True, help="Posts need a manager's approval.")
@click.option("--max-per-hour", type=click.IntRange(min=1), default=None)
@click.option("--max-per-day", type=click.IntRange(min=1), default=None)
@with_appcontext
def channels_add(
    org_slug: str,
    kind: str,
    name: str,
    base_url: str | None,
    audience: str,
    requires_approval: bool,
    max_per_hour: int | None,
    max_per_day: int | None,
) -> None:
    """Add a channel; credentials are read from standard input as JSON, never from arguments."""
    import json

    from campaign.services.channels import REQUIRED_CREDENTIALS, NewChannel, create_channel

    credentials: dict[str, Any] = {}
    if REQUIRED_CREDENTIALS[kind] != ((),):
        raw = sys.stdin.read()
        try:
            credentials = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            _fail(f"credentials on standard input are not valid JSON: {exc.msg}")
        if not isinstance(credentials, dict):
            _fail("credentials on standard input must be a JSON object")
    st = _app_state()
    spec = NewChannel(
        kind=kind,
        display_name=name,
        audience=audience,
        base_url=base_url,
        requires_approval=requires_approval,
        max_posts_per_hour=max_per_hour,
        max_posts_per_day=max_per_day,
    )
    try:
        with st.session_factory.begin() as session:
            org = get_organisation_by_slug(session, org_slug)
            channel = create_channel(
                session, org.id, spec, credentials, st.credentials, None, utcnow()
            )
            channel_id = channel.id
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"added {kind} channel {channel_id} '{name}' to {org_slug}")
    if kind == "mastodon":
        from campaign.services.instance_limits import refresh_mastodon_limits

        if refresh_mastodon_limits(st.session_factory, st.settings, only=channel_id):
            click.echo("read the instance's character limits")
        else:
            click.echo("could not read the instance's character limits yet; the worker will retry")


@channels_group.command("list")
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@with_appcontext
def channels_list(org_slug: str) -> None:
    """List an organisation's channels (never their credentials)."""
    st = _app_state()
    try:
        with st.session_factory.begin() as session:
            org = get_organisation_by_slug(session, org_slug)
            rows = [
                (c.id, c.kind, c.status, c.display_name, c.base_url or "")
                for c in campaigns.list_channels(session, org.id)
            ]
    except ServiceError as exc:
        _fail(str(exc))
    for row in rows:
        click.echo("\t".join(str(part) for part in row))


@channels_group.command("rotate-keys")
@with_appcontext
def channels_rotate_keys() -> None:
    """Re-encrypt all stored credentials under the first key in security.encryption_keys."""
    from campaign.services.channels import rotate_all_credentials

    st = _app_state()
    with st.session_factory.begin() as session:
        rotated, unreadable = rotate_all_credentials(session, st.credentials)
    click.echo(f"rotated credentials of {rotated} channel(s)")
    if unreadable:
        ids = ", ".join(str(i) for i in unreadable)
        click.echo(f"could not decrypt channel(s) {ids}: marked 'reconnect needed'", err=True)


@cli.command("analyse", with_appcontext=False)
@click.argument("file", type=click.File("rb"))
def analyse(file: Any) -> None:
    """Compare framings from a JSON file (or - for stdin), printed as JSON; nothing is stored."""
    import json

    from campaign.analysis import AnalysisInputError, compare_from_json, load_compare_json

    try:
        result = compare_from_json(load_compare_json(file.read()))
    except AnalysisInputError as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=2, sort_keys=True, allow_nan=False))


@cli.command("report")
@click.argument("experiment_id", type=click.IntRange(min=1))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True
)
@click.option("--age", default=None, help="Post age to read figures at, e.g. 24h or 7d.")
@with_appcontext
def report(experiment_id: int, fmt: str, age: str | None) -> None:
    """The experiment report from stored figures (CSV cells that look like formulas are defused)."""
    from campaign.services.experiment_report_cli import render_report

    try:
        click.echo(render_report(_app_state(), experiment_id, fmt, age, utcnow()), nl=False)
    except (ServiceError, ValueError) as exc:
        _fail(str(exc))


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # APScheduler logs every job run at INFO and every overlapping tick at WARNING; our own jobs
    # log what a tick did, so its routine chatter would only fill the terminal.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    cli(prog_name="campaign")
