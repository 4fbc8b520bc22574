"""The click redirector /l/<code>: stored targets only, one click per request, no cookies."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from campaign import create_app
from campaign.models import Delivery, Post
from campaign.models.engagement import LinkBotHit, LinkClick, LinkSalt, TrackedLink
from campaign.services import links
from campaign.web.context import state
from tests import factories
from tests.conftest import NOW, settings_for

BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"
)
TARGET = "https://careers.example.ac.uk/fair?ref=post"
EXPECTED = TARGET + "&utm_source=outbox&utm_medium=social"


@pytest.fixture
def link(db, world):
    """A delivery whose text carries TARGET, and its code."""
    post = Post(
        organisation_id=world.home.org.id, text=f"Book now {TARGET}", status="approved",
        created_at=NOW,
    )  # fmt: skip
    post.deliveries.append(
        Delivery(
            channel=world.home.channel, due_at=NOW, idempotency_key=uuid.uuid4().hex,
            updated_at=NOW,
        )
    )  # fmt: skip
    db.add(post)
    db.flush()
    delivery_id = post.deliveries[0].id
    published = links.ensure_links(db, [delivery_id], "http://localhost", NOW)[delivery_id]
    (code,) = published.codes.values()
    link_id = db.scalar(select(TrackedLink.id).where(TrackedLink.code == code))
    return code, link_id, delivery_id


def _get(client, path, agent=BROWSER, **kwargs):
    return client.get(path, headers={"User-Agent": agent}, **kwargs)


def _clicks(db, link_id):
    return db.execute(
        select(func.count(), func.count().filter(LinkClick.is_first_today.is_(True))).where(
            LinkClick.link_id == link_id
        )
    ).one()


def _bot_hits(db, link_id):
    return db.execute(
        select(LinkBotHit.bot, LinkBotHit.user_agent).where(LinkBotHit.link_id == link_id)
    ).all()


def test_a_click_redirects_to_the_stored_target_with_utm(client, db, link):
    code, link_id, _ = link
    response = _get(client, f"/l/{code}")
    assert response.status_code == 302
    assert response.headers["Location"] == EXPECTED
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    # The site's other security headers are still there.
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in response.headers
    assert tuple(_clicks(db, link_id)) == (1, 1)


def test_each_request_is_one_click_and_one_visitor_is_unique_once(client, db, link):
    code, link_id, delivery_id = link
    for _ in range(3):
        assert _get(client, f"/l/{code}").status_code == 302
    other = client.get(
        f"/l/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "192.0.2.9"}
    )
    assert other.status_code == 302
    assert tuple(_clicks(db, link_id)) == (4, 2)
    assert links.click_counts(db, [delivery_id])[delivery_id] == links.ClickCounts(4, 2, 0)


def test_no_raw_address_or_user_agent_is_stored(client, db, link):
    code, link_id, _ = link
    client.get(
        f"/l/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "203.0.113.77"}
    )
    row = db.execute(select(LinkClick.__table__).where(LinkClick.link_id == link_id)).one()
    stored = " ".join(str(value) for value in row)
    assert "203.0.113" not in stored and "iPhone" not in stored
    assert len(row.visitor_hash) == 32
    assert db.scalar(select(func.count()).select_from(LinkSalt)) >= 1


def test_no_cookie_even_for_a_signed_in_member(client, auth, world, link):
    auth.login(world.home.staff.email)
    code, _, _ = link
    response = _get(client, f"/l/{code}")
    assert response.status_code == 302
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "agent",
    [
        "Twitterbot/1.0",
        "http.rb/5.1.1 (Mastodon/4.2.1; +https://mastodon.social/)",
        "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "curl/8.5.0",
    ],
)
def test_preview_fetchers_are_bot_hits_not_clicks(client, db, link, agent):
    code, link_id, delivery_id = link
    response = _get(client, f"/l/{code}", agent=agent)
    assert response.status_code == 302
    assert response.headers["Location"] == EXPECTED
    assert tuple(_clicks(db, link_id)) == (0, 0)
    assert [ua for _, ua in _bot_hits(db, link_id)] == [agent]
    assert links.click_counts(db, [delivery_id])[delivery_id] == links.ClickCounts(0, 0, 1)


def test_head_is_a_bot_hit_not_a_click(client, db, link):
    code, link_id, _ = link
    response = client.head(f"/l/{code}", headers={"User-Agent": BROWSER})
    assert response.status_code == 302
    assert response.headers["Location"] == EXPECTED
    assert tuple(_clicks(db, link_id)) == (0, 0)
    assert _bot_hits(db, link_id) == [("HEAD request", BROWSER)]


@pytest.mark.parametrize(
    "path",
    ["/l/NoSuch123", "/l/zzzzzzzzz", "/l/a", "/l/" + "a" * 40, "/l/caf%C3%A9123", "/l/%00abcdefg"],
)
def test_unknown_codes_are_a_plain_404(client, db, link, path):
    response = _get(client, path)
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert "not known" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(LinkClick)) == 0


@pytest.mark.parametrize(
    "query",
    [
        "?next=https://evil.example/",
        "?url=https://evil.example/",
        "?next=//evil.example",
        "?url=%2F%2Fevil.example",
        "?redirect=/%5Cevil.example&target=https:evil.example",
        "?next=https%3A%2F%2Fevil.example%2F&url=%E2%80%AEelpmaxe.live",
        "?utm_source=evil&utm_campaign=evil",
    ],
)
def test_the_query_string_never_chooses_the_target(client, link, query):
    code, _, _ = link
    response = _get(client, f"/l/{code}{query}")
    assert response.status_code == 302
    assert response.headers["Location"] == EXPECTED


@pytest.mark.parametrize(
    "suffix",
    [
        "//evil.example",
        "/%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/https://evil.example",
        "\\evil.example",
        "%5C%5Cevil.example",
        "/..%2F..%2Flogin",
        "%E3%80%82evil",
        "%EF%BC%8F%EF%BC%8Fevil.example",
    ],
)
def test_paths_that_smuggle_a_target_never_redirect_off_site(client, link, suffix):
    code, _, _ = link
    response = _get(client, f"/l/{code}{suffix}")
    assert response.status_code in (301, 302, 308, 404)
    location = response.headers.get("Location", "")
    assert "evil" not in location
    if response.status_code == 302:
        assert location == EXPECTED


def test_a_click_that_cannot_be_recorded_still_redirects_and_is_logged(client, db, link, caplog):
    code, _, _ = link
    assert _get(client, f"/l/{code}").status_code == 302  # the target is now looked up
    # Make every write to the click table fail, as a locked or broken database would.
    db.execute(text("ALTER TABLE link_clicks RENAME TO link_clicks_away"))
    with caplog.at_level(logging.ERROR, logger="campaign.web.links"):
        response = _get(client, f"/l/{code}")
    assert response.status_code == 302
    assert response.headers["Location"] == EXPECTED
    assert "could not be recorded" in caplog.text


def test_a_target_that_cannot_be_looked_up_is_a_503_not_a_500(app, client, link, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def down(*_args):
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr("campaign.web.links.target_for", down)
    code, _, _ = link
    response = _get(client, f"/l/{code}")
    assert response.status_code == 503
    assert "try again" in response.get_data(as_text=True)
    assert "Location" not in response.headers


def test_the_client_address_comes_from_the_proxy_when_one_is_configured(
    database_url, db, tmp_path, link
):
    proxied = create_app(settings_for(database_url, tmp_path, server={"proxy_count": 1}))
    state(proxied).session_override = db
    state(proxied).pinned_now = NOW
    try:
        client = proxied.test_client()
        code, link_id, _ = link
        for address in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
            response = client.get(
                f"/l/{code}", headers={"User-Agent": BROWSER, "X-Forwarded-For": address}
            )
            assert response.status_code == 302
        assert tuple(_clicks(db, link_id)) == (3, 2)
    finally:
        state(proxied).engine.dispose()


def test_a_direct_client_cannot_forge_its_address(client, db, link):
    code, link_id, _ = link
    for address in ("198.51.100.1", "198.51.100.2"):
        client.get(f"/l/{code}", headers={"User-Agent": BROWSER, "X-Forwarded-For": address})
    assert tuple(_clicks(db, link_id)) == (2, 1)


def test_on_sqlite_a_locked_database_still_redirects_at_once(fresh_database_url, tmp_path, caplog):
    """Another process holds SQLite's write lock: the click is lost and logged, the visitor goes."""
    import sqlite3

    from campaign.migrate import upgrade

    url = fresh_database_url("sqlite")
    upgrade(url)
    application = create_app(settings_for(url, tmp_path, database={"sqlite_busy_timeout_ms": 20}))
    try:
        app_state = state(application)
        with app_state.session_factory() as session:
            org = factories.make_org(session, "locked-uni", NOW)
            channel = factories.make_channel(session, org, NOW)
            post = factories.make_post(session, org, channel, NOW, NOW)
            post.text = f"See {TARGET}"
            session.flush()
            delivery_id = post.deliveries[0].id
            published = links.ensure_links(session, [delivery_id], "http://localhost", NOW)
            (code,) = published[delivery_id].codes.values()
            session.commit()
        client = application.test_client()
        assert _get(client, f"/l/{code}").status_code == 302  # looked up and cached
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with caplog.at_level(logging.ERROR, logger="campaign.web.links"):
                response = _get(client, f"/l/{code}")
            assert response.status_code == 302
            assert response.headers["Location"] == EXPECTED
            assert "could not be recorded" in caplog.text
            assert "database is locked" in caplog.text
        finally:
            holder.rollback()
            holder.close()
        with app_state.session_factory() as session:
            assert session.scalar(select(func.count()).select_from(LinkClick)) == 1
    finally:
        state(application).engine.dispose()


