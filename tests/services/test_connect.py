"""Connecting accounts: instance addresses, pending authorizations, credentials replaced."""

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers
from sqlalchemy import select, text

from campaign.config import load_settings
from campaign.crypto import CredentialBox, generate_key
from campaign.models import AuditEvent, Channel, MastodonApp, OAuthAuthorization
from campaign.services import NotFound, ServiceError
from campaign.services import connect as svc
from campaign.services.audit import Actor
from campaign.services.channels import read_credentials
from campaign.services.connect import AuthorizationRefused, ConnectFailed, Target
from tests.conftest import NOW

INSTANCE = "https://mastodon.example"
REDIRECT = "https://campaign.example/settings/channels/connect/mastodon/callback"
X_SETTINGS = {"x": {"client_id": "x-client", "api_base_url": "https://api.x.example"}}


def http(overrides=None):
    return svc.http_session(load_settings(overrides, use_file=False))


@pytest.fixture
def box():
    return CredentialBox([generate_key()])


def actor_for(part, user=None):
    user = user or part.admin
    return Actor(part.org.id, user.email, user.id, "admin")


def start_mastodon(db, box, actor, target=None, now=NOW):
    target = target or Target("Careers on Mastodon", "students")
    app = svc.AppKeys("client-1", "app-secret-1")
    url = svc.begin_mastodon(db, box, actor, INSTANCE, app, target, REDIRECT, now)
    return parse_qs(urlsplit(url).query)["state"][0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mastodon.social", "https://mastodon.social"),
        ("  https://Mastodon.Social/  ", "https://mastodon.social"),
        ("https://example.social/@careers", "https://example.social"),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_instance_addresses_are_reduced_to_scheme_host_and_port(raw, expected):
    assert svc.normalise_instance_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ftp://mastodon.social",
        "javascript:alert(1)",
        "https://",
        "https://user:pw@mastodon.social",
        "https://mastodon.social/?next=evil",
        "https://mastodon.social:99999",
        "file:///etc/passwd",
    ],
)
def test_instance_addresses_other_than_http_are_refused(raw):
    with pytest.raises(ServiceError):
        svc.normalise_instance_url(raw)


def test_callback_address_comes_from_the_configured_base_url():
    assert svc.callback_url("https://campaign.example/", "x") == (
        "https://campaign.example/settings/channels/connect/x/callback"
    )


def test_x_prices_come_from_the_adapter():
    assert svc.x_prices() == (0.015, 0.20)


def test_mastodon_app_secret_is_stored_encrypted(db, world, box):
    start_mastodon(db, box, actor_for(world.home))
    raw = db.execute(text("SELECT client_secret_encrypted FROM mastodon_apps")).scalar_one()
    assert b"app-secret-1" not in bytes(raw)
    assert svc.find_mastodon_app(db, box, INSTANCE, REDIRECT) == svc.AppKeys(
        "client-1", "app-secret-1"
    )


def test_a_stored_app_with_another_callback_is_not_reused(db, world, box):
    start_mastodon(db, box, actor_for(world.home))
    assert svc.find_mastodon_app(db, box, INSTANCE, REDIRECT + "-moved") is None


def test_a_second_start_keeps_one_app_per_instance(db, world, box):
    start_mastodon(db, box, actor_for(world.home))
    start_mastodon(db, box, actor_for(world.other))
    assert len(db.scalars(select(MastodonApp)).all()) == 1


def test_x_verifier_is_stored_encrypted_and_state_is_in_the_url(db, world, box):
    url = svc.begin_x(
        db,
        box,
        actor_for(world.home),
        Target("Careers on X", "students"),
        "x-client",
        "https://x.example/authorize",
        "https://campaign.example/cb",
        NOW,
    )
    pending = db.scalar(select(OAuthAuthorization))
    assert parse_qs(urlsplit(url).query)["state"] == [pending.state]
    verifier = box.decrypt(pending.verifier_encrypted).decode()
    assert verifier.encode() not in pending.verifier_encrypted
    assert verifier not in url


def test_starting_refuses_a_bad_audience(db, world, box):
    with pytest.raises(ServiceError, match="audience"):
        start_mastodon(db, box, actor_for(world.home), Target("Careers", "aliens"))


def test_claim_returns_the_target_and_app(db, world, box):
    state = start_mastodon(db, box, actor_for(world.home))
    claimed = svc.claim_authorization(db, box, "mastodon", state, actor_for(world.home), NOW)
    assert claimed.target == Target("Careers on Mastodon", "students")
    assert claimed.app == svc.AppKeys("client-1", "app-secret-1")
    assert claimed.base_url == INSTANCE


def test_a_state_is_claimed_only_once(db, world, box):
    actor = actor_for(world.home)
    state = start_mastodon(db, box, actor)
    svc.claim_authorization(db, box, "mastodon", state, actor, NOW)
    with pytest.raises(AuthorizationRefused, match="already used"):
        svc.claim_authorization(db, box, "mastodon", state, actor, NOW)


def test_a_state_older_than_ten_minutes_is_refused(db, world, box):
    actor = actor_for(world.home)
    state = start_mastodon(db, box, actor)
    later = NOW + svc.AUTHORIZATION_TTL + dt.timedelta(seconds=1)
    with pytest.raises(AuthorizationRefused, match="expired"):
        svc.claim_authorization(db, box, "mastodon", state, actor, later)


