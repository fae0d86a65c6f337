"""Least privilege for plugins (issue 9, item 4) with a real circusd and a real plugin process.

The plugin is a module written to tmp and put on PYTHONPATH; circusd starts it from a
``[plugin:probe]`` section, gives it its token through the environment, and the controller
applies the section's ``allow`` list.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from circus.client import CircusClient
from circus.config import load_config
from circus.credentials import TOKEN_ENV, Registry, permissions, routing_id
from circus.errors import ConfigError
from circus.testing import CircusdProcess, EventCollector

WAIT = 30.0

PROBE = '''
import json
from circus.plugins import CircusPlugin

class Probe(CircusPlugin):
    """Tries a forbidden cast and call and reports the call's reply; casts an allowed incr
    whenever the test changes w's options (so the test's subscriber is there to see it)."""
    def handle_init(self):
        self.cast('quit')
        refused = self.call('quit')
        with open(self.config['out'], 'w') as out:
            out.write(json.dumps(refused))
    def handle_recv(self, data):
        if data[0] == 'watcher.w.updated':
            self.cast('incr', name='w')
'''


def wait_for_file(path: Path, timeout: float = WAIT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} not written within {timeout} s")


def test_plugin_without_permission_cannot_quit_and_its_incr_is_signed(tmp_path: Path) -> None:
    (tmp_path / "probe_mod.py").write_text(PROBE)
    out = tmp_path / "refused.json"
    config = textwrap.dedent(f"""\
        [watcher:w]
        cmd = sleep 600

        [plugin:probe]
        use = probe_mod.Probe
        out = {out}
        allow = incr, list
        """)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    daemon = CircusdProcess(config, tmp_path, env=env)
    with EventCollector(daemon.pubsub_endpoint) as events, daemon:
        refused = json.loads(wait_for_file(out))
        assert refused["status"] == "error"
        assert refused["errno"] == 3
        assert refused["reason"] == "plugin:probe may not send 'quit' (allowed: incr, list)"
        events.wait_ready(daemon, "w")
        deadline = time.monotonic() + WAIT
        while True:  # until the plugin's subscription has seen an `updated` (bounded)
            mark = len(events.events)
            daemon.call("set", name="w", options={"graceful_timeout": 3})
            try:
                events.wait_for(
                    lambda t, p: t == "watcher.w.spawn" and p.get("by") == "plugin:probe",
                    start=mark,
                    timeout=1.0,
                )
                break
            except AssertionError:
                assert time.monotonic() < deadline, f"the plugin's incr never came: {events.events}"
        assert len(daemon.call("list", name="w")["pids"]) >= 2
        assert daemon.popen is not None
        assert daemon.popen.poll() is None  # the casted quit did nothing
        assert daemon.call("status")["status"] == "ok"
    assert "refused a plugin's cast" in daemon.log_text()
    assert "plugin:probe may not send 'quit'" in daemon.log_text()


def test_events_say_which_client_asked(tmp_path: Path) -> None:
    with CircusdProcess("[watcher:w]\ncmd = sleep 600\n", tmp_path) as daemon, EventCollector(
        daemon.pubsub_endpoint
    ) as events:
        events.wait_ready(daemon, "w")
        mark = len(events.events)
        with CircusClient(daemon.endpoint, label="circusctl") as ctl:
            assert ctl.call("set", name="w", options={"graceful_timeout": 3})["status"] == "ok"
        _, by_ctl = events.wait_for(lambda t, p: t == "watcher.w.updated", start=mark)
        assert by_ctl["by"] == "circusctl"
        mark = len(events.events)
        daemon.call("set", name="w", options={"graceful_timeout": 4})
        _, by_other = events.wait_for(lambda t, p: t == "watcher.w.updated", start=mark)
        assert by_other["by"] == "client"
        # an exit nobody asked for: the reap and the respawn carry no "by"
        pid = daemon.call("list", name="w")["pids"][0]
        mark = len(events.events)
        os.kill(pid, 9)
        _, reaped = events.wait_for(lambda t, p: t == "watcher.w.reap", start=mark)
        assert "by" not in reaped


def test_registry_maps_tokens_and_defaults_to_read_only() -> None:
    registry = Registry()
    registry.declare("plugin:a", permissions(None, None))
    registry.declare("plugin:b", permissions(None, {"Incr"}))
    registry.declare("plugin:c", permissions("*", None))
    env_a = registry.child_env("plugin:a")
    grant_a = registry.grant_for(routing_id(environ=env_a))
    assert grant_a is not None
    assert grant_a.name == "plugin:a"
    assert grant_a.permits("status")
    assert not grant_a.permits("incr")
    grant_b = registry.grant_for(routing_id(environ=registry.child_env("plugin:b")))
    assert grant_b is not None
    assert grant_b.permits("incr")
    assert not grant_b.permits("quit")
    grant_c = registry.grant_for(routing_id(environ=registry.child_env("plugin:c")))
    assert grant_c is not None
    assert grant_c.permits("quit")
    assert registry.child_env("watcher-not-a-plugin") == {}
    assert registry.grant_for(b"cp1:forged:x") is None
    assert registry.grant_for(routing_id(environ={})) is None
    assert routing_id("circusctl", environ={}).startswith(b"circusctl:")
    # re-declaring (reloadconfig) keeps the token and changes the permissions
    registry.declare("plugin:a", permissions("quit", None))
    again = registry.grant_for(routing_id(environ={TOKEN_ENV: env_a[TOKEN_ENV]}))
    assert again is not None
    assert again.permits("quit")


def test_unknown_command_in_allow_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "circus.ini"
    path.write_text("[plugin:p]\nuse = circus_plugin_flapping.plugin.Flapping\n"
                    "allow = incr, bogus\n")
    with pytest.raises(ConfigError, match=r"\[plugin:p\]: allow: unknown command\(s\) 'bogus'"):
        load_config(str(path))


def test_later_events_of_a_process_a_command_started_carry_no_by(tmp_path: Path) -> None:
    # The loop runs a child's exit callback in the context of whoever registered it: without
    # care, every later crash of a process a client (or a plugin) spawned says that client
    # asked for it. Its spawn is the command's doing; its crash and respawn are not.
    with CircusdProcess("[watcher:w]\ncmd = sleep 600\n", tmp_path) as daemon, EventCollector(
        daemon.pubsub_endpoint
    ) as events:
        events.wait_ready(daemon, "w")
        mark = len(events.events)
        with CircusClient(daemon.endpoint, label="circusctl") as ctl:
            assert ctl.call("incr", name="w")["status"] == "ok"
        _, spawned = events.wait_for(lambda t, p: t == "watcher.w.spawn", start=mark)
        assert spawned["by"] == "circusctl"
        mark = len(events.events)
        os.kill(spawned["process_pid"], 9)
        _, reaped = events.wait_for(lambda t, p: t == "watcher.w.reap", start=mark)
        _, respawned = events.wait_for(lambda t, p: t == "watcher.w.spawn", start=mark)
        assert "by" not in reaped
        assert "by" not in respawned
        # an exit a command asked for is still that command's doing
        mark = len(events.events)
        with CircusClient(daemon.endpoint, label="circusctl") as ctl:
            assert ctl.call("decr", name="w", waiting=True)["status"] == "ok"
        _, retired = events.wait_for(lambda t, p: t == "watcher.w.reap", start=mark)
        assert retired["by"] == "circusctl"
