"""Bad options of the health and alert plugins stop circusd's configuration load with one line
naming the section and the option (no traceback, nothing started); a misspelt option of any
bundled plugin is warned about by circusd ("did you mean") and refused under ``--strict``,
because every bundled plugin declares the options it reads (``config_options``)."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

from circus.config import load_config
from circus.config.model import WATCHER_OPTIONS
from circus.config.plugin_section import undeclared_keys
from circus.config.schema import lookup
from circus.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CIRCUSD = [sys.executable, "-m", "circus.circusd"]
#: what each bundled plugin needs to load at all (its ``check_config`` runs at load time)
REQUIRED = {
    "autoscale": "watcher = w\nmax = 2\n",
    "logger": "filename = {tmp}/events.log\n",
    "notify": "webhook_url = http://127.0.0.1:9/\n",
    "resource_watcher": "watcher = w\n",
}


def bundled() -> dict[str, EntryPoint]:
    """The installed plugins whose code lives under ``plugins/`` (``circus_plugin_NAME``)."""
    return {ep.name: ep for ep in entry_points(group="circus.plugins")
            if ep.value.startswith("circus_plugin_")}

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


def declared(name: str) -> frozenset[str]:
    options = getattr(bundled()[name].load(), "config_options", None)
    assert isinstance(options, frozenset), f"{name} does not declare config_options"
    assert options
    assert all(isinstance(option, str) for option in options)
    return options


def readme_options(name: str) -> tuple[set[str], set[str]]:
    """The names in the first column of the plugin's README options table, and every name the
    table mentions (aliases are mentioned in the other columns)."""
    lines = (ROOT / "plugins" / name / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*Option\s*\|", line))
    first: set[str] = set()
    every: set[str] = set()
    for row in itertools.takewhile(lambda line: line.startswith("|"), lines[start + 2:]):
        first |= set(re.findall(r"`([^`]+)`", row.split("|")[1]))
        every |= set(re.findall(r"`([a-z_]+)`", row))
    return first, every


def test_every_plugin_directory_is_an_installed_plugin() -> None:
    assert sorted(bundled()) == sorted(p.name for p in (ROOT / "plugins").iterdir()
                                       if (p / "pyproject.toml").is_file())


@pytest.mark.parametrize("name", sorted(bundled()))
def test_readme_lists_what_the_plugin_declares(name: str) -> None:
    first, every = readme_options(name)
    unknown, known = undeclared_keys(name, sorted(first))
    assert unknown == [], f"plugins/{name}/README.md lists options {name} does not declare"
    assert sorted(set(known) - every) == [], f"plugins/{name}/README.md misses options"
    assert set(known) == declared(name)


def misspelt(name: str) -> tuple[str, str]:
    """(an option of the plugin, the same with its last letter doubled); the longest option
    that is not also a watcher option (those are known for every plugin section)."""
    option = max((o for o in declared(name) if lookup(WATCHER_OPTIONS, o) is None),
                 key=lambda o: (len(o), o))
    typo = option + option[-1]
    assert typo not in declared(name)
    assert lookup(WATCHER_OPTIONS, typo) is None
    return option, typo


@pytest.mark.parametrize("name", sorted(bundled()))
def test_circusd_warns_about_a_misspelt_option_and_strict_refuses_it(
    tmp_path: Path, name: str
) -> None:
    option, typo = misspelt(name)
    ini = tmp_path / "circus.ini"
    pidfile = tmp_path / "circusd.pid"
    # a live pid (this test's) in the pidfile stops the real circusd right after it has loaded
    # the configuration and logged its warnings, before it binds or starts anything
    pidfile.write_text(str(os.getpid()))
    ini.write_text(
        f"[circus]\nendpoint = ipc://{tmp_path}/c.sock\npubsub_endpoint = ipc://{tmp_path}/p.sock\n"
        f"pidfile = {pidfile}\n[watcher:w]\ncmd = sleep 60\n"
        f"[plugin:{name}]\nuse = {name}\n{REQUIRED.get(name, '').format(tmp=tmp_path)}"
        f"{typo} = 1\n"
    )
    warning = (f"{ini}: [plugin:{name}]: {typo}: unknown option; did you mean '{option}'? "
               "(not an option the plugin declares; passed to it anyway, as 0.19 does)")
    result = subprocess.run([*CIRCUSD, str(ini)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 1
    assert f"pid file '{pidfile}'" in result.stderr, result.stderr
    assert warning in result.stdout  # circusd's log ('-' is standard output)
    assert "Traceback" not in result.stdout + result.stderr
    result = subprocess.run([*CIRCUSD, "--strict", str(ini)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"{warning} (refused under strict mode)"]


@pytest.mark.parametrize("ini", sorted((ROOT / "demo").glob("*.ini")), ids=lambda p: p.name)
def test_demo_configs_load_without_warnings(ini: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ini.parent)  # its paths are relative to the demo directory
    assert [str(warning) for warning in load_config(str(ini)).warnings] == []
