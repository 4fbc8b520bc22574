"""Typed settings: defaults, then a TOML file, then CAMPAIGN_<SECTION>__<KEY> variables."""

from __future__ import annotations

import os
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
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=1, le=65535)
    threads: int = Field(default=8, ge=1)
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto headers are trusted.
    proxy_count: int = Field(default=0, ge=0, le=5)


class WorkerSection(_Section):
    tick_seconds: float = Field(default=5.0, gt=0)
    heartbeat_stale_seconds: int = Field(default=120, ge=1)


class PlatformSection(_Section):
    api_base_url: str


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
    x: PlatformSection = Field(
        default_factory=lambda: PlatformSection(api_base_url="https://api.x.com")
    )
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
    if problems:
        raise ConfigError("refusing to start in production: " + "; ".join(problems))
