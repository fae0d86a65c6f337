"""The four distributions install side by side, build as wheels on their own, and expose the
bundled plugins by short name in the ``circus.plugins`` entry-point group."""

import inspect
import subprocess
import sys
import time
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from support import kill_tree

from circus.plugins import PluginCore
from circus.transports import CommandClient

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = {
    "logger": "circus-plugin-logger",
    "statsd": "circus-plugin-statsd",
    "flapping": "circus-plugin-flapping",
    "http_observer": "circus-plugin-http-observer",
    "redis_observer": "circus-plugin-redis-observer",
    "notify": "circus-plugin-notify",
    "watchdog": "circus-plugin-watchdog",
    "resource_watcher": "circus-plugin-resource-watcher",
    "command_reloader": "circus-plugin-command-reloader",
    "autoscale": "circus-plugin-autoscale",
    "prometheus": "circus-plugin-prometheus",
    "web": "circus-plugin-web",
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


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every distribution built as a wheel from its own folder, in one pip run (one start of
    pip instead of thirteen: each project is still built alone, without the others' files)."""
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), *(str(ROOT / folder) for folder in FOLDERS.values())],
        check=True, timeout=600,
    )
    return out


@pytest.mark.parametrize("dist_name", sorted(FOLDERS))
def test_distribution_builds_a_typed_wheel_on_its_own(dist_name: str, wheels: Path) -> None:
    (wheel,) = wheels.glob(f"{dist_name.replace('-', '_')}-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("/py.typed") for n in names), names
    if dist_name != "circus-core":
        (ep_file,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = zipfile.ZipFile(wheel).read(ep_file).decode()
        assert "[circus.plugins]" in text


def test_one_plugin_distribution_alone_is_found_by_short_name(tmp_path: Path) -> None:
    """A fresh venv with circus-core and only circus-plugin-statsd: the runner lists exactly
    that plugin, and circusd starts `use = statsd` as a supervised watcher."""
    env_dir = tmp_path / "venv"
    # no pip of its own (ensurepip takes seconds): this interpreter's pip installs into it
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True,
                   timeout=120)
    python = env_dir / "bin" / "python"
    for folder in ("core", "plugins/statsd"):  # one at a time, as a user would
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                        "--disable-pip-version-check", str(ROOT / folder)],
                       check=True, timeout=600)
    listing = subprocess.run([str(env_dir / "bin" / "circus-plugin"), "--list"],
                             check=True, capture_output=True, text=True, timeout=60).stdout
    assert [line.split()[0] for line in listing.splitlines()[1:]] == ["statsd"], listing

    run = tmp_path / "run"
    run.mkdir()
    endpoint = f"ipc://{run}/c.sock"
    (run / "circus.ini").write_text(
        f"[circus]\nendpoint = {endpoint}\npubsub_endpoint = ipc://{run}/e.sock\n"
        "[watcher:w]\ncmd = sleep 60\n[plugin:statsd]\nuse = statsd\nport = 18199\n"
    )
    daemon = subprocess.Popen([str(env_dir / "bin" / "circusd"), str(run / "circus.ini")],
                              cwd=run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with CommandClient(endpoint, timeout=20) as client:
            deadline = time.monotonic() + 30
            while True:
                reply = client.call("list", name="plugin:statsd")
                if reply.get("pids") or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert reply["status"] == "ok", reply
            assert len(reply["pids"]) == 1, reply
            assert client.call("status", name="plugin:statsd")["status"] == "active"
            client.call("quit", waiting=True)
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            kill_tree(daemon.pid)
            daemon.wait(timeout=10)
