"""Admins connect Mastodon, X and Bluesky accounts, and reconnect ones that stopped working."""

import datetime as dt
import html
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers
from sqlalchemy import func, select, text

from campaign import create_app
from campaign.channels.x_oauth import code_challenge
from campaign.models import AuditEvent, Channel, MastodonApp, OAuthAuthorization
from campaign.services.channels import read_credentials
from campaign.web.context import state
from tests.conftest import NOW, AuthActions, settings_for

INSTANCE = "https://mastodon.example"
TOKEN = "mastodon-user-token-7f3a9c"
APP_SECRET = "mastodon-app-secret-51bd"
X_API = "https://api.x.example"
X_AUTHORIZE = "https://x.example/i/oauth2/authorize"
CONNECT = "/settings/channels/connect"
ROUTES = [
    ("GET", CONNECT),
    ("GET", f"{CONNECT}/mastodon"),
    ("POST", f"{CONNECT}/mastodon"),
    ("GET", f"{CONNECT}/mastodon/callback"),
    ("GET", f"{CONNECT}/x"),
    ("POST", f"{CONNECT}/x"),
    ("GET", f"{CONNECT}/x/callback"),
    ("GET", f"{CONNECT}/bluesky"),
    ("POST", f"{CONNECT}/bluesky"),
    ("GET", "/settings/channels/{channel_id}/reconnect"),
    ("POST", "/settings/channels/{channel_id}/reconnect"),
]


class Recorder:
    """Every response body the admin's browser was sent, to check no secret is among them."""

    def __init__(self, client):
        self.client = client
        self.bodies = []

    def __call__(self, method, path, **kwargs):
        response = self.client.open(path, method=method, **kwargs)
        self.bodies.append(response.get_data(as_text=True))
        return response

    def leaked(self, secret):
        return any(secret in body for body in self.bodies)


def channel_count(db, kind=None):
    query = select(func.count()).select_from(Channel)
    if kind:
        query = query.where(Channel.kind == kind)
    return db.scalar(query)


def continue_link(response, host):
    """The authorization address the continue page links to, unescaped."""
    assert response.status_code == 200
    found = re.search(rf'href="({re.escape(host)}[^"]+)"', response.get_data(as_text=True))
    assert found, "no link to the platform on the continue page"
    return html.unescape(found.group(1))


def query_of(url):
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def flashes(client, path="/settings/channels"):
    return client.get(path).get_data(as_text=True)


@pytest.fixture
def admin(client, auth, world):
    auth.login(world.home.admin.email)
    return Recorder(client)


@pytest.fixture
def mastodon_api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.post(
            f"{INSTANCE}/api/v1/apps",
            json={"id": "1", "name": "campaign", "client_id": "cid-1", "client_secret": APP_SECRET},
        )
        mocked.post(
            f"{INSTANCE}/oauth/token",
            json={"access_token": TOKEN, "token_type": "Bearer", "scope": "read write"},
        )
        yield mocked


def start_mastodon(admin, auth, instance=INSTANCE, name="Careers on Mastodon"):
    token = auth.csrf(f"{CONNECT}/mastodon")
    response = admin(
        "POST",
        f"{CONNECT}/mastodon",
        data={
            "csrf_token": token,
            "instance_url": instance,
            "display_name": name,
            "audience": "students",
        },
    )
    return query_of(continue_link(response, instance + "/oauth/authorize"))


def callback(admin, kind, **params):
    return admin("GET", f"{CONNECT}/{kind}/callback", query_string=params)


def calls_to(mocked, path):
    return sum(1 for call in mocked.calls if urlsplit(call.request.url).path == path)


def test_mastodon_flow_sends_the_admin_to_approve_with_our_client_and_state(
    admin, auth, db, mastodon_api
):
    query = start_mastodon(admin, auth)
    pending = db.scalar(select(OAuthAuthorization))
    assert query["client_id"] == "cid-1"
    assert query["state"] == pending.state
    assert query["redirect_uri"] == (
        "http://127.0.0.1:5000/settings/channels/connect/mastodon/callback"
    )


