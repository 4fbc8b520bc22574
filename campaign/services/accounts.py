"""Users, roles and sign-in, with throttling that holds across processes."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from campaign.models import LoginAttempt, Membership, Role, User
from campaign.services import NotFound, PermissionDenied, ServiceError, audit
from campaign.services.audit import Actor
from campaign.services.passwords import check_password_strength, verify_password


class LoginThrottled(ServiceError):
    """Too many failed sign-ins for this address or from this network address."""


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    max_failures_per_ip: int = 30
    window: dt.timedelta = dt.timedelta(minutes=15)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


_dummy_hashes: dict[int, str] = {}


def _dummy_verify(hasher: PasswordHasher) -> None:
    """Spend the same time as a real check, so unknown addresses cannot be told apart."""
    stored = _dummy_hashes.setdefault(id(hasher), hasher.hash("timing-equaliser"))
    verify_password(hasher, stored, "not-it")


def authenticate(
    session: Session,
    email: str,
    password: str,
    remote_addr: str,
    hasher: PasswordHasher,
    policy: ThrottlePolicy,
    now: dt.datetime,
) -> User | None:
    """The active user with these credentials, or None; LoginThrottled when over the limit."""
    email_key, ip_key = _key(normalise_email(email)), _key(remote_addr or "-")
    since = now - policy.window
    recent = select(func.count(LoginAttempt.id)).where(LoginAttempt.attempted_at >= since)
    by_email = session.scalar(recent.where(LoginAttempt.email_key == email_key)) or 0
    by_ip = session.scalar(recent.where(LoginAttempt.ip_key == ip_key)) or 0
    if by_email >= policy.max_failures or by_ip >= policy.max_failures_per_ip:
        raise LoginThrottled("Too many failed sign-ins. Wait a few minutes and try again.")

    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        _dummy_verify(hasher)
        ok = False
    else:
        ok = verify_password(hasher, user.password_hash, password) and user.is_active
    if not ok:
        session.add(LoginAttempt(email_key=email_key, ip_key=ip_key, attempted_at=now))
        session.flush()
        return None
    assert user is not None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    session.execute(delete(LoginAttempt).where(LoginAttempt.email_key == email_key))
    user.last_login_at = now
    membership = primary_membership(session, user.id)
    if membership is not None:
        actor = Actor(membership.organisation_id, user.email, user.id, membership.role)
        audit.record(session, actor, "user.signed_in", "user", user.id, now)
    session.flush()
    return user


def prune_login_attempts(session: Session, policy: ThrottlePolicy, now: dt.datetime) -> int:
    """Delete attempts older than the throttle window; returns how many went."""
    result = session.execute(
        delete(LoginAttempt).where(LoginAttempt.attempted_at < now - policy.window)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def create_user(
    session: Session,
    organisation_id: int,
    email: str,
    password: str,
    role: Role,
    display_name: str,
    hasher: PasswordHasher,
    actor: Actor | None,
    now: dt.datetime,
) -> User:
    """A new active user with a role in one organisation."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise ServiceError("Enter a valid email address.")
    problem = check_password_strength(password)
    if problem:
        raise ServiceError(problem)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ServiceError(f"A user with the email {email} already exists.")
    user = User(
        email=email,
        display_name=display_name.strip() or email.split("@")[0],
        password_hash=hasher.hash(password),
        created_at=now,
    )
    session.add(user)
    session.flush()
    session.add(Membership(user_id=user.id, organisation_id=organisation_id, role=role.value))
    audit.record(
        session, actor, "user.created", "user", user.id, now, organisation_id, role=role.value
    )
    session.flush()
    return user


def membership_for(session: Session, user_id: int, organisation_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(
            Membership.user_id == user_id, Membership.organisation_id == organisation_id
        )
    )


def user_with_memberships(session: Session, user_id: int) -> User | None:
    """The user with every membership and its organisation loaded (two statements), as each
    signed-in request needs them: the current membership, and the organisation switcher."""
    return session.scalar(
        select(User)
        .where(User.id == user_id)
        .options(selectinload(User.memberships).joinedload(Membership.organisation))
    )


