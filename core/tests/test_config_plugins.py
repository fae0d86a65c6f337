"""[plugin:NAME] sections -> argv watchers, plugin_watcher(), the --config codec, and the
options a plugin declares (``PluginOptions``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from circus.config import CircusSettings, load_config, plugin_watcher
from circus.errors import ConfigError
from circus.plugins.codec import decode_config, encode_config
from circus.plugins.options import PluginOptions, UndeclaredOption

PLUGIN = "circus.plugins.CircusPlugin"


def write(folder: Path, text: str) -> Path:
    path = folder / "circus.ini"
    path.write_text(textwrap.dedent(text))
    return path


def argv_option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_plugin_section_becomes_argv_watcher(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        [circus]
        endpoint = ipc://{tmp_path}/c.sock
        pubsub_endpoint = ipc://{tmp_path}/p.sock
        check_delay = 2
        loglevel = warning
        logoutput = {tmp_path}/plugin.log
        [plugin:Flap]
        use = {PLUGIN}
        max_retry = 2
        retry_in = 3
        graceful_timeout = 4.5
        respawn = false
        stop_signal = INT
        priority = 7
        message = hello "big" world's a:b c
        """,
    )
    config = load_config(path)
    (watcher,) = config.watchers
    (plugin,) = config.plugins
    assert watcher.name == plugin.name == "plugin:Flap"
    assert plugin.use == PLUGIN
    assert plugin.class_path == PLUGIN
    assert watcher.is_plugin
    assert (watcher.singleton, watcher.numprocesses) == (True, 1)
    assert (watcher.copy_env, watcher.copy_path) == (True, True)
    # the plugin's output goes to circusd's log, tagged with its name (issue 8 item 7)
    log_stream = {"class": "LogStream", "tag": "plugin:Flap"}
    assert watcher.stdout_stream == watcher.stderr_stream == log_stream
    # watcher options in the section are typed and applied (P7)
    assert watcher.graceful_timeout == 4.5
    assert watcher.respawn is False
    assert watcher.stop_signal == 2
    assert watcher.priority == 7
    assert watcher.max_retry == 2
    argv = watcher.argv
    assert argv is not None
    assert argv[:3] == [sys.executable, "-m", "circus.plugins.runner"]
    assert watcher.cmd == sys.executable
    assert argv_option(argv, "--endpoint") == f"ipc://{tmp_path}/c.sock"
    assert argv_option(argv, "--pubsub") == f"ipc://{tmp_path}/p.sock"
    assert argv_option(argv, "--check-delay") == "2.0"  # the real check_delay (P1)
    assert argv_option(argv, "--log-level") == "warning"
    assert argv_option(argv, "--log-output") == f"{tmp_path}/plugin.log"
    assert argv[-1] == PLUGIN
    encoded = argv_option(argv, "--config")
    assert encoded is not None
    expected = {
        "name": "plugin:Flap",
        "max_retry": "2",
        "retry_in": "3",
        "graceful_timeout": "4.5",
        "respawn": "false",
        "stop_signal": "INT",
        "priority": "7",
        "message": 'hello "big" world\'s a:b c',
    }
    assert decode_config(encoded) == expected  # no __name__ (P6), spaces and quotes intact (P5)
    assert plugin.options == expected


def test_plugin_debug_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"[circus]\ndebug = true\nloglevel = error\n[plugin:p]\nuse = {PLUGIN}\n"
    )
    (watcher,) = load_config(path).watchers
    assert watcher.argv is not None
    assert argv_option(watcher.argv, "--log-level") == "DEBUG"
    assert argv_option(watcher.argv, "--check-delay") == "5.0"
    assert "--log-output" not in watcher.argv
    assert watcher.stdout_stream == {"class": "StdoutStream"}
    assert (watcher.close_child_stdout, watcher.priority) == (False, 1)


def test_plugin_without_log_settings(tmp_path: Path) -> None:
    (watcher,) = load_config(write(tmp_path, f"[plugin:p]\nuse = {PLUGIN}\n")).watchers
    assert watcher.argv is not None
    assert "--log-level" not in watcher.argv
    assert decode_config(argv_option(watcher.argv, "--config") or "") == {"name": "plugin:p"}


def test_plugin_copy_env_off_turns_copy_path_off(tmp_path: Path) -> None:
    (watcher,) = load_config(
        write(tmp_path, f"[plugin:p]\nuse = {PLUGIN}\ncopy_env = no\n")
    ).watchers
    assert (watcher.copy_env, watcher.copy_path) == (False, False)


