"""A watcher's keys addressed to a plugin (``flapping.max_retry``) are checked against the keys
the plugin declares (``watcher_options``): a misspelt key or prefix is a warning naming file,
section and key with "did you mean", refused under ``--strict``; the right key loads without a
word and the plugin really reads it; a key addressed to no plugin is kept silently, as in 0.19.

The daemon tests run a real circusd (and the real flapping plugin it starts); the others run
circusd's config check itself (``load_config``, which circusd calls before anything starts).
"""

from __future__ import annotations

import re
import textwrap
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from circus.config import load_config
from circus.errors import ConfigError
from circus.plugins.options import PluginOptions, UndeclaredOption
from circus.testing import CircusdError, CircusdProcess
from circus_plugin_command_reloader import settings as reloader_settings
from circus_plugin_flapping.settings import FlappingSettings

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0
KEPT = "(kept as a free-form option, as 0.19 does)"
KEY_TYPO = ("flapping.max_rety: not a key the flapping plugin reads; did you mean "
            f"'flapping.max_retry'? {KEPT}")
PREFIX_TYPO = ("flaping.retry_in: no plugin is named 'flaping'; did you mean "
               f"'flapping.retry_in'? {KEPT}")


def flapping_config(watcher_keys: str) -> str:
    # debug = true streams the plugin's log into circusd's, which the test reads
    return (f"[circus]\ndebug = true\n\n[watcher:tuned]\ncmd = sleep 120\n{watcher_keys}\n"
            "[plugin:flapping]\nuse = flapping\n")


