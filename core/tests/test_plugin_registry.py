"""The plugin registry against real distribution metadata (dist-info folders on sys.path)."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from circus.errors import ConfigError
from circus.plugins import registry
from circus.plugins.registry import PluginConflict, PluginLoadError, PluginNotFound

PLUGIN_SOURCE = '''
from circus.plugins import CircusPlugin
from circus.errors import ConfigError

class Good(CircusPlugin):
    name = "good"
    def __init__(self, filename, **kwargs):
        super().__init__(**kwargs)
        self.filename = filename
    @classmethod
    def check_config(cls, config):
        if config.get("filename") == "/forbidden":
            raise ConfigError("forbidden file", key="filename")
    def handle_recv(self, data):
        pass

class Outer:
    class Inner(CircusPlugin):
        pass

NOT_A_CLASS = 3
'''


def make_dist(root: Path, dist: str, version: str, entries: dict[str, str]) -> None:
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {value}" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[circus.plugins]\n{lines}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake site-packages with two plugin modules and three distributions."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "h4_goodplug.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    (root / "h4_badplug.py").write_text("raise ImportError('missing native library')\n")
    make_dist(root, "h4-good", "1.2.3", {"h4good": "h4_goodplug:Good"})
    make_dist(root, "h4-bad", "0.1", {"h4bad": "h4_badplug:Bad"})
    make_dist(root, "h4-twin-a", "1.0", {"h4twin": "h4_goodplug:Good"})
    make_dist(root, "h4-twin-b", "2.0", {"h4twin": "h4_goodplug:Outer.Inner"})
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    yield root
    for module in ("h4_goodplug", "h4_badplug"):
        sys.modules.pop(module, None)


def test_short_name_resolves_with_its_distribution(site: Path) -> None:
    spec = registry.resolve("h4good")
    assert (spec.name, spec.class_path, spec.dist_name, spec.version) == (
        "h4good", "h4_goodplug:Good", "h4-good", "1.2.3")
    assert spec.load().__name__ == "Good"


@pytest.mark.parametrize("use", ["h4_goodplug.Good", "h4_goodplug:Good", " h4_goodplug.Good "])
def test_dotted_paths(site: Path, use: str) -> None:
    assert registry.resolve(use).load().__name__ == "Good"


def test_nested_class_paths(site: Path) -> None:
    assert registry.resolve("h4_goodplug.Outer.Inner").load().__name__ == "Inner"
    assert registry.resolve("h4_goodplug:Outer.Inner").load().__name__ == "Inner"


def test_unknown_short_name_lists_installed_and_suggests(site: Path) -> None:
    with pytest.raises(PluginNotFound) as info:
        registry.resolve("h4god")
    message = str(info.value)
    assert "unknown plugin 'h4god'" in message
    assert "h4good" in message
    assert "h4bad" in message
    assert "did you mean 'h4good'?" in message


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        ("h4_nope.Thing", "no module named 'h4_nope'"),
        ("h4_goodplug.Missing", "has no attribute 'Missing'"),
        ("h4_goodplug:Outer.Nope", "has no attribute 'Outer.Nope'"),
        ("a..b", "not a dotted path"),
        ("", "empty plugin name"),
    ],
)
def test_bad_dotted_paths(site: Path, use: str, expected: str) -> None:
    with pytest.raises(PluginNotFound, match=expected):
        registry.resolve(use)


def test_not_a_class(site: Path) -> None:
    with pytest.raises(PluginLoadError, match="not a class"):
        registry.resolve("h4_goodplug.NOT_A_CLASS")


def test_broken_entry_point_is_reported_and_does_not_hide_the_others(site: Path) -> None:
    with pytest.raises(PluginLoadError, match="missing native library"):
        registry.resolve("h4bad")
    infos = {info.name: info for info in registry.installed()}
    assert infos["h4good"].error is None
    assert infos["h4good"].dist_name == "h4-good"
    assert "missing native library" in (infos["h4bad"].error or "")


def test_two_distributions_claiming_one_name(site: Path) -> None:
    with pytest.raises(PluginConflict) as info:
        registry.resolve("h4twin")
    assert "h4-twin-a" in str(info.value)
    assert "h4-twin-b" in str(info.value)
    twins = [i for i in registry.installed() if i.name == "h4twin"]
    assert len(twins) == 2
    assert all(i.error and "several distributions" in i.error for i in twins)


def test_check_options(site: Path) -> None:
    spec = registry.resolve("h4good")
    spec.check_options({"filename": "/tmp/x", "name": "plugin:x", "anything": "goes"})
    with pytest.raises(ConfigError, match="filename"):
        spec.check_options({})
    with pytest.raises(ConfigError, match="forbidden file"):
        spec.check_options({"filename": "/forbidden"})
