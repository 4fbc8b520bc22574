from pathlib import Path

import pytest

from campaign import create_app
from campaign.config import ConfigError, load_settings
from campaign.crypto import generate_key


def test_defaults_use_embedded_sqlite_under_instance(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'instance' / 'campaign.sqlite3'}"


def test_toml_file_is_read(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        '[database]\nurl = "sqlite:///x.db"\n[x]\napi_base_url = "http://127.0.0.1:9"\n'
    )
    settings = load_settings(path=path)
    assert settings.database.url == "sqlite:///x.db"
    assert settings.x.api_base_url == "http://127.0.0.1:9"


def test_environment_overrides_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///file.db"\n')
    monkeypatch.setenv("CAMPAIGN_DATABASE__URL", "sqlite:///env.db")
    monkeypatch.setenv("CAMPAIGN_SECURITY__ENCRYPTION_KEYS", "a,b")
    settings = load_settings(path=path)
    assert settings.database.url == "sqlite:///env.db"
    assert settings.security.encryption_keys == ["a", "b"]


def test_campaign_config_variable_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.toml"
    path.write_text("[server]\nport = 8123\n")
    monkeypatch.setenv("CAMPAIGN_CONFIG", str(path))
    assert load_settings().server.port == 8123


def test_missing_campaign_config_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CAMPAIGN_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()


def test_unknown_key_is_an_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurll = "typo"\n')
    with pytest.raises(ConfigError, match="urll"):
        load_settings(path=path)


def test_example_config_lists_every_key():
    from campaign.config import Settings

    example = load_settings(path=Path(__file__).parent.parent / "config.example.toml")
    import tomllib

    data = tomllib.loads((Path(__file__).parent.parent / "config.example.toml").read_text())
    for section in Settings.model_fields:
        assert section in data, f"config.example.toml lacks [{section}]"
        sub = getattr(example, section)
        assert set(type(sub).model_fields) == set(data[section]), f"[{section}] keys differ"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({}, "secret_key"),
        ({"app": {"secret_key": "s" * 40, "debug": True}}, "debug"),
        ({"app": {"secret_key": "s" * 40}}, "encryption_keys"),
        ({"app": {"secret_key": "s" * 40, "base_url": "http://careers.example"}}, "base_url"),
    ],
)
def test_production_refuses_unsafe_settings(overrides, problem, tmp_path):
    config = {"app": {"env": "production", "instance_path": str(tmp_path)}}
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    with pytest.raises(ConfigError, match=problem):
        create_app(config)


def test_cookies_are_https_only_in_production_by_default(tmp_path):
    assert load_settings({"app": {"env": "production"}}, use_file=False).cookie_secure is True
    assert load_settings({"app": {"env": "development"}}, use_file=False).cookie_secure is False
    explicit = {"app": {"env": "development"}, "security": {"session_cookie_secure": True}}
    assert load_settings(explicit, use_file=False).cookie_secure is True


def test_production_refuses_plain_http_cookies(tmp_path):
    config = {
        "app": {"env": "production", "secret_key": "s" * 40, "instance_path": str(tmp_path)},
        "security": {"encryption_keys": [generate_key()], "session_cookie_secure": False},
    }
    with pytest.raises(ConfigError, match="session_cookie_secure"):
        create_app(config)


def test_production_starts_with_safe_settings(tmp_path):
    app = create_app(
        {
            "app": {
                "env": "production",
                "secret_key": "s" * 40,
                "instance_path": str(tmp_path),
                "base_url": "https://careers-campaign.example.ac.uk",
            },
            "security": {"encryption_keys": [generate_key()]},
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
