"""The four distributions install side by side, build as wheels on their own, and expose the
bundled plugins by short name in the ``circus.plugins`` entry-point group."""

import inspect
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from circus.plugins import PluginCore

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = {
    "logger": "circus-plugin-logger",
    "statsd": "circus-plugin-statsd",
    "flapping": "circus-plugin-flapping",
}
FOLDERS = {"circus-core": "core", **{dist: f"plugins/{short}" for short, dist in BUNDLED.items()}}


@pytest.mark.parametrize(("short_name", "dist_name"), sorted(BUNDLED.items()))
def test_bundled_plugin_is_an_entry_point_that_loads_a_plugin_class(
    short_name: str, dist_name: str
) -> None:
    (ep,) = [ep for ep in entry_points(group="circus.plugins") if ep.name == short_name]
    assert ep.dist is not None
    assert ep.dist.name == dist_name
    cls = ep.load()
    assert inspect.isclass(cls)
    assert issubclass(cls, PluginCore)  # CircusPlugin or AsyncCircusPlugin
    assert cls.name == short_name


@pytest.mark.parametrize("dist_name", sorted(FOLDERS))
def test_distribution_builds_a_typed_wheel_on_its_own(dist_name: str, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT / FOLDERS[dist_name])],
        check=True,
    )
    (wheel,) = tmp_path.glob(f"{dist_name.replace('-', '_')}-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("/py.typed") for n in names), names
    if dist_name != "circus-core":
        (ep_file,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = zipfile.ZipFile(wheel).read(ep_file).decode()
        assert "[circus.plugins]" in text
