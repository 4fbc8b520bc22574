import datetime as dt

from sqlalchemy import func, select

from campaign import create_app
from campaign.models import LoginAttempt
from campaign.web.context import state
from tests.conftest import NOW, settings_for
from tests.factories import PASSWORD

GENERIC = "That email and password do not match an active account."


def test_staff_can_sign_in_and_reach_the_dashboard(client, auth, world):
    response = auth.login(world.home.staff.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "<h1>Home</h1>" in page.get_data(as_text=True)


def test_wrong_password_and_unknown_email_get_the_same_answer(auth, world):
    wrong = auth.login(world.home.staff.email, "not-the-password")
    unknown = auth.login("nobody@nowhere.example", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert GENERIC in wrong.get_data(as_text=True)
    assert GENERIC in unknown.get_data(as_text=True)


def test_deactivated_user_cannot_sign_in(auth, world, db):
    world.home.staff.is_active = False
    db.flush()
    response = auth.login(world.home.staff.email)
    assert response.status_code == 401
    assert GENERIC in response.get_data(as_text=True)


def test_sign_in_is_throttled_after_repeated_failures(auth, world, app):
    limit = state(app).throttle.max_failures
    for _ in range(limit):
        assert auth.login(world.home.staff.email, "wrong-password-x").status_code == 401
    blocked = auth.login(world.home.staff.email)  # even the right password is refused now
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.get_data(as_text=True)


def test_throttle_is_shared_between_app_processes(auth, world, app, database_url, db, tmp_path):
    # A second app object stands in for another web process: only the database is shared.
    for _ in range(state(app).throttle.max_failures):
        auth.login(world.home.staff.email, "wrong-password-x")
    other = create_app(settings_for(database_url, tmp_path))
    state(other).session_override = db
    state(other).pinned_now = NOW
    from tests.conftest import AuthActions

    response = AuthActions(other.test_client()).login(world.home.staff.email)
    assert response.status_code == 429
    state(other).engine.dispose()


def test_throttle_window_expires(auth, world, app, db):
    for _ in range(state(app).throttle.max_failures):
        auth.login(world.home.staff.email, "wrong-password-x")
    state(app).pinned_now = NOW + state(app).throttle.window + dt.timedelta(seconds=1)
    assert auth.login(world.home.staff.email).status_code == 302


def test_successful_sign_in_clears_failures(auth, world, db):
    auth.login(world.home.staff.email, "wrong-password-x")
    auth.login(world.home.staff.email)
    assert db.scalar(select(func.count(LoginAttempt.id))) == 0


def test_sign_in_starts_a_fresh_session(client, auth, world):
    with client.session_transaction() as sess:
        sess["planted"] = "by-an-attacker"
    auth.login(world.home.staff.email)
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert "_user_id" in sess


def test_logout_ends_the_session(client, auth, world):
    auth.login(world.home.staff.email)
    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_logout_requires_post(client, auth, world):
    auth.login(world.home.staff.email)
    assert client.get("/logout").status_code == 405


def test_next_redirect_stays_on_site(client, auth, world):
    token = auth.csrf("/login")
    for target, expected in [
        ("/posts", "/posts"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
    ]:
        client.get("/")  # make sure we are signed out
        response = client.post(
            f"/login?next={target}",
            data={"email": world.home.staff.email, "password": PASSWORD, "csrf_token": token},
        )
        assert response.headers["Location"] == expected, target
        auth.logout()
        token = auth.csrf("/login")


def test_deactivation_ends_existing_sessions(client, auth, world, db):
    auth.login(world.home.staff.email)
    assert client.get("/").status_code == 200
    world.home.staff.is_active = False
    world.home.staff.session_version += 1
    db.flush()
    assert client.get("/").status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, auth, world, app):
    response = auth.login(world.home.staff.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert app.config["SESSION_COOKIE_NAME"] in cookie


def test_security_headers_carry_a_script_nonce(client, auth, world):
    auth.login(world.home.staff.email)
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in response.get_data(as_text=True)
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_behind_a_proxy_throttling_counts_the_forwarded_client(database_url, db, tmp_path, world):
    from tests.conftest import AuthActions

    app = create_app(settings_for(database_url, tmp_path, server={"proxy_count": 1}))
    state(app).session_override = db
    state(app).pinned_now = NOW
    policy = state(app).throttle
    for n in range(policy.max_failures_per_ip):
        client = app.test_client()
        client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
        AuthActions(client).login(f"nobody{n}@x.example", "wrong-password-x")
    blocked = app.test_client()
    blocked.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
    assert AuthActions(blocked).login(world.home.staff.email).status_code == 429
    other = app.test_client()
    other.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.9"
    assert AuthActions(other).login(world.home.staff.email).status_code == 302
    state(app).engine.dispose()