@pytest.mark.parametrize("who", ["other_org_admin", "other_admin_same_org", "unknown", "kind"])
def test_a_state_that_is_not_the_actors_is_refused(db, world, box, hasher, who):
    from campaign.models import Role
    from tests.factories import make_user

    state = start_mastodon(db, box, actor_for(world.home))
    actor, kind = actor_for(world.home), "mastodon"
    if who == "other_org_admin":
        actor = actor_for(world.other)
    elif who == "other_admin_same_org":
        actor = actor_for(world.home, make_user(db, world.home.org, Role.ADMIN, hasher, NOW))
    elif who == "unknown":
        state = "no-such-state"
    else:
        kind = "x"
    with pytest.raises(AuthorizationRefused, match="not one of yours"):
        svc.claim_authorization(db, box, kind, state, actor, NOW)
    assert db.scalar(select(OAuthAuthorization.used_at)) is None


def test_starting_prunes_expired_requests(db, world, box):
    actor = actor_for(world.home)
    start_mastodon(db, box, actor, now=NOW - dt.timedelta(hours=1))
    start_mastodon(db, box, actor)
    assert len(db.scalars(select(OAuthAuthorization)).all()) == 1


def test_mastodon_refusing_the_code_is_a_plain_error(db, world, box):
    app = svc.AppKeys("client-1", "app-secret-1")
    claimed = svc.Claimed("mastodon", INSTANCE, Target("C", "students"), app=app)
    with responses.RequestsMock() as mocked:
        mocked.post(
            f"{INSTANCE}/oauth/token",
            json={"error": "invalid_grant", "error_description": "The grant is invalid."},
            status=400,
        )
        with pytest.raises(ConnectFailed, match="The grant is invalid") as caught:
            svc.fetch_mastodon_token(http(), claimed, "code", REDIRECT)
    assert "app-secret-1" not in str(caught.value)


def test_x_token_exchange_sends_the_verifier(db, world, box):
    settings = load_settings(X_SETTINGS, use_file=False)
    claimed = svc.Claimed("x", None, Target("C", "students"), code_verifier="v" * 64)
    with responses.RequestsMock() as mocked:
        mocked.post(
            "https://api.x.example/2/oauth2/token",
            match=[
                matchers.urlencoded_params_matcher(
                    {
                        "grant_type": "authorization_code",
                        "code": "the-code",
                        "redirect_uri": "https://cb.example",
                        "code_verifier": "v" * 64,
                        "client_id": "x-client",
                    }
                )
            ],
            json={"access_token": "at", "refresh_token": "rt", "expires_in": 7200},
        )
        credentials = svc.fetch_x_token(
            http(X_SETTINGS), claimed, "the-code", settings, "https://cb.example", NOW
        )
    assert credentials["access_token"] == "at"
    assert credentials["refresh_token"] == "rt"


def test_a_new_connection_creates_the_channel_and_is_audited(db, world, box):
    channel = svc.save_connection(
        db,
        box,
        "bluesky",
        Target("Careers on Bluesky", "graduates"),
        None,
        {"handle": "careers.example", "app_password": "abcd-efgh-ijkl-mnop"},
        actor_for(world.home),
        NOW,
    )
    assert (channel.kind, channel.audience, channel.account_label) == (
        "bluesky",
        "graduates",
        "careers.example",
    )
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == channel.id))
    assert {"channel.created", "channel.connected"} <= set(actions)


def network_channel(db, part, status="needs_reauth", kind="mastodon"):
    channel = Channel(
        organisation_id=part.org.id,
        kind=kind,
        display_name="Careers",
        audience="students",
        status=status,
        status_detail="The instance refused the token.",
        base_url=INSTANCE,
        created_at=NOW,
    )
    db.add(channel)
    db.flush()
    return channel


def test_replacing_credentials_reactivates_a_channel_needing_reconnection(db, world, box):
    channel = network_channel(db, world.home)
    svc.replace_credentials(
        db, world.home.org.id, channel.id, {"access_token": "new"}, box, actor_for(world.home), NOW
    )
    assert (channel.status, channel.status_detail) == ("active", None)
    assert read_credentials(channel, box) == {"access_token": "new"}
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "channel.reconnected"))
    assert event.subject_id == channel.id
    assert "new" not in json.dumps(event.detail)


def test_replacing_credentials_leaves_a_paused_channel_paused(db, world, box):
    channel = network_channel(db, world.home, status="paused")
    svc.replace_credentials(
        db, world.home.org.id, channel.id, {"access_token": "n"}, box, None, NOW
    )
    assert channel.status == "paused"


def test_replacing_another_organisations_credentials_is_not_found(db, world, box):
    channel = network_channel(db, world.other)
    with pytest.raises(NotFound):
        svc.replace_credentials(
            db, world.home.org.id, channel.id, {"access_token": "n"}, box, None, NOW
        )


@pytest.mark.parametrize(
    ("kind", "credentials"),
    [("outbox", {}), ("mastodon", {"token": "wrong-key"}), ("bluesky", {"handle": "h"})],
)
def test_replacing_credentials_of_the_wrong_shape_is_refused(db, world, box, kind, credentials):
    channel = network_channel(db, world.home, kind=kind)
    with pytest.raises(ServiceError):
        svc.replace_credentials(db, world.home.org.id, channel.id, credentials, box, None, NOW)
    assert channel.credentials_encrypted is None