def test_mastodon_flow_stores_the_channel_with_its_token_encrypted(
    admin, auth, db, app, world, mastodon_api
):
    query = start_mastodon(admin, auth)
    response = callback(admin, "mastodon", code="the-code", state=query["state"])
    assert response.status_code == 302
    assert response.headers["Location"] == "/settings/channels"
    channel = db.scalar(select(Channel).where(Channel.kind == "mastodon"))
    assert (channel.organisation_id, channel.base_url) == (world.home.org.id, INSTANCE)
    assert read_credentials(channel, state(app).credentials)["access_token"] == TOKEN
    raw = db.execute(
        text("SELECT credentials_encrypted FROM channels WHERE id = :id"), {"id": channel.id}
    ).scalar_one()
    assert TOKEN.encode() not in bytes(raw)
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "channel.connected"))


def test_mastodon_secrets_appear_in_no_page(admin, auth, mastodon_api):
    query = start_mastodon(admin, auth)
    callback(admin, "mastodon", code="the-code", state=query["state"])
    admin("GET", "/settings/channels")
    admin("GET", "/settings/audit")
    assert "Careers on Mastodon" in admin.bodies[-2]
    assert not admin.leaked(TOKEN)
    assert not admin.leaked(APP_SECRET)


def test_secrets_never_reach_the_session_cookie(admin, auth, app, client, db, mastodon_api):
    query = start_mastodon(admin, auth)
    callback(admin, "mastodon", code="the-code", state=query["state"])
    cookie = client.get_cookie("campaign_session")
    session = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    stored = json.dumps(session, default=str)
    assert TOKEN not in stored
    assert APP_SECRET not in stored
    assert query["state"] not in stored


def test_mastodon_app_is_registered_once_per_instance(admin, auth, db, mastodon_api):
    first = start_mastodon(admin, auth)
    callback(admin, "mastodon", code="code-1", state=first["state"])
    second = start_mastodon(admin, auth, name="Graduates on Mastodon")
    callback(admin, "mastodon", code="code-2", state=second["state"])
    assert calls_to(mastodon_api, "/api/v1/apps") == 1
    assert db.scalar(select(func.count()).select_from(MastodonApp)) == 1
    assert channel_count(db, "mastodon") == 2


def test_mastodon_app_secret_is_stored_encrypted(admin, auth, db, mastodon_api):
    start_mastodon(admin, auth)
    raw = db.execute(text("SELECT client_secret_encrypted FROM mastodon_apps")).scalar_one()
    assert APP_SECRET.encode() not in bytes(raw)


@pytest.mark.parametrize("address", ["ftp://mastodon.example", "javascript:alert(1)"])
def test_mastodon_refuses_addresses_that_are_not_http(admin, auth, db, address):
    token = auth.csrf(f"{CONNECT}/mastodon")
    response = admin(
        "POST",
        f"{CONNECT}/mastodon",
        data={"csrf_token": token, "instance_url": address, "display_name": "C"},
    )
    assert response.status_code == 200
    assert "instance address must start with https://" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(OAuthAuthorization)) == 0


def test_an_instance_refusing_registration_is_a_plain_message(admin, auth, db):
    with responses.RequestsMock() as mocked:
        mocked.post(f"{INSTANCE}/api/v1/apps", json={"error": "Too many requests"}, status=429)
        token = auth.csrf(f"{CONNECT}/mastodon")
        response = admin(
            "POST",
            f"{CONNECT}/mastodon",
            data={"csrf_token": token, "instance_url": INSTANCE, "display_name": "C"},
        )
    body = response.get_data(as_text=True)
    assert "could not register the app (HTTP 429): Too many requests" in body
    assert db.scalar(select(func.count()).select_from(OAuthAuthorization)) == 0


