"""The watcher option schema: one declaration read by the loader, set/add, options, circusctl
and plugin sections."""

from __future__ import annotations

import pytest

from circus.commands.options import validate_option
from circus.config import CircusSettings, WatcherConfig, plugin_watcher, watcher_from_options
from circus.config.model import WATCHER_OPTIONS
from circus.config.schema import Effect, defaults_of
from circus.ctl.setvalues import convert_set_options
from circus.errors import ConfigError, MessageError

#: the keys of 0.19's ``options`` reply (contract 3.3)
OPTIONS_019 = {
    "args", "close_child_stderr", "close_child_stdin", "close_child_stdout", "cmd", "copy_env",
    "env", "executable", "gid", "graceful_timeout", "max_age", "max_age_variance", "max_retry",
    "numprocesses", "on_demand", "priority", "respawn", "send_hup", "shell", "shell_args",
    "singleton", "stderr_stream_conf", "stdout_stream_conf", "stop_children", "stop_signal",
    "uid", "use_sockets", "warmup_delay", "working_dir",
}  # fmt: skip
#: keys 0.19's ``set`` accepts (its validation table), ``rlimit_*`` and ``hooks.*`` aside
SET_019 = {
    "numprocesses", "warmup_delay", "working_dir", "cmd", "args", "env", "shell", "uid", "gid",
    "max_age", "max_age_variance", "send_hup", "stop_children", "stop_signal",
    "graceful_timeout", "stdout_stream", "stderr_stream", "hooks", "copy_env", "max_retry",
    "respawn", "singleton", "close_child_stdin", "close_child_stdout", "close_child_stderr",
}  # fmt: skip
CRASH_LOOP = {"min_uptime", "backoff_start", "backoff_max", "give_up_after"}


def test_shown_options_are_019s_plus_the_crash_loop_ones() -> None:
    shown = {opt.shown_as for opt in WATCHER_OPTIONS.values() if opt.shown}
    assert shown == OPTIONS_019 | CRASH_LOOP


def test_settable_keys_are_019s_plus_the_crash_loop_ones() -> None:
    settable = {name for name, opt in WATCHER_OPTIONS.items() if opt.settable} - {"rlimits"}
    assert settable == SET_019 | CRASH_LOOP


def test_defaults_come_from_the_declaration() -> None:
    defaults = defaults_of(WatcherConfig, WATCHER_OPTIONS)
    cfg = watcher_from_options("w", {"cmd": "sleep 1"})
    for name, value in defaults.items():
        if name != "cmd":
            assert getattr(cfg, name) == value, name
    assert defaults["min_uptime"] == 1.0
    assert defaults["give_up_after"] == 0


def test_a_new_option_reaches_every_reader() -> None:
    """min_uptime is one line in the model: INI strings, set, circusctl and plugins know it."""
    cfg = watcher_from_options("w", {"cmd": "x", "min_uptime": "2.5", "give_up_after": "3"})
    assert (cfg.min_uptime, cfg.give_up_after) == (2.5, 3)
    with pytest.raises(ConfigError, match="at least 0"):
        watcher_from_options("w", {"cmd": "x", "min_uptime": "-1"})
    assert validate_option("min_uptime", 2) == 2.0
    with pytest.raises(MessageError, match="'min_uptime' isn't a number"):
        validate_option("min_uptime", "2")
    assert convert_set_options(["min_uptime", "0.5", "give_up_after", "4"]) == {
        "min_uptime": 0.5,
        "give_up_after": 4,
    }
    _, plugin = plugin_watcher(
        "p", "circus.plugins.CircusPlugin", {"min_uptime": "3"}, CircusSettings()
    )
    assert plugin.min_uptime == 3.0


def test_plugin_sections_cannot_change_what_runs() -> None:
    fixed = {name for name, opt in WATCHER_OPTIONS.items() if not opt.plugin}
    assert fixed == {
        "cmd", "args", "argv", "shell", "shell_args", "executable", "numprocesses",
        "singleton", "env",
    }  # fmt: skip


def test_every_option_declares_an_effect() -> None:
    for opt in WATCHER_OPTIONS.values():
        assert isinstance(opt.effect, Effect)
    assert WATCHER_OPTIONS["cmd"].effect is Effect.RELOAD
    assert WATCHER_OPTIONS["singleton"].effect is Effect.IGNORE