def wait_for_line(daemon: CircusdProcess, pattern: str) -> str:
    """The first line of circusd's log matching ``pattern``, waited for (bounded)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for line in daemon.log_text().splitlines():
            if re.search(pattern, line):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no log line matches {pattern!r}:\n{daemon.log_text()}")


def warned(text: str) -> list[str]:
    """The keys circusd warned about as addressed to a plugin (lines with the 0.19 note)."""
    return re.findall(r"\[watcher:\w+\]: ([\w.]+): .*" + re.escape(KEPT), text)


def test_circusd_warns_about_typos_and_the_plugin_reads_the_right_key(tmp_path: Path) -> None:
    keys = ("flapping.max_retry = 7\nflapping.max_rety = 3\nflaping.retry_in = 2\n"
            "myapp.colour = blue\n")
    with CircusdProcess(flapping_config(keys), tmp_path) as daemon:
        # the plugin reads every watcher's overrides at start and logs the result
        line = wait_for_line(daemon, r"tuned: attempts=\d+ window=")
        assert "max_retry=7" in line  # the right key is used...
        assert "retry_in=7s" in line  # ...the misspelt prefix is not (7 s is the default)
        log = daemon.log_text()
        assert f"{daemon.config_path}: [watcher:tuned]: {KEY_TYPO}" in log
        assert f"{daemon.config_path}: [watcher:tuned]: {PREFIX_TYPO}" in log
        # the right key and a key addressed to no plugin load without a word
        assert sorted(warned(log)) == ["flaping.retry_in", "flapping.max_rety"]
        # every key is kept, as 0.19 keeps them: readable through `options`
        options = daemon.call("options", name="tuned")["options"]
        assert options["flapping.max_rety"] == "3"
        assert options["myapp.colour"] == "blue"


@pytest.mark.parametrize(("keys", "expected"), [
    ("flapping.max_rety = 3\n", KEY_TYPO),
    ("flaping.retry_in = 2\n", PREFIX_TYPO),
])
def test_strict_circusd_refuses_naming_file_section_and_key(
    tmp_path: Path, keys: str, expected: str
) -> None:
    daemon = CircusdProcess(flapping_config(keys), tmp_path, args=["--strict"])
    try:
        with pytest.raises(CircusdError) as info:  # it exits 1 before binding anything
            daemon.start()
    finally:
        daemon.kill()  # by its pid, should it have started after all
    assert f"{daemon.config_path}: [watcher:tuned]: {expected} (refused under strict mode)" \
        in str(info.value)
    assert "Traceback" not in str(info.value)


def test_strict_circusd_runs_the_right_keys(tmp_path: Path) -> None:
    """No false alarm: the keys both bundled plugins read, and one addressed to no plugin."""
    keys = ("flapping.max_retry = 7\ncommand_reloader.watch = .\nmyapp.colour = blue\n"
            "stdout_stream.class = StdoutStream\n")
    with CircusdProcess(flapping_config(keys), tmp_path, args=["--strict"]) as daemon:
        assert "max_retry=7" in wait_for_line(daemon, r"tuned: attempts=\d+ window=")
        assert warned(daemon.log_text()) == []


def test_reloadconfig_warns_and_strict_refuses(tmp_path: Path) -> None:
    """The same check runs on ``reloadconfig``: a warning in circusd's log, and under
    ``--strict`` an error reply naming the key, the running watcher left as it was."""
    text = "[watcher:w]\ncmd = sleep 120\nflapping.max_retry = 1\n"
    for strict in (False, True):
        folder = tmp_path / ("strict" if strict else "lenient")
        with CircusdProcess(text, folder, args=["--strict"] if strict else []) as daemon:
            pids = daemon.call("list", name="w")["pids"]
            daemon.config_path.write_text(daemon.config_path.read_text().replace(
                "flapping.max_retry", "flapping.max_rety"))
            reply = daemon.call("reloadconfig")
            expected = f"{daemon.config_path}: [watcher:w]: {KEY_TYPO}"
            if strict:  # refused: nothing changes
                assert reply["status"] == "error"
                assert reply["reason"] == f"{expected} (refused under strict mode)"
                assert daemon.call("list", name="w")["pids"] == pids
            else:  # applied: a changed key recreates the watcher, as in 0.19
                assert reply["status"] == "ok"
                wait_for_line(daemon, re.escape(expected))


# -- circusd's config check (load_config) ---------------------------------------------------


def warnings_of(tmp_path: Path, text: str) -> list[str]:
    ini = tmp_path / "circus.ini"
    ini.write_text(textwrap.dedent(text))
    return [str(warning) for warning in load_config(str(ini)).warnings]


def test_a_plugin_section_after_the_watcher_is_known(tmp_path: Path) -> None:
    found = warnings_of(tmp_path, """\
        [watcher:w]
        cmd = sleep 1
        command_reloader.wach = src
        commandreloader.watch = src
        [plugin:reload]
        use = command_reloader
        """)
    ini = tmp_path / "circus.ini"
    assert found == [
        f"{ini}: [watcher:w]: command_reloader.wach: not a key the command_reloader plugin "
        f"reads; did you mean 'command_reloader.watch'? {KEPT}",
        f"{ini}: [watcher:w]: commandreloader.watch: no plugin is named 'commandreloader'; "
        f"did you mean 'command_reloader.watch'? {KEPT}",
    ]


def test_installed_plugins_are_known_without_a_section(tmp_path: Path) -> None:
    """A watcher's overrides may be written before the plugin section is (or in another file)."""
    found = warnings_of(tmp_path, "[watcher:w]\ncmd = sleep 1\nflapping.window = 2\n"
                                  "flapping.windw = 2\nflapping.zzz = 1\n")
    ini = tmp_path / "circus.ini"
    assert found == [
        f"{ini}: [watcher:w]: flapping.windw: not a key the flapping plugin reads; did you "
        f"mean 'flapping.window'? {KEPT}",
        f"{ini}: [watcher:w]: flapping.zzz: not a key the flapping plugin reads; it reads "
        "flapping.active, flapping.attempts, flapping.max_retry, flapping.retry_in, "
        f"flapping.window {KEPT}",
    ]


def test_keys_of_no_plugin_and_of_undeclaring_plugins_are_kept_silently(tmp_path: Path) -> None:
    # `statsd` reads no per-watcher key: `stats.x` is no typo of one; `logger` declares none
    found = warnings_of(tmp_path, "[watcher:w]\ncmd = sleep 1\nmyapp.colour = blue\n"
                                  "stats.x = 1\nlogger.anything = 1\nx. = 1\n.y = 2\n")
    assert found == []