def test_callback_with_an_unknown_state_is_refused(admin, client, db, mastodon_api):
    response = callback(admin, "mastodon", code="c", state="made-up")
    assert response.headers["Location"] == CONNECT
    assert "not one of yours" in flashes(client, CONNECT)
    assert channel_count(db) == 2  # the two organisations' outboxes
    assert calls_to(mastodon_api, "/oauth/token") == 0


def test_callback_after_ten_minutes_is_refused(admin, auth, app, client, db, mastodon_api):
    query = start_mastodon(admin, auth)
    state(app).pinned_now = NOW + dt.timedelta(minutes=10, seconds=1)
    callback(admin, "mastodon", code="c", state=query["state"])
    assert "expired" in flashes(client, CONNECT)
    assert channel_count(db, "mastodon") == 0


def test_a_replayed_callback_is_refused(admin, auth, client, db, mastodon_api):
    query = start_mastodon(admin, auth)
    callback(admin, "mastodon", code="c", state=query["state"])
    callback(admin, "mastodon", code="c", state=query["state"])
    assert "already used" in flashes(client, CONNECT)
    assert channel_count(db, "mastodon") == 1
    assert calls_to(mastodon_api, "/oauth/token") == 1


def test_another_organisations_state_is_refused(app, client, auth, world, db, mastodon_api):
    other = AuthActions(app.test_client())
    other.login(world.other.admin.email)
    query = start_mastodon(Recorder(other.client), other)
    auth.login(world.home.admin.email)
    callback(Recorder(client), "mastodon", code="c", state=query["state"])
    assert "not one of yours" in flashes(client, CONNECT)
    assert channel_count(db, "mastodon") == 0


def test_declining_on_the_instance_creates_nothing(admin, auth, client, db, mastodon_api):
    query = start_mastodon(admin, auth)
    callback(admin, "mastodon", error="access_denied", state=query["state"])
    assert "You declined to connect the Mastodon account" in flashes(client, CONNECT)
    assert channel_count(db, "mastodon") == 0
    assert calls_to(mastodon_api, "/oauth/token") == 0


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, {"error": "invalid_grant"}, "refused the connection (HTTP 400): invalid_grant"),
        (503, {}, "could not finish connecting (HTTP 503)"),
    ],
)
def test_an_instance_refusing_the_code_creates_nothing(
    admin, auth, client, db, status, body, message
):
    with responses.RequestsMock() as mocked:
        mocked.post(f"{INSTANCE}/api/v1/apps", json={"client_id": "c", "client_secret": "s"})
        mocked.post(f"{INSTANCE}/oauth/token", json=body, status=status)
        query = start_mastodon(admin, auth)
        callback(admin, "mastodon", code="c", state=query["state"])
    assert message in flashes(client, CONNECT)
    assert channel_count(db, "mastodon") == 0


@pytest.fixture
def x_app(database_url, db, tmp_path):
    extra = {"client_id": "x-client", "api_base_url": X_API, "authorize_url": X_AUTHORIZE}
    application = create_app(settings_for(database_url, tmp_path, x=extra))
    state(application).session_override = db
    state(application).pinned_now = NOW
    yield application
    state(application).engine.dispose()


@pytest.fixture
def x_admin(x_app, world):
    actions = AuthActions(x_app.test_client())
    actions.login(world.home.admin.email)
    return actions


def start_x(x_admin, name="Careers on X"):
    token = x_admin.csrf(f"{CONNECT}/x")
    response = x_admin.client.post(
        f"{CONNECT}/x", data={"csrf_token": token, "display_name": name, "audience": "students"}
    )
    return query_of(continue_link(response, X_AUTHORIZE))


def test_x_challenge_is_the_s256_of_the_stored_verifier(x_admin, x_app, db):
    query = start_x(x_admin)
    pending = db.scalar(select(OAuthAuthorization).where(OAuthAuthorization.kind == "x"))
    verifier = state(x_app).credentials.decrypt(pending.verifier_encrypted).decode()
    assert query["state"] == pending.state
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == code_challenge(verifier)
    assert query["client_id"] == "x-client"