def pick_membership(user: User, organisation_id: int | None) -> Membership | None:
    """The user's membership of that organisation if it has one, else the first (the one a
    sign-in lands in); from the loaded memberships."""
    ordered = sorted(user.memberships, key=lambda m: m.id)
    chosen = [m for m in ordered if m.organisation_id == organisation_id] or ordered
    return chosen[0] if chosen else None


def primary_membership(session: Session, user_id: int) -> Membership | None:
    """The user's first organisation, the one a sign-in lands in."""
    return session.scalar(
        select(Membership).where(Membership.user_id == user_id).order_by(Membership.id).limit(1)
    )


def list_members(session: Session, organisation_id: int) -> list[Membership]:
    return list(
        session.scalars(
            select(Membership)
            .join(User)
            .where(Membership.organisation_id == organisation_id)
            .order_by(User.email)
        )
    )


def get_member(session: Session, organisation_id: int, user_id: int) -> Membership:
    """The membership of a user in this organisation; NotFound for anyone else's users."""
    membership = membership_for(session, user_id, organisation_id)
    if membership is None:
        raise NotFound("no such user")
    return membership


LAST_ADMIN = "An organisation needs at least one active admin."


def _is_last_admin(session: Session, membership: Membership) -> bool:
    """True when this member is an admin and no other active admin remains."""
    if membership.role != Role.ADMIN.value:
        return False
    others = (
        session.scalar(
            select(func.count(Membership.id))
            .join(User)
            .where(
                Membership.organisation_id == membership.organisation_id,
                Membership.role == Role.ADMIN.value,
                User.is_active.is_(True),
                User.id != membership.user_id,
            )
        )
        or 0
    )
    return others == 0


def change_role(
    session: Session, actor: Actor, user_id: int, role: Role, now: dt.datetime
) -> Membership:
    """Give a member a new role; the last active admin cannot be demoted."""
    membership = get_member(session, actor.organisation_id, user_id)
    if role != Role.ADMIN and _is_last_admin(session, membership):
        raise PermissionDenied(LAST_ADMIN)
    old = membership.role
    membership.role = role.value
    audit.record(session, actor, "user.role_changed", "user", user_id, now, old=old, new=role.value)
    session.flush()
    return membership


def set_active(
    session: Session, actor: Actor, user_id: int, active: bool, now: dt.datetime
) -> User:
    """Deactivate or reactivate a member; deactivation ends their sessions."""
    membership = get_member(session, actor.organisation_id, user_id)
    user = membership.user
    if not active and user.id == actor.user_id:
        raise PermissionDenied("You cannot deactivate your own account.")
    if not active and _is_last_admin(session, membership):
        raise PermissionDenied(LAST_ADMIN)
    user.is_active = active
    # Bumping the version invalidates every session cookie issued before.
    user.session_version += 1
    action = "user.reactivated" if active else "user.deactivated"
    audit.record(session, actor, action, "user", user.id, now)
    session.flush()
    return user


def _set_password(user: User, password: str, hasher: PasswordHasher) -> None:
    user.password_hash = hasher.hash(password)
    # A new password ends every session issued under the old one.
    user.session_version += 1


def change_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    hasher: PasswordHasher,
    now: dt.datetime,
) -> User:
    """Set a new password after checking the current one; every other session ends."""
    if not verify_password(hasher, user.password_hash, current):
        raise ServiceError("Your current password is not right.")
    problem = check_password_strength(new)
    if problem:
        raise ServiceError(problem)
    _set_password(user, new, hasher)
    membership = primary_membership(session, user.id)
    actor = Actor(membership.organisation_id, user.email, user.id) if membership else None
    audit.record(session, actor, "user.password_changed", "user", user.id, now)
    session.flush()
    return user


def reset_password(
    session: Session, actor: Actor, user_id: int, hasher: PasswordHasher, now: dt.datetime
) -> str:
    """Give a member a new random password, shown once; their sessions end."""
    membership = get_member(session, actor.organisation_id, user_id)
    temporary = secrets.token_urlsafe(12)
    _set_password(membership.user, temporary, hasher)
    audit.record(session, actor, "user.password_reset", "user", user_id, now)
    session.flush()
    return temporary
