"""Circus 0.19's dotted plugin paths (``use = circus.plugins.flapping.Flapping``) resolve to our
distributions: in a config run by a real circusd, in the ``circus-plugin`` runner, and with a
clear "pip install ..." message when the distribution is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from circus.config import load_config
from circus.errors import ConfigError
from circus.plugins import registry
from circus.plugins.runner import main as runner_main
from circus.testing import CircusdProcess, terminate

WAIT = 30.0


def installed_aliases() -> list[str]:
    names = {info.name for info in registry.installed()}
    return [path for path, (short, _) in registry.ALIASES.items() if short in names]


def test_every_0_19_bundled_plugin_has_an_alias() -> None:
    expected = {"statsd.StatsdEmitter", "_statsd.StatsdEmitter", "statsd.FullStats",
                "flapping.Flapping", "watchdog.WatchDog", "resource_watcher.ResourceWatcher",
                "command_reloader.CommandReloader", "http_observer.HttpObserver",
                "redis_observer.RedisObserver"}
    assert set(registry.ALIASES) == {f"circus.plugins.{path}" for path in expected}


@pytest.mark.parametrize("path", installed_aliases())
def test_alias_resolves_to_the_installed_distribution(path: str) -> None:
    short, dist = registry.ALIASES[path]
    spec = registry.resolve(path)
    assert spec.name == short
    assert spec.dist_name == dist
    assert spec.load() is registry.resolve(short).load()
    # the colon form of the same path too
    module, _, cls = path.rpartition(".")
    assert registry.resolve(f"{module}:{cls}").name == short


def without(monkeypatch: pytest.MonkeyPatch, short: str) -> None:
    """Make one distribution look uninstalled (the workspace installs them all)."""
    real = registry._entry_points
    monkeypatch.setattr(
        registry, "_entry_points",
        lambda: {name: eps for name, eps in real().items() if name != short},
    )


def test_missing_distribution_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    without(monkeypatch, "http_observer")
    path = "circus.plugins.http_observer.HttpObserver"
    with pytest.raises(registry.PluginNotFound, match="pip install circus-plugin-http-observer"):
        registry.resolve(path)
    ini = tmp_path / "circus.ini"
    ini.write_text(f"[plugin:health]\nuse = {path}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(ini))
    assert "[plugin:health]" in str(info.value)
    assert "pip install circus-plugin-http-observer" in str(info.value)
    assert runner_main([path]) == 1
    err = capsys.readouterr().err
    assert "pip install circus-plugin-http-observer" in err
    assert "Traceback" not in err


def plugin_lines(daemon: CircusdProcess, logger: str) -> list[str]:
    return [line for line in daemon.log_text().splitlines() if logger in line]


def wait_logged(daemon: CircusdProcess, logger: str, text: str) -> None:
    deadline = time.monotonic() + WAIT
    while not any(text in line for line in plugin_lines(daemon, logger)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{logger} never logged {text!r}:\n{daemon.log_text()}")
        time.sleep(0.05)


def test_old_config_runs_under_circusd(tmp_path: Path) -> None:
    config = (
        "[circus]\ndebug = true\n\n"
        "[watcher:web]\ncmd = sleep 120\n\n"
        "[plugin:flapping]\nuse = circus.plugins.flapping.Flapping\n\n"
        "[plugin:health]\nuse = circus.plugins.http_observer.HttpObserver\n"
        "check_url = http://127.0.0.1:9/\nloop_rate = 30\ntimeout = 1\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        wait_logged(daemon, "circus.plugins.http_observer", "observing http://127.0.0.1:9/")
        wait_logged(daemon, "circus.plugins.flapping", "web: attempts=2")
        watchers = daemon.call("list")["watchers"]
        assert {"plugin:flapping", "plugin:health"} <= set(watchers)
        for name in ("plugin:flapping", "plugin:health"):
            assert daemon.call("status", name=name)["status"] == "active"


def test_old_path_in_the_runner(tmp_path: Path) -> None:
    with CircusdProcess("[watcher:web]\ncmd = sleep 120\n", tmp_path) as daemon:
        out = tmp_path / "runner.log"
        with open(out, "w") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "circus.plugins.runner", "--endpoint", daemon.endpoint,
                 "--pubsub", daemon.pubsub_endpoint, "circus.plugins.flapping.Flapping"],
                stdout=handle, stderr=subprocess.STDOUT, env=dict(os.environ),
            )
        try:
            deadline = time.monotonic() + WAIT
            while "web: attempts=2" not in out.read_text():
                assert proc.poll() is None, out.read_text()
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.05)
        finally:
            assert terminate(proc) == 0, out.read_text()
