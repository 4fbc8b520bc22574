"""Typed settings: defaults, then a TOML file, then CAMPAIGN_<SECTION>__<KEY> variables."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105 - a marker the production check refuses


class ConfigError(RuntimeError):
    """The configuration is unsafe or unreadable; the message says which key."""


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _Section(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class AppSection(_Section):
    env: Literal["development", "production", "testing"] = "development"
    secret_key: str = DEFAULT_SECRET_KEY
    debug: bool = False
    base_url: str = "http://127.0.0.1:5000"
    instance_path: str = "instance"
    default_timezone: str = "Europe/London"


class DatabaseSection(_Section):
    url: str = ""
    echo: bool = False
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_size: int = Field(default=5, ge=1)


class SecuritySection(_Section):
    encryption_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # "auto": HTTPS-only cookies in production, plain HTTP allowed for local development.
    session_cookie_secure: Literal["auto"] | bool = "auto"
    session_lifetime_hours: int = Field(default=12, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_ip: int = Field(default=30, ge=1)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=64)

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        # Environment variables carry the key list as a comma-separated string.
        return _split_commas(value)


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=1, le=65535)
    threads: int = Field(default=8, ge=1)
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto headers are trusted.
    proxy_count: int = Field(default=0, ge=0, le=5)


class WorkerSection(_Section):
    tick_seconds: float = Field(default=5.0, gt=0)
    heartbeat_stale_seconds: int = Field(default=120, ge=1)


class PublishingSection(_Section):
    # How long a worker holds a claimed delivery before another may reap it.
    lease_seconds: int = Field(default=120, ge=5)
    # A delivery found later than this after its due time is marked missed, never sent late.
    grace_minutes: int = Field(default=15, ge=1)
    # Publish attempts per delivery before it is marked failed.
    max_attempts: int = Field(default=5, ge=1)
    # Lookups after an unknown outcome before a person is asked to check.
    max_lookups: int = Field(default=3, ge=1)
    # Deliveries claimed per dispatch pass.
    batch_size: int = Field(default=50, ge=1, le=1000)
    # Retry backoff: base * 2^(attempt-1) seconds, at most the cap; Retry-After wins if longer.
    backoff_base_seconds: float = Field(default=30.0, ge=0)
    backoff_max_seconds: float = Field(default=1800.0, ge=0)
    # Wait before asking a platform about an unknown outcome (platforms index posts lazily).
    lookup_delay_seconds: float = Field(default=10.0, ge=0)
    # Connect and read timeout for each platform call, in seconds.
    request_timeout_seconds: float = Field(default=10.0, gt=0)


class LinksSection(_Section):
    # Clicks on tracked links are deleted after this many days (their visitor hashes after two).
    click_retention_days: int = Field(default=400, ge=1)
    # Link-preview and crawler hits, kept for inspection, are deleted after this many days.
    bot_hit_retention_days: int = Field(default=30, ge=1)
    # How long a web process may reuse a code's looked-up target; 0 looks it up every time.
    cache_seconds: float = Field(default=30.0, ge=0, le=3600)


class NetworkSection(_Section):
    # Hosts or CIDRs (for example "127.0.0.1" or "10.20.0.0/16") that adapters and fetchers may
    # reach although they are loopback or private. Empty: only public addresses.
    allow_private_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("allow_private_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        # Like the encryption keys, the environment carries the list comma-separated.
        return _split_commas(value)


_AGE = re.compile(r"^([1-9][0-9]*)([mhd])$")


class MetricsSection(_Section):
    # Seconds between the worker's metrics collection passes.
    collect_every_seconds: int = Field(default=300, ge=10)
    # Post ages at which a snapshot is kept, like "30m", "1h", "24h" or "7d".
    ages: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["1h", "24h", "7d"])
    # The "latest" snapshot is refreshed at most this often ...
    latest_every_minutes: int = Field(default=60, ge=1)
    # ... while the post is younger than the largest age plus this margin.
    latest_margin_hours: int = Field(default=48, ge=0)
    # Deliveries handled per pass (across channels).
    batch_size: int = Field(default=200, ge=1, le=5000)
    # Backoff after a channel fails without saying when to come back: base * 2^(n-1), capped.
    backoff_base_seconds: int = Field(default=300, ge=1)
    backoff_max_seconds: int = Field(default=21600, ge=1)
    # How long a pass holds the deliveries it picked before another collector may take them.
    claim_seconds: int = Field(default=600, ge=10)

    @field_validator("ages", mode="before")
    @classmethod
    def _split_ages(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("ages")
    @classmethod
    def _check_ages(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError('metrics.ages needs at least one age, like "1h"')
        bad = [age for age in value if not _AGE.match(age)]
        if bad:
            raise ValueError(
                f"metrics.ages: {', '.join(repr(b) for b in bad)} is not an age like "
                '"30m", "1h" or "7d"'
            )
        if len(set(value)) != len(value):
            raise ValueError("metrics.ages lists the same age twice")
        return value


class FeedsSection(_Section):
    # Minutes between polls of a new feed source (each source can change its own).
    default_poll_minutes: int = Field(default=60, ge=5, le=10080)
    # Largest feed body read, in bytes (after decompression); a bigger one is an error.
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Seconds one fetch may take in all (connect, redirects and body).
    timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # Redirects followed per fetch.
    max_redirects: int = Field(default=5, ge=0, le=20)
    # Successive good polls of a full feed that must miss a vacancy before it is withdrawn.
    withdraw_after_polls: int = Field(default=3, ge=1, le=100)
    # Sources polled per worker tick (the rest wait for the next tick).
    batch_size: int = Field(default=20, ge=1, le=1000)
    # How long a worker holds a source it is polling before another worker may take it.
    claim_seconds: int = Field(default=300, ge=30)


class PlatformSection(_Section):
    api_base_url: str


class XSection(PlatformSection):
    api_base_url: str = "https://api.x.com"
    # The OAuth 2.0 app registered in the X developer console; empty: connect with pasted
    # OAuth 1.0a keys instead.
    client_id: str = ""
    # Only for a confidential X app; a secret, so set it from the environment in production.
    client_secret: str = ""
    authorize_url: str = "https://x.com/i/oauth2/authorize"


class Settings(BaseSettings):
    """Every configuration key the app reads; config.example.toml documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="CAMPAIGN_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    app: AppSection = Field(default_factory=AppSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    security: SecuritySection = Field(default_factory=SecuritySection)
    server: ServerSection = Field(default_factory=ServerSection)
    worker: WorkerSection = Field(default_factory=WorkerSection)
    publishing: PublishingSection = Field(default_factory=PublishingSection)
    network: NetworkSection = Field(default_factory=NetworkSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    links: LinksSection = Field(default_factory=LinksSection)
    feeds: FeedsSection = Field(default_factory=FeedsSection)
    x: XSection = Field(default_factory=XSection)
    mastodon: PlatformSection = Field(
        default_factory=lambda: PlatformSection(api_base_url="https://mastodon.social")
    )
    bluesky: PlatformSection = Field(
        default_factory=lambda: PlatformSection(api_base_url="https://bsky.social")
    )

    @property
    def database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under the instance folder."""
        if self.database.url:
            return self.database.url
        path = Path(self.app.instance_path).resolve() / "campaign.sqlite3"
        return f"sqlite:///{path}"

    @property
    def is_production(self) -> bool:
        return self.app.env == "production"

    @property
    def cookie_secure(self) -> bool:
        """Whether session cookies are sent over HTTPS only."""
        value = self.security.session_cookie_secure
        return self.is_production if value == "auto" else value


def find_config_file() -> Path | None:
    """CAMPAIGN_CONFIG, else ./config.toml, else nothing (defaults)."""
    explicit = os.environ.get("CAMPAIGN_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"CAMPAIGN_CONFIG points at {explicit}, which is not a file")
        return path
    local = Path("config.toml")
    return local if local.is_file() else None


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load_settings(
    overrides: dict[str, Any] | None = None, path: Path | None = None, use_file: bool = True
) -> Settings:
    """Build settings: an explicit mapping beats the environment, which beats the file."""
    file_data = _read_toml(path if path is not None else find_config_file()) if use_file else {}

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, InitSettingsSource(settings_cls, file_data)

    try:
        return _Loaded(**(overrides or {}))
    except ValueError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc


def check_production_safety(settings: Settings) -> None:
    """Refuse settings that would be unsafe in production; no-op in other modes."""
    if not settings.is_production:
        return
    problems = []
    if settings.app.secret_key == DEFAULT_SECRET_KEY or len(settings.app.secret_key) < 32:
        problems.append("app.secret_key must be set to a random value of 32+ characters")
    if settings.app.debug:
        problems.append("app.debug must be false")
    if not settings.security.encryption_keys:
        problems.append("security.encryption_keys must hold at least one Fernet key")
    if not settings.cookie_secure:
        problems.append("security.session_cookie_secure must be true")
    if not settings.app.base_url.startswith("https://"):
        # It is written into every published post's tracked links and OAuth callbacks.
        problems.append("app.base_url must be the https:// address people reach the app on")
    if problems:
        raise ConfigError("refusing to start in production: " + "; ".join(problems))
