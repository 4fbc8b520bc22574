"""People and machines that act in an organisation: users, memberships, API tokens."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaign.db import Base, intpk, str200, utcnow
from campaign.models.organisation import Organisation


class Role(enum.StrEnum):
    STAFF = "staff"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"staff": 1, "manager": 2, "admin": 3}[self.value]

    def covers(self, needed: Role) -> bool:
        """An admin can do what a manager can, and a manager what staff can."""
        return self.rank >= needed.rank


API_SCOPES = ("read", "posts:write", "vacancies:write", "metrics:write", "admin")


class User(Base):
    __tablename__ = "users"

    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str200]
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]

    memberships: Mapped[list[Membership]] = relationship(back_populates="user")


class Membership(Base):
    """A user's role in one organisation."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "organisation_id"),
        CheckConstraint("role in ('staff', 'manager', 'admin')", name="role_known"),
    )

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    organisation: Mapped[Organisation] = relationship()

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class ApiToken(Base):
    """A scoped bearer token; only a SHA-256 hash of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    name: Mapped[str200]
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    organisation: Mapped[Organisation] = relationship()

    @property
    def scope_list(self) -> list[str]:
        return [scope for scope in self.scopes.split(",") if scope]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class LoginAttempt(Base):
    """Failed logins, kept in the database so throttling holds across processes."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_key_attempted_at", "email_key", "attempted_at"),
        Index("ix_login_attempts_ip_key_attempted_at", "ip_key", "attempted_at"),
    )

    id: Mapped[intpk]
    email_key: Mapped[str] = mapped_column(String(64))
    ip_key: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
