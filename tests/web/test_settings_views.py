from sqlalchemy import select

from campaign.models import ApiToken, AuditEvent, Membership, User


def test_admin_adds_a_user_who_can_sign_in(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/users")
    response = client.post(
        "/settings/users",
        data={
            "csrf_token": token,
            "email": "New.Adviser@Home-Uni.example",
            "display_name": "New Adviser",
            "role": "staff",
            "password": "a-long-initial-password",
        },
    )
    assert response.status_code == 302
    user = db.scalar(select(User).where(User.email == "new.adviser@home-uni.example"))
    assert user is not None
    membership = db.scalar(select(Membership).where(Membership.user_id == user.id))
    assert (membership.organisation_id, membership.role) == (world.home.org.id, "staff")
    assert db.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "user.created", AuditEvent.subject_id == user.id
        )
    )
    auth.logout()
    assert auth.login("new.adviser@home-uni.example", "a-long-initial-password").status_code == 302


def test_short_passwords_are_refused_with_a_reason(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/users")
    response = client.post(
        "/settings/users",
        data={"csrf_token": token, "email": "a@b.example", "role": "staff", "password": "short"},
        follow_redirects=True,
    )
    assert "Use at least 12 characters." in response.get_data(as_text=True)
    assert db.scalar(select(User).where(User.email == "a@b.example")) is None


def test_admin_changes_a_role_and_it_is_audited(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/users")
    client.post(
        f"/settings/users/{world.home.staff.id}/role", data={"csrf_token": token, "role": "manager"}
    )
    db.expire_all()
    membership = db.scalar(select(Membership).where(Membership.user_id == world.home.staff.id))
    assert membership.role == "manager"
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "user.role_changed"))
    assert event.detail == {"old": "staff", "new": "manager"}
    assert event.actor_label == world.home.admin.email


def test_the_last_admin_cannot_be_demoted(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/users")
    response = client.post(
        f"/settings/users/{world.home.admin.id}/role",
        data={"csrf_token": token, "role": "staff"},
        follow_redirects=True,
    )
    assert "at least one active admin" in response.get_data(as_text=True)
    db.expire_all()
    assert (
        db.scalar(select(Membership.role).where(Membership.user_id == world.home.admin.id))
        == "admin"
    )


def test_deactivated_user_is_signed_out_and_can_be_reactivated(app, client, auth, world, db):
    staff_client = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(staff_client).login(world.home.staff.email)
    assert staff_client.get("/").status_code == 200
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/users")
    client.post(f"/settings/users/{world.home.staff.id}/deactivate", data={"csrf_token": token})
    assert staff_client.get("/").status_code == 302
    client.post(f"/settings/users/{world.home.staff.id}/reactivate", data={"csrf_token": token})
    db.expire_all()
    assert db.get(User, world.home.staff.id).is_active


def test_admin_cannot_deactivate_themselves(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/users")
    response = client.post(
        f"/settings/users/{world.home.admin.id}/deactivate",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "cannot deactivate your own account" in response.get_data(as_text=True)


def test_token_is_shown_once_and_stored_hashed(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/tokens")
    page = client.post(
        "/settings/tokens",
        data={"csrf_token": token, "name": "Vacancy feed", "scopes": ["vacancies:write", "read"]},
    )
    body = page.get_data(as_text=True)
    plaintext = body.split('id="new-token">')[1].split("<")[0]
    assert plaintext.startswith("cmp_")
    stored = db.scalar(select(ApiToken).where(ApiToken.name == "Vacancy feed"))
    assert stored.scope_list == ["read", "vacancies:write"]
    assert plaintext not in stored.token_hash and stored.token_hash != plaintext
    listing = client.get("/settings/tokens").get_data(as_text=True)
    assert plaintext not in listing
    assert f"cmp_{stored.prefix}_" in listing


def test_revoked_token_no_longer_authenticates(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/tokens")
    body = client.post(
        "/settings/tokens", data={"csrf_token": token, "name": "t", "scopes": ["read"]}
    ).get_data(as_text=True)
    plaintext = body.split('id="new-token">')[1].split("<")[0]
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 200
    stored = db.scalar(select(ApiToken).where(ApiToken.name == "t"))
    client.post(f"/settings/tokens/{stored.id}/revoke", data={"csrf_token": token})
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 401


def test_audit_trail_shows_this_organisations_events_only(client, auth, world, db):
    auth.login(world.other.admin.email)
    auth.logout()
    auth.login(world.home.manager.email)
    body = client.get("/settings/audit").get_data(as_text=True)
    assert "user.signed_in" in body
    assert world.home.manager.email in body
    assert world.other.admin.email not in body


def test_admin_resets_a_password_which_works_once_shown(app, client, auth, world):
    from tests.conftest import AuthActions

    staff_client = app.test_client()
    AuthActions(staff_client).login(world.home.staff.email)
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/users")
    page = client.post(
        f"/settings/users/{world.home.staff.id}/reset-password", data={"csrf_token": token}
    )
    temporary = page.get_data(as_text=True).split('id="new-token">')[1].split("<")[0]
    assert staff_client.get("/").status_code == 302
    assert (
        AuthActions(app.test_client()).login(world.home.staff.email, temporary).status_code == 302
    )