def test_x_callback_sends_the_verifier_and_stores_the_tokens(x_admin, x_app, db):
    query = start_x(x_admin)
    pending = db.scalar(select(OAuthAuthorization).where(OAuthAuthorization.kind == "x"))
    verifier = state(x_app).credentials.decrypt(pending.verifier_encrypted).decode()
    sent = {"grant_type": "authorization_code", "code": "x-code", "code_verifier": verifier}
    with responses.RequestsMock() as mocked:
        mocked.post(
            f"{X_API}/2/oauth2/token",
            match=[matchers.urlencoded_params_matcher(sent, allow_blank=False, strict_match=False)],
            json={"access_token": "x-access", "refresh_token": "x-refresh", "expires_in": 7200},
        )
        response = x_admin.client.get(
            f"{CONNECT}/x/callback", query_string={"code": "x-code", "state": query["state"]}
        )
    assert response.headers["Location"] == "/settings/channels"
    channel = db.scalar(select(Channel).where(Channel.kind == "x"))
    stored = read_credentials(channel, state(x_app).credentials)
    assert (stored["auth"], stored["access_token"], stored["refresh_token"]) == (
        "oauth2",
        "x-access",
        "x-refresh",
    )


def test_x_page_shows_the_price_per_post_first(admin):
    body = admin("GET", f"{CONNECT}/x").get_data(as_text=True)
    assert "$0.015" in body
    assert "$0.20" in body


def test_x_without_a_client_id_explains_and_offers_keys(admin):
    body = admin("GET", f"{CONNECT}/x").get_data(as_text=True)
    assert "<code>[x] client_id</code>" in body
    assert 'name="consumer_key"' in body


def test_x_keys_are_stored_encrypted_as_oauth1(admin, auth, app, db):
    keys = {
        "consumer_key": "ck-1",
        "consumer_secret": "cs-secret-1",
        "access_token": "at-1",
        "access_token_secret": "ats-secret-1",
    }
    token = auth.csrf(f"{CONNECT}/x")
    response = admin(
        "POST",
        f"{CONNECT}/x",
        data={"csrf_token": token, "display_name": "Careers on X", "audience": "students", **keys},
    )
    assert response.status_code == 302
    channel = db.scalar(select(Channel).where(Channel.kind == "x"))
    assert read_credentials(channel, state(app).credentials) == {**keys, "auth": "oauth1"}
    admin("GET", "/settings/channels")
    assert not admin.leaked("cs-secret-1")


def bluesky_form(auth, **values):
    return {
        "csrf_token": auth.csrf(f"{CONNECT}/bluesky"),
        "handle": "@Careers.bsky.social",
        "app_password": "abcd-efgh-ijkl-mnop",
        "pds_url": "https://bsky.social",
        "display_name": "Careers on Bluesky",
        "audience": "graduates",
        **values,
    }


def test_bluesky_form_stores_the_app_password_encrypted(admin, auth, app, db):
    response = admin("POST", f"{CONNECT}/bluesky", data=bluesky_form(auth))
    assert response.status_code == 302
    channel = db.scalar(select(Channel).where(Channel.kind == "bluesky"))
    assert read_credentials(channel, state(app).credentials) == {
        "handle": "careers.bsky.social",
        "app_password": "abcd-efgh-ijkl-mnop",
    }
    assert (channel.base_url, channel.account_label) == (None, "careers.bsky.social")
    assert b"abcd-efgh" not in bytes(
        db.execute(
            text("SELECT credentials_encrypted FROM channels WHERE id = :id"), {"id": channel.id}
        ).scalar_one()
    )


def test_bluesky_keeps_a_pds_other_than_the_default(admin, auth, db):
    admin("POST", f"{CONNECT}/bluesky", data=bluesky_form(auth, pds_url="https://pds.example/"))
    assert db.scalar(select(Channel.base_url).where(Channel.kind == "bluesky")) == (
        "https://pds.example"
    )


