"""Which changes restart which watcher, on real files in a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from circus.errors import ConfigError
from circus_plugin_command_reloader.settings import ReloaderSettings, split_paths
from circus_plugin_command_reloader.targets import Targets, executable


def replace(path: Path, text: str) -> None:
    """What a deploy does: write a new file, rename it over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_executable_is_the_first_word_of_cmd(tmp_path: Path) -> None:
    script = tmp_path / "app.sh"
    script.write_text("exit 0\n")
    assert executable(f"{script} --port 80") == str(script)  # 0.19 failed on arguments (B8)
    assert executable("./app.sh -v", working_dir=str(tmp_path)) == str(script)
    assert executable("sh -c 'exit 1'") == os.path.abspath(str(__import__("shutil").which("sh")))
    assert executable("no-such-program-here") is None
    assert executable("") is None


def test_a_replaced_file_restarts_its_watcher_once(tmp_path: Path) -> None:
    app, other = tmp_path / "app", tmp_path / "other"
    app.write_text("v1")
    other.write_text("v1")
    targets = Targets()
    targets.define("web", [str(app)], [])
    targets.define("api", [str(other)], [])
    assert targets.directories() == ({str(tmp_path)}, set())
    replace(app, "v2")
    events = {str(app), str(app) + ".new"}
    assert targets.changed(events) == ["web"]
    assert targets.changed(events) == []  # the same change reported again: no second restart
    assert targets.changed({str(tmp_path / "unrelated")}) == []


def test_a_removed_file_waits_for_its_replacement(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.write_text("v1")
    targets = Targets()
    targets.define("web", [str(app)], [])
    app.unlink()
    assert targets.changed({str(app)}) == []
    app.write_text("v2")
    assert targets.changed({str(app)}) == ["web"]


def test_a_repointed_symlink_is_a_change(tmp_path: Path) -> None:
    (tmp_path / "r1").mkdir()
    (tmp_path / "r2").mkdir()
    (tmp_path / "r1" / "app").write_text("same")
    (tmp_path / "r2" / "app").write_text("same")
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "r1" / "app")
    targets = Targets()
    targets.define("web", [str(link)], [])
    flat, _ = targets.directories()
    assert flat == {str(tmp_path), str(tmp_path / "r1")}
    tmp_link = tmp_path / "current.new"
    tmp_link.symlink_to(tmp_path / "r2" / "app")
    os.replace(tmp_link, link)
    assert targets.changed({str(link)}) == ["web"]


def test_anything_under_a_watched_directory(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "sub").mkdir(parents=True)
    targets = Targets()
    targets.define("web", [], [str(conf)])
    assert targets.directories() == (set(), {str(conf)})
    assert targets.changed({str(conf / "sub" / "x.ini")}) == ["web"]
    assert targets.changed({str(tmp_path / "elsewhere")}) == []
    targets.remove("web")
    assert targets.changed({str(conf / "sub" / "x.ini")}) == []


def test_settings() -> None:
    assert ReloaderSettings.from_config({}).loop_rate == 1.0
    assert ReloaderSettings.from_config({"loop_rate": "0.5"}).loop_rate == 0.5  # 0.19: 0 (B8)
    assert ReloaderSettings.from_config({"force_polling": "yes"}).force_polling
    assert ReloaderSettings.from_config({"settle": "0.2"}).settle == 0.2
    assert split_paths("a.py, conf  b.ini") == ["a.py", "conf", "b.ini"]
    for key, value in (("loop_rate", "0"), ("force_polling", "maybe"), ("watchers", "(["),
                       ("settle", "0")):
        with pytest.raises(ConfigError) as info:
            ReloaderSettings.from_config({key: value})
        assert info.value.key == key


def test_a_refresh_keeps_the_reference_version(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.write_text("v1")
    targets = Targets()
    targets.define("web", [str(app)], [])
    replace(app, "v2")
    targets.define("web", [str(app)], [])  # e.g. an `updated` event read the options again
    assert targets.changed({str(app)}) == ["web"]