def test_plugin_fixed_options_only_reach_the_plugin(tmp_path: Path) -> None:
    path = write(tmp_path, f"[plugin:p]\nuse = {PLUGIN}\nnumprocesses = 4\ncmd = other\n")
    config = load_config(path)
    (watcher,) = config.watchers
    assert (watcher.numprocesses, watcher.cmd) == (1, sys.executable)
    assert config.plugins[0].options["numprocesses"] == "4"


PROBE = """
import json, os


class Probe:
    name = "probe"

    def __init__(self, endpoint, pubsub_endpoint, check_delay, ssh_server=None, **config):
        seen = {"endpoint": endpoint, "pubsub": pubsub_endpoint, "check_delay": check_delay,
                "config": config}
        with open(os.environ["PROBE_OUT"], "w") as handle:
            json.dump(seen, handle)

    def start(self):
        pass

    def stop(self):
        pass
"""


def test_plugin_argv_reaches_the_plugin_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Execute the vector as circusd would: the plugin sees every option unchanged (P1, P5)."""
    (tmp_path / "h3_probe_plugin.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write(
        tmp_path,
        """\
        [circus]
        check_delay = 0.75
        [plugin:probe]
        use = h3_probe_plugin.Probe
        message = two  words, 'single' "double" $HOME \\back
        url = http://127.0.0.1:8125/x
        empty =
        graceful_timeout = 3
        """,
    )
    (watcher,) = load_config(path).watchers
    assert watcher.argv is not None
    out = tmp_path / "seen.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),  # what copy_path exports
        "PROBE_OUT": str(out),
    }
    result = subprocess.run(
        watcher.argv, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(out.read_text())
    assert seen["check_delay"] == 0.75
    assert seen["endpoint"] == "tcp://127.0.0.1:5555"
    assert seen["config"] == {
        "name": "plugin:probe",
        "message": "two  words, 'single' \"double\" $HOME \\back",
        "url": "http://127.0.0.1:8125/x",
        "empty": "",
        "graceful_timeout": "3",
    }


def test_plugin_short_name_resolves_to_class_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from circus.plugins import registry

    # a distribution of our own, not names[0] of whatever is installed (which may require
    # options, or be absent): the test holds in any venv
    site = tmp_path / "site"
    info = site / "h4_cfg-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: h4-cfg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[circus.plugins]\nh4cfg = h4_cfg_plugin:Plain\n")
    (site / "h4_cfg_plugin.py").write_text(
        "from circus.plugins import CircusPlugin\n\n"
        "class Plain(CircusPlugin):\n    def handle_recv(self, data):\n        pass\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    config = load_config(write(tmp_path, "[plugin:x]\nuse = h4cfg\n"))
    (plugin,) = config.plugins
    assert plugin.use == "h4cfg"
    assert plugin.class_path == registry.resolve("h4cfg").class_path == "h4_cfg_plugin:Plain"
    assert config.watchers[0].argv is not None
    assert config.watchers[0].argv[-1] == plugin.class_path


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ("max_retry = 2\n", "use", "missing required option 'use'"),
        ("use =\n", "use", "missing required option 'use'"),
        ("use = circus.plugins.NoSuchPlugin\n", "use", "NoSuchPlugin"),
        ("use = no_such_package_xyz.Plugin\n", "use", "no_such_package_xyz"),
        ("use = flappping\n", "use", "unknown plugin 'flappping'"),
        (f"use = {PLUGIN}\nrespawn = sometimes\n", "respawn", "invalid boolean"),
        (f"use = {PLUGIN}\nstop_signal = NOPE\n", "stop_signal", "unknown signal 'NOPE'"),
        (f"use = {PLUGIN}\ngraceful_timeout = slow\n", "graceful_timeout", "invalid number"),
        (f"use = {PLUGIN}\nodd = a:::b\n", "odd", "':::'"),
    ],
)
def test_plugin_errors_are_located(tmp_path: Path, body: str, key: str, fragment: str) -> None:
    path = write(tmp_path, "[plugin:flap]\n" + body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    exc = info.value
    assert (exc.path, exc.section, exc.key) == (str(path), "plugin:flap", key)
    assert str(exc).startswith(f"{path}: [plugin:flap]: {key}: ")
    assert fragment in exc.message


def test_unknown_plugin_lists_installed_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "[plugin:x]\nuse = no-such-plugin-name\n")
    with pytest.raises(ConfigError, match="installed plugins"):
        load_config(path)


def test_plugin_watcher_name_collides_with_watcher(tmp_path: Path) -> None:
    path = write(tmp_path, f"[plugin:p]\nuse = {PLUGIN}\n[watcher:PLUGIN:P]\ncmd = x\n")
    with pytest.raises(ConfigError, match="duplicate watcher name") as info:
        load_config(path)
    assert info.value.path == str(path)


def test_plugin_watcher_python_api() -> None:
    settings = CircusSettings(endpoint="ipc:///tmp/e", pubsub_endpoint="ipc:///tmp/p")
    plugin, watcher = plugin_watcher(
        "stats", PLUGIN, {"host": "127.0.0.1", "port": 8125, "graceful_timeout": 1}, settings
    )
    assert plugin.name == watcher.name == "plugin:stats"
    assert watcher.graceful_timeout == 1.0
    assert watcher.argv is not None
    assert decode_config(argv_option(watcher.argv, "--config") or "") == {
        "host": "127.0.0.1",
        "port": "8125",
        "graceful_timeout": "1",
        "name": "plugin:stats",
    }
    assert argv_option(watcher.argv, "--check-delay") == "5.0"


def test_plugin_watcher_python_api_errors() -> None:
    with pytest.raises(ConfigError) as info:
        plugin_watcher("plugin:s", PLUGIN, {"priority": "high"}, CircusSettings())
    assert (info.value.section, info.value.key) == ("plugin:s", "priority")


# -- codec ----------------------------------------------------------------------------------


def test_codec_matches_the_original_format() -> None:
    encoded = encode_config({"retry_in": "3", "name": "plugin:flapping", "max_retry": "2"})
    assert encoded == "max_retry:2:::name:plugin:flapping:::retry_in:3"
    assert encode_config({}) == ""


@pytest.mark.parametrize(
    "config",
    [
        {"name": "plugin:flapping", "x": "1:2"},
        {"message": "hello world", "quote": 'it\'s "quoted"', "path": "/a b/c"},
        {"url": "http://host:80/x?a=b", "empty": "", "colon_first": ":x"},
        {"unicode": "héllo wörld"},
        {"a": "", "b": "ends:", "c": "", "d": "::"},
    ],
)
def test_codec_round_trip(config: dict[str, str]) -> None:
    assert decode_config(encode_config(config)) == config


def test_decode_rules() -> None:
    assert decode_config("a:1:::junk:::b:2:3:::a:4") == {"a": "4", "b": "2:3"}
    assert decode_config(" k : v ") == {"k": "v"}
    assert decode_config("") == {}


@pytest.mark.parametrize(
    "config",
    [{"a:b": "1"}, {"": "1"}, {" a": "1"}, {"a": "x:::y"}],
)
def test_encode_refuses_unrepresentable(config: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="cannot be passed to a plugin"):
        encode_config(config)


def test_plugin_streams_or_close_child_replace_the_log_stream(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        [plugin:a]
        use = {PLUGIN}
        stdout_stream.class = FileStream
        stdout_stream.filename = {tmp_path / "a.log"}
        close_child_stderr = true
        """,
    )
    (watcher,) = load_config(path).watchers
    assert watcher.stdout_stream == {"class": "FileStream", "filename": str(tmp_path / "a.log")}
    assert watcher.stderr_stream == {}
    assert watcher.close_child_stderr is True


