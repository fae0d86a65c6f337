"""``[circus] httpd = true`` starts the dashboard as 0.19 started circushttpd, and the plugin's
options are checked when circusd loads its configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from circus.config.loader import load_config
from circus.config.model import CircusConfig
from circus.errors import ConfigError
from circus_plugin_web.settings import WebSettings


def load(tmp_path: Path, text: str) -> CircusConfig:
    path = tmp_path / "circus.ini"
    path.write_text(text)
    return load_config(path)


def test_httpd_builds_the_web_plugin_watcher(tmp_path: Path) -> None:
    config = load(tmp_path, "[circus]\nhttpd = true\nhttpd_port = 8123\n\n"
                            "[watcher:w]\ncmd = sleep 1\n")
    (plugin,) = config.plugins
    assert plugin.name == "plugin:web"
    assert plugin.options["port"] == "8123"
    assert plugin.options["host"] == "localhost"  # 0.19's default, read as 127.0.0.1
    assert [w.name for w in config.watchers] == ["w", "plugin:web"]
    assert config.warnings == []


def test_without_httpd_nothing_is_added(tmp_path: Path) -> None:
    config = load(tmp_path, "[watcher:w]\ncmd = sleep 1\n")
    assert config.plugins == []
    assert config.warnings == []


def test_httpd_beyond_loopback_without_token_is_a_warning_not_a_refusal(tmp_path: Path) -> None:
    config = load(tmp_path, "[circus]\nhttpd = true\nhttpd_host = 0.0.0.0\n\n"
                            "[watcher:w]\ncmd = sleep 1\n")
    assert config.plugins == []
    assert [w.name for w in config.watchers] == ["w"]  # circusd still runs its watchers
    (warning,) = config.warnings
    assert (warning.section, warning.key) == ("circus", "httpd")
    assert "httpd = true: the dashboard does not start (httpd_host)" in warning.message
    assert "no access token" in warning.message


def test_a_plugin_web_section_wins_over_httpd(tmp_path: Path) -> None:
    config = load(tmp_path, "[circus]\nhttpd = true\n\n[plugin:web]\nuse = web\nport = 8124\n")
    (plugin,) = config.plugins
    assert plugin.options["port"] == "8124"
    assert "section's dashboard runs" in config.warnings[0].message


@pytest.mark.parametrize(("options", "key", "message"), [
    ({"host": "example.org"}, "host", "must be an IP address"),
    ({"host": "10.0.0.1"}, "host", "no access token"),
    ({"port": "0"}, "port", "at least 1"),
    ({"token": "short"}, "token", "at least 8 characters"),
    ({"token": "long-enough", "token_file": "/x"}, "token_file", "not both"),
    ({"token_file": "/nonexistent/token"}, "token_file", "cannot read"),
    ({"history": "5"}, "history", "at least 10"),
])
def test_bad_options_are_config_errors_naming_the_key(options: dict[str, str], key: str,
                                                      message: str) -> None:
    with pytest.raises(ConfigError) as error:
        WebSettings.from_config(options)
    assert error.value.key == key
    assert message in str(error.value)


def test_token_file_and_a_public_address(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret-token\n")
    settings = WebSettings.from_config({"host": "0.0.0.0",
                                        "token_file": str(tmp_path / "token")})
    assert settings.token == "s3cret-token"
    assert not settings.loopback
    assert WebSettings.from_config({"host": "localhost"}).host == "127.0.0.1"


def test_a_plugin_section_with_a_bad_option_stops_circusd_loading(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, "[plugin:web]\nuse = web\nhost = 0.0.0.0\n")
    assert error.value.section == "plugin:web"
    assert error.value.key == "host"
