"""Mistakes 0.19 ignores are caught: unknown keys warned ("did you mean"), refused when strict;
unknown section types and malformed headers are errors naming the section meant."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from circus.config import load_config
from circus.errors import ConfigError


def write(folder: Path, text: str, name: str = "circus.ini") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_unknown_watcher_keys_warn_with_a_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [watcher:web]
        cmd = sleep 60
        numprocess = 3
        respwan = false
        check_dealy = 2
        flapping.max_retry = 7
        zzzz = 1
        """,
    )
    config = load_config(path)
    (web,) = config.watchers
    assert web.numprocesses == 1  # the typo is kept as a free-form option, as 0.19 does
    assert web.extra["numprocess"] == "3"
    found = {w.key: str(w) for w in config.warnings}
    assert set(found) == {"numprocess", "respwan", "check_dealy", "zzzz"}  # not flapping.*
    assert found["numprocess"] == (
        f"{path}: [watcher:web]: numprocess: unknown option; did you mean 'numprocesses'? "
        "(kept as a free-form option, as 0.19 does)"
    )
    assert "did you mean 'respawn'?" in found["respwan"]
    assert "did you mean 'check_flapping'" not in found["check_dealy"]
    assert "did you mean" not in found["zzzz"]


def test_unknown_circus_keys_warn(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [circus]
        check_dealy = 2
        statsd_close_outputs = true
        [watcher:w]
        cmd = w
        """,
    )
    found = {w.key: str(w) for w in load_config(path).warnings}
    assert "did you mean 'check_delay'? (ignored)" in found["check_dealy"]
    assert "0.19 does not read it from a config file either" in found["statsd_close_outputs"]


def test_keys_from_default_are_not_judged_in_every_section(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\nnumprocesses = 2\n[circus]\n[watcher:w]\ncmd = w\n")
    config = load_config(path)
    assert config.watchers[0].numprocesses == 2
    assert config.warnings == []


def test_keys_of_an_included_file_name_that_file(tmp_path: Path) -> None:
    other = write(tmp_path, "[watcher:w]\nnumprocess = 2\n", "other.ini")
    path = write(tmp_path, "[circus]\ninclude = other.ini\n[watcher:w]\ncmd = w\n")
    (warning,) = load_config(path).warnings
    assert warning.path == str(other)


@pytest.mark.parametrize("how", ["argument", "setting"])
def test_strict_refuses_unknown_keys(tmp_path: Path, how: str) -> None:
    setting = "strict = true\n" if how == "setting" else ""
    path = write(tmp_path, f"[circus]\n{setting}[watcher:w]\ncmd = w\nnumprocess = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, strict=how == "argument")
    assert str(info.value) == (
        f"{path}: [watcher:w]: numprocess: unknown option; did you mean 'numprocesses'? "
        "(kept as a free-form option, as 0.19 does) (refused under strict mode)"
    )
    assert load_config(write(tmp_path, "[circus]\nstrict = true\n[watcher:w]\ncmd = w\n"))


@pytest.mark.parametrize(
    ("section", "meant"),
    [
        ("wacher:web", "watcher:web"),
        ("Watcher:web", "watcher:web"),
        ("plugins:flap", "plugin:flap"),
        ("sockett:web", "socket:web"),
        ("circs", "circus"),
        ("evn", "env"),
    ],
)
def test_unknown_section_type_names_the_section_meant(
    tmp_path: Path, section: str, meant: str
) -> None:
    path = write(tmp_path, f"[watcher:ok]\ncmd = ok\n[{section}]\ncmd = sleep 60\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(
        f"{path}: [{section}]: unknown section type; did you mean [{meant}]?"
    )


def test_unrelated_section_warns_only(tmp_path: Path) -> None:
    path = write(tmp_path, "[tool-settings]\nx = 1\n[watcher:w]\ncmd = w\n")
    (warning,) = load_config(path).warnings
    assert warning.section == "tool-settings"
    assert "unknown section type, ignored" in str(warning)
    with pytest.raises(ConfigError):
        load_config(path, strict=True)


def test_malformed_header_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[watcher:ok]\ncmd = ok\n[watcher:web\ncmd = sleep 60\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: line 3: malformed section header '[watcher:web': missing ']'? "
        "(meant [watcher:web]?)"
    )


def test_text_after_a_header(tmp_path: Path) -> None:
    path = write(tmp_path, "[watcher:w] # web\ncmd = w\n[watcher:v] oops\ncmd = v\n")
    config = load_config(path)
    assert [w.name for w in config.watchers] == ["v", "w"]  # 0.19 reads both headers too
    (warning,) = config.warnings
    assert warning.section == "watcher:v"
    assert "line 3: text after the section header ignored: 'oops'" in str(warning)


PLUGIN_MODULE = '''
from typing import Any, ClassVar
from circus.plugins import CircusPlugin

class Declared(CircusPlugin):
    config_options: ClassVar[frozenset[str]] = frozenset({"interval", "target"})
    def handle_recv(self, data: Any) -> None: ...

class Undeclared(CircusPlugin):
    def handle_recv(self, data: Any) -> None: ...
'''


def test_plugin_keys_are_judged_only_when_the_plugin_declares_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x2_declaring_plugin.py").write_text(PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write(
        tmp_path,
        """\
        [plugin:a]
        use = x2_declaring_plugin.Declared
        interval = 3
        intervall = 4
        graceful_timeout = 2
        active = true
        queue_size = 500
        topics = watcher.web.*
        [plugin:b]
        use = x2_declaring_plugin.Undeclared
        anything = 1
        """,
    )
    config = load_config(path)
    (warning,) = config.warnings
    assert str(warning) == (
        f"{path}: [plugin:a]: intervall: unknown option; did you mean 'interval'? (not an option "
        "the plugin declares; passed to it anyway, as 0.19 does)"
    )
    (a,) = [p for p in config.plugins if p.name == "plugin:a"]
    assert a.options["intervall"] == "4"
    with pytest.raises(ConfigError, match="intervall"):
        load_config(path, strict=True)


def test_the_flapping_plugin_declares_its_options(tmp_path: Path) -> None:
    path = write(tmp_path, "[plugin:f]\nuse = flapping\nattempts = 2\natempts = 3\n")
    (warning,) = load_config(path).warnings
    assert (warning.section, warning.key) == ("plugin:f", "atempts")
    assert "did you mean 'attempts'?" in str(warning)