def test_a_visitor_is_unique_again_after_midnight_utc(app, client, db, link):
    code, link_id, _ = link
    state(app).pinned_now = dt.datetime(2026, 3, 2, 23, 59, tzinfo=dt.UTC)
    _get(client, f"/l/{code}")
    _get(client, f"/l/{code}")
    state(app).pinned_now = dt.datetime(2026, 3, 3, 0, 1, tzinfo=dt.UTC)
    _get(client, f"/l/{code}")
    assert tuple(_clicks(db, link_id)) == (3, 2)
    hashes = db.scalars(
        select(LinkClick.visitor_hash).where(LinkClick.link_id == link_id).order_by(LinkClick.id)
    ).all()
    # The same visitor hashes differently on the two days: the salt rotated.
    assert hashes[0] == hashes[1] != hashes[2]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.dictionaries(
        st.sampled_from(["next", "url", "u", "target", "redirect", "to", "utm_source", "l"]),
        st.one_of(
            st.sampled_from(
                ["//evil.example", "https://evil.example/", "/\\evil.example", "https:evil.example"]
            ),
            st.text(max_size=40),
        ),
        max_size=3,
    )
)
def test_no_query_string_moves_the_redirect(client, link, query):
    code, _, _ = link
    response = client.get(f"/l/{code}", query_string=query, headers={"User-Agent": BROWSER})
    assert response.status_code == 302
    assert response.headers["Location"] == EXPECTED
