"""``circus-plugin new``: the project it writes installs in a fresh venv and its tests pass.

The fresh venv (made without a pip of its own: the running interpreter's pip installs into it
with ``--python``) gets circus-core from this repository (pip may use its wheel cache) and the
new project with ``pip install -e``; its tests then run in that venv, with the fixtures circus-core
registers for pytest, against a real circusd.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from circus.plugins.scaffold import class_name, scaffold

CORE = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT = 600


def new(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "circus.plugins.runner", "new", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_new_refuses_bad_names_and_existing_directories(tmp_path: Path) -> None:
    bad = new("9lives", "--dir", str(tmp_path))
    assert bad.returncode == 1
    assert "invalid plugin name '9lives'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert new("ok_name", "--dir", str(tmp_path)).returncode == 0
    again = new("ok_name", "--dir", str(tmp_path))
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert class_name("ok_name") == "OkNamePlugin"


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_new_project_installs_in_a_fresh_venv_and_its_tests_pass(
    tmp_path: Path, flavour: str
) -> None:
    root = scaffold("hello_kit", tmp_path, asynchronous=flavour == "async")
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "src/circus_plugin_hello_kit/__init__.py",
        "src/circus_plugin_hello_kit/plugin.py", "src/circus_plugin_hello_kit/py.typed",
        "tests/test_plugin.py",
    ]
    venv = tmp_path / "venv"
    # no pip of its own (ensurepip takes seconds): this interpreter's pip installs into it
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "--disable-pip-version-check", str(CORE), "-e", f"{root}[test]"],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    # the entry point is installed: the runner finds the plugin by its short name
    listing = subprocess.run([str(venv / "bin" / "circus-plugin"), "--list"],
                             capture_output=True, text=True, timeout=60, env=env, check=False)
    assert "hello_kit" in listing.stdout
    assert "circus_plugin_hello_kit.plugin:HelloKitPlugin" in listing.stdout
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=root, capture_output=True, text=True, timeout=300, env=env,
                           check=False)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "2 passed" in tests.stdout
