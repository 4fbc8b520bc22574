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


def test_a_member_of_two_organisations_switches_between_them(client, auth, world, db):
    from campaign.models import Membership

    home, other = world.home, world.other
    db.add(Membership(user_id=home.staff.id, organisation_id=other.org.id, role="manager"))
    db.flush()
    other.campaign.name = "Only in the other organisation"
    db.flush()
    auth.login(home.staff.email)
    page = client.get("/plan").get_data(as_text=True)
    assert 'name="organisation_id"' in page and other.org.name in page
    assert "Only in the other organisation" not in page
    token = auth.csrf("/plan")
    response = client.post(
        "/account/organisation", data={"csrf_token": token, "organisation_id": other.org.id}
    )
    assert response.status_code == 302
    assert "Only in the other organisation" in client.get("/plan").get_data(as_text=True)
    # The role is the one held there, and the first organisation's objects are now out of reach.
    assert client.get("/settings/").status_code == 200  # manager in the other organisation
    assert client.get(f"/plan/campaigns/{home.campaign.id}").status_code == 404


def test_switching_to_an_organisation_one_does_not_belong_to_is_404(client, auth, world):
    auth.login(world.home.staff.email)
    token = auth.csrf("/plan")
    response = client.post(
        "/account/organisation", data={"csrf_token": token, "organisation_id": world.other.org.id}
    )
    assert response.status_code == 404
    assert "Exam season" in client.get("/plan").get_data(as_text=True)
    assert client.post("/account/organisation", data={"organisation_id": 1}).status_code == 400