def test_the_warning_names_the_included_file(tmp_path: Path) -> None:
    included = tmp_path / "conf.d" / "web.ini"
    included.parent.mkdir()
    included.write_text("[watcher:web]\ncmd = sleep 1\nflapping.atempts = 3\n")
    found = warnings_of(tmp_path, "[circus]\ninclude_dir = conf.d\n")
    assert found == [f"{included}: [watcher:web]: flapping.atempts: not a key the flapping "
                     f"plugin reads; did you mean 'flapping.attempts'? {KEPT}"]


def test_a_dotted_use_is_known_by_its_class_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin that is not installed, named by its dotted path, is addressed by its ``name``."""
    (tmp_path / "my_tuner.py").write_text(textwrap.dedent("""\
        from circus.plugins import CircusPlugin
        from circus.plugins.options import PluginOptions

        class Tuner(CircusPlugin):
            name = "tuner"
            watcher_options = PluginOptions("level")

            def handle_recv(self, data):
                pass
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = warnings_of(tmp_path, "[watcher:w]\ncmd = sleep 1\ntuner.level = 1\n"
                                  "tuner.levl = 1\ntunr.level = 1\n"
                                  "[plugin:t]\nuse = my_tuner.Tuner\n")
    assert [line.split(": ", 3)[2:] for line in found] == [
        ["tuner.levl", f"not a key the tuner plugin reads; did you mean 'tuner.level'? {KEPT}"],
        ["tunr.level", f"no plugin is named 'tunr'; did you mean 'tuner.level'? {KEPT}"],
    ]
    ini = tmp_path / "circus.ini"
    with pytest.raises(ConfigError, match=re.escape(
            f"{ini}: [watcher:w]: tuner.levl: not a key")) as info:
        load_config(str(ini), strict=True)
    assert "(refused under strict mode)" in str(info.value)


def test_default_section_keys_are_not_judged_per_watcher(tmp_path: Path) -> None:
    """As for every other key: a [DEFAULT] value reaches every section and is not judged
    against each of them."""
    assert warnings_of(tmp_path, "[DEFAULT]\nflapping.max_rety = 1\n"
                                 "[watcher:w]\ncmd = sleep 1\n") == []


# -- the declarations -------------------------------------------------------------------------


def declaring_plugins() -> dict[str, PluginOptions]:
    found = {}
    for ep in entry_points(group="circus.plugins"):
        declared = getattr(ep.load(), "watcher_options", None)
        if declared is not None:
            found[ep.name] = declared
    return found


def test_bundled_declarations() -> None:
    declared = declaring_plugins()
    assert sorted(declared["flapping"]) == ["active", "attempts", "max_retry", "retry_in",
                                            "window"]
    assert sorted(declared["command_reloader"]) == ["watch"]


@pytest.mark.parametrize("name", sorted(declaring_plugins()))
def test_the_prefix_users_write_is_the_one_the_code_reads(name: str) -> None:
    """The entry point's name (what circusd checks) is the class's ``name`` (the prefix its
    code reads through ``watcher_view``), and its README lists every key it reads."""
    cls = next(ep.load() for ep in entry_points(group="circus.plugins") if ep.name == name)
    assert cls.name == name
    readme = (ROOT / "plugins" / name / "README.md").read_text()
    for key in cls.watcher_options:
        assert f"`{name}.{key}`" in readme


def test_a_plugin_cannot_read_an_undeclared_watcher_key() -> None:
    view = PluginOptions("watch").watcher_view(
        {"command_reloader.watch": "src", "command_reloader.other": "x", "cmd": "y"},
        "command_reloader")
    assert dict(view) == {"watch": "src"}
    with pytest.raises(UndeclaredOption):
        view.get("other")


def test_the_plugins_read_their_keys_through_the_declaration() -> None:
    """Every override field of the flapping plugin is declared (reading one that is not would
    raise), and each is applied from its prefixed key."""
    settings, problems = FlappingSettings().with_overrides({
        "flapping.attempts": "4", "flapping.window": "3", "flapping.retry_in": "1",
        "flapping.max_retry": "-1", "flapping.active": "false", "flapping.max_rety": "9"})
    assert problems == []
    assert settings == FlappingSettings(attempts=4, window=3.0, retry_in=1.0, max_retry=-1,
                                        active=False)
    assert reloader_settings.WATCH_KEY == "command_reloader.watch"
