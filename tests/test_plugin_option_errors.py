"""Bad options of the health and alert plugins stop circusd's configuration load with one line
naming the section and the option (no traceback, nothing started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from circus.config import load_config
from circus.errors import ConfigError

CASES = [
    ("notify", "", "nothing to notify: give email_to, webhook_url or both"),
    ("notify", "webhook_url = ftp://x/\n", "webhook_url: expected an http:// or https:// URL"),
    ("notify", "email_to = ops\n", "email_to: not an e-mail address: 'ops'"),
    ("notify", "email_to = a@b.c\nsmtp_tls = yes\n", "smtp_tls: expected one of none"),
    ("notify", "email_to = a@b.c\nsmtp_port = 70000\n", "smtp_port: must be at most 65535"),
    ("notify", "webhook_url = http://h/\non = crashing, exploded\n", "on: unknown alert kind(s)"),
    ("notify", "webhook_url = http://h/\ncrashes = 0\n", "crashes: must be at least 1"),
    ("notify", "webhook_url = http://h/\nrecovery_time = 0\n", "recovery_time: must be greater"),
    ("http_observer", "check_url = localhost:8080\n", "check_url: expected an http://"),
    ("http_observer", "expected_status = 2x\n", "expected_status: '2x' is not a status code"),
    ("http_observer", "timeout = 0\n", "timeout: must be greater than 0"),
    ("http_observer", "loop_rate = soon\n", "loop_rate: invalid number 'soon'"),
    ("http_observer", "max_failures = 0\n", "max_failures: must be at least 1"),
    ("http_observer", "cooldown = 60\nmax_cooldown = 10\n", "max_cooldown: must be >= cooldown"),
    ("http_observer", "signal = SIGNOPE\n", "signal:"),
    ("http_observer", "follow_redirects = maybe\n", "follow_redirects: invalid boolean 'maybe'"),
    ("http_observer", "port = 0\n", "port: must be at least 1"),
    ("redis_observer", "redis_url = http://localhost/\n", "redis_url: invalid Redis URL"),
    ("redis_observer", "timeout = -1\n", "timeout: must be greater than 0"),
    ("redis_observer", "max_failures = x\n", "max_failures: invalid integer 'x'"),
]


@pytest.mark.parametrize(("plugin", "options", "message"), CASES)
def test_bad_option_is_one_clear_line(
    tmp_path: Path, plugin: str, options: str, message: str
) -> None:
    ini = tmp_path / "circus.ini"
    ini.write_text(f"[plugin:checked]\nuse = {plugin}\n{options}")
    with pytest.raises(ConfigError) as info:
        load_config(str(ini))
    text = str(info.value)
    assert "[plugin:checked]" in text
    assert message in text
    assert "\n" not in text


def test_good_notify_options_load(tmp_path: Path) -> None:
    ini = tmp_path / "circus.ini"
    ini.write_text("[plugin:alerts]\nuse = notify\nemail_to = a@b.c d@e.f\nsmtp_tls = ssl\n"
                   "webhook_url = https://hooks.example.com/x\non = flapping recovered\n")
    config = load_config(str(ini))
    assert any(w.name == "plugin:alerts" for w in config.watchers)