def test_bluesky_password_field_is_not_remembered(admin):
    body = admin("GET", f"{CONNECT}/bluesky").get_data(as_text=True)
    field = re.search(r'<input[^>]*name="app_password"[^>]*>', body).group(0)
    assert 'type="password"' in field
    assert 'autocomplete="off"' in field


def needing_reconnection(db, part, kind, **values):
    channel = Channel(
        organisation_id=part.org.id,
        kind=kind,
        display_name=f"Careers {kind}",
        audience="students",
        status="needs_reauth",
        status_detail="The platform refused the stored access.",
        created_at=NOW,
        **values,
    )
    db.add(channel)
    db.flush()
    return channel


def test_reconnecting_bluesky_makes_the_channel_active_again(admin, auth, app, db, world):
    channel = needing_reconnection(db, world.home, "bluesky", account_label="careers.bsky.social")
    path = f"/settings/channels/{channel.id}/reconnect"
    form = {"csrf_token": auth.csrf(path), "handle": "careers.bsky.social", "app_password": "new"}
    response = admin("POST", path, data=form)
    assert response.headers["Location"] == "/settings/channels"
    db.refresh(channel)
    assert (channel.status, channel.status_detail) == ("active", None)
    assert read_credentials(channel, state(app).credentials)["app_password"] == "new"
    assert channel_count(db, "bluesky") == 1
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "channel.reconnected"))
    assert event.subject_id == channel.id


def test_reconnecting_mastodon_replaces_the_token(admin, auth, app, db, world, mastodon_api):
    channel = needing_reconnection(db, world.home, "mastodon", base_url=INSTANCE)
    path = f"/settings/channels/{channel.id}/reconnect"
    response = admin("POST", path, data={"csrf_token": auth.csrf(path)})
    query = query_of(continue_link(response, INSTANCE + "/oauth/authorize"))
    callback(admin, "mastodon", code="c", state=query["state"])
    db.refresh(channel)
    assert channel.status == "active"
    assert read_credentials(channel, state(app).credentials)["access_token"] == TOKEN
    assert channel_count(db, "mastodon") == 1


@pytest.mark.parametrize("kind", ["x", "mastodon", "bluesky"])
def test_reconnect_page_names_the_channel(admin, db, world, kind):
    channel = needing_reconnection(db, world.home, kind)
    response = admin("GET", f"/settings/channels/{channel.id}/reconnect")
    assert response.status_code == 200
    assert f"Reconnect “Careers {kind}”" in response.get_data(as_text=True)


def test_channel_health_offers_reconnect_to_admins(admin, db, world):
    channel = needing_reconnection(db, world.home, "mastodon", base_url=INSTANCE)
    body = admin("GET", "/settings/channels").get_data(as_text=True)
    assert f'href="/settings/channels/{channel.id}/reconnect"' in body
    assert f'href="{CONNECT}"' in body


def test_an_outbox_has_nothing_to_reconnect(admin, client, world):
    response = admin("GET", f"/settings/channels/{world.home.channel.id}/reconnect")
    assert response.headers["Location"] == "/settings/channels"
    assert "has no network account to reconnect" in flashes(client)


def route_path(path, world):
    return path.format(channel_id=world.home.channel.id)


@pytest.mark.parametrize("role", ["staff", "manager"])
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_only_admins_may_connect(client, auth, world, role, method, path):
    auth.login(getattr(world.home, role).email)
    data = {"csrf_token": auth.csrf("/")} if method == "POST" else None
    response = client.open(route_path(path, world), method=method, data=data)
    assert response.status_code == 403


@pytest.mark.parametrize("path", [path for method, path in ROUTES if method == "POST"])
def test_connect_posts_without_a_csrf_token_are_rejected(admin, app, db, world, path):
    app.config["WTF_CSRF_ENABLED"] = True
    data = {"display_name": "C", "instance_url": INSTANCE, "handle": "h", "app_password": "p"}
    response = admin("POST", route_path(path, world), data=data)
    assert response.status_code == 400
    assert channel_count(db) == 2
