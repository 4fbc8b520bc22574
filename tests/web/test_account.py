from tests.conftest import AuthActions
from tests.factories import PASSWORD


def _change(client, auth, current, new, confirm=None):
    token = auth.csrf("/account")
    return client.post(
        "/account",
        data={"csrf_token": token, "current": current, "new": new, "confirm": confirm or new},
        follow_redirects=True,
    )


def test_password_change_keeps_this_session_and_ends_others(app, client, auth, world):
    other_device = app.test_client()
    AuthActions(other_device).login(world.home.staff.email)
    auth.login(world.home.staff.email)
    page = _change(client, auth, PASSWORD, "a-brand-new-passphrase")
    assert "Password changed." in page.get_data(as_text=True)
    assert client.get("/").status_code == 200
    assert other_device.get("/").status_code == 302
    auth.logout()
    assert auth.login(world.home.staff.email, "a-brand-new-passphrase").status_code == 302


def test_wrong_current_password_is_refused(client, auth, world):
    auth.login(world.home.staff.email)
    page = _change(client, auth, "not-my-password", "a-brand-new-passphrase")
    assert "current password is not right" in page.get_data(as_text=True)


def test_mismatched_confirmation_is_refused(client, auth, world):
    auth.login(world.home.staff.email)
    page = _change(client, auth, PASSWORD, "a-brand-new-passphrase", "something-else-entirely")
    assert "The new passwords differ." in page.get_data(as_text=True)