def test_plugin_options_view_reads_only_declared_names() -> None:
    options = PluginOptions("port").extend("host")
    assert options.names == {"host", "port"}
    view = options.view({"host": "h", "other": "x"})
    assert dict(view) == {"host": "h"}
    assert len(view) == 1
    assert view.get("port", 8) == 8
    assert "host" in view
    # a name the plugin reads but does not declare is the plugin's bug: loud, never a default
    with pytest.raises(UndeclaredOption, match="'prot' is read but not declared in "
                       "PluginOptions\\('host', 'port'\\)"):
        view.get("prot", 8)
    with pytest.raises(UndeclaredOption, match="'other'"):
        assert "other" not in view


def test_the_declaring_options_example_of_docs_plugins_md(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    block = doc.split("### Declaring options", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "x3_poller.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write(tmp_path, "[plugin:p]\nuse = x3_poller.Poller\ninterval = 2\nintervall = 3\n")
    (warning,) = load_config(path).warnings
    assert (warning.section, warning.key) == ("plugin:p", "intervall")
    assert "did you mean 'interval'?" in str(warning)
    with pytest.raises(ConfigError, match="interval: invalid number"):
        load_config(write(tmp_path, "[plugin:p]\nuse = x3_poller.Poller\ninterval = soon\n"))
