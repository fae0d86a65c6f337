#!/usr/bin/env python3
"""Set up and run the circus workspace with nothing but Python 3.11+ and pip.

    python3 dev.py demo   # circusd with demo/circus.ini (the bundled plugins, loaded by short name)
    python3 dev.py test   # ruff, mypy and the whole pytest suite

Both create ``.venv`` on first use and install every distribution of the workspace in editable
mode; later runs reuse it and reinstall only when a ``pyproject.toml`` or the dev requirements
changed (a stamp file records their hash). Extra arguments after ``test`` go to pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".circus-installed"
# core first, then every plugin distribution found under plugins/ (a new one needs no edit here)
DISTRIBUTIONS = [
    "core",
    *sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("plugins/*/pyproject.toml")),
]
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"
# The etsy statsd daemon the statsd plugin's tests talk to (see plugins/statsd/tests).
NODE_DIR = ROOT / ".cache" / "node"
NODE_PACKAGES = ["statsd@0.9.0"]


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(*argv: str | Path, check: bool = True, **kwargs: object) -> int:
    result = subprocess.run([str(a) for a in argv], check=False, **kwargs)  # type: ignore[call-overload]
    if check and result.returncode != 0:
        say(f"failed ({result.returncode}): {' '.join(map(str, argv))}")
        sys.exit(result.returncode)
    return int(result.returncode)


def inputs_digest() -> str:
    digest = hashlib.sha256()
    pyprojects = [ROOT / d / "pyproject.toml" for d in DISTRIBUTIONS]
    inputs = [ROOT / "dev.py", DEV_REQUIREMENTS, *pyprojects]
    for path in inputs:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create .venv if needed and install the workspace into it when its inputs changed."""
    if not (BIN / "python").exists():
        say(f"creating {VENV.relative_to(ROOT)}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    wanted = inputs_digest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    say("installing the workspace in editable mode (first run, or a pyproject changed)")
    pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    run(*pip, "install", "--upgrade", "pip>=24")
    editables = [arg for d in DISTRIBUTIONS for arg in ("-e", ROOT / d)]
    run(*pip, "install", *editables, "-r", DEV_REQUIREMENTS)
    STAMP.write_text(wanted)


def ensure_node_packages() -> None:
    """Install the npm packages some tests drive, when npm exists (else those tests fail in CI)."""
    if shutil.which("npm") is None:
        say("npm not found: tests that need the etsy statsd daemon will fail (skip with "
            "CIRCUS_REQUIRE_PARTS=0)")
        return
    marker = NODE_DIR / ".installed"
    if marker.exists() and marker.read_text() == " ".join(NODE_PACKAGES):
        return
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    say(f"installing {', '.join(NODE_PACKAGES)} into {NODE_DIR.relative_to(ROOT)}")
    code = run("npm", "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund", "--silent",
               *NODE_PACKAGES, check=False)
    if code == 0:
        marker.write_text(" ".join(NODE_PACKAGES))
    else:
        say("npm install failed: tests that need the etsy statsd daemon will fail (skip "
            "with CIRCUS_REQUIRE_PARTS=0)")


def _apt_get(*args: str) -> int:
    """One quiet, bounded apt-get run (10 minutes at most); its exit status, 1 on timeout."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        return subprocess.run(["apt-get", "-q", "-y", *args], check=False, env=env, timeout=600,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    except subprocess.TimeoutExpired:
        return 1


# Debian packages some tests drive for real: when one is missing they fail (CIRCUS_REQUIRE_PARTS,
# set by `test`), or skip with the reason under CIRCUS_REQUIRE_PARTS=0
DEBIAN_TOOLS = {
    "redis-server": ("redis-server", "redis_observer tests"),
    "tmux": ("tmux", "circus-top tests (ours and 0.19's, run in tmux)"),
    "chromium": ("chromium", "web dashboard browser tests (headless Chromium)"),
    "chromedriver": ("chromium-driver", "web dashboard browser tests (driven by selenium)"),
}


#: what happens to the tests of a tool that could not be installed
_MISSING = "will fail (CIRCUS_REQUIRE_PARTS=0 skips them instead)"


def ensure_debian_tools() -> None:
    """Install the Debian packages of :data:`DEBIAN_TOOLS` that are missing, when possible
    (root with apt-get)."""
    for command, (package, users) in DEBIAN_TOOLS.items():
        if shutil.which(command) is not None:
            continue
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            say(f"{command} not found (and not root with apt-get): {users} {_MISSING}")
            continue
        say(f"installing {package} (apt-get)")
        if _apt_get("install", package) != 0:
            _apt_get("update")  # the package lists may be missing or stale
            if _apt_get("install", package) != 0:
                say(f"apt-get install {package} failed: {users} {_MISSING}")


def cmd_test(extra: list[str]) -> int:
    ensure_venv()
    ensure_node_packages()
    ensure_debian_tools()
    env = dict(os.environ, CIRCUS_NODE_DIR=str(NODE_DIR))
    # CI runs this command: a test whose real part (etsy statsd, redis-server, the original
    # Circus) is missing fails instead of skipping. CIRCUS_REQUIRE_PARTS=0 relaxes it locally.
    env.setdefault("CIRCUS_REQUIRE_PARTS", "1")
    say("ruff check")
    run(BIN / "ruff", "check", ROOT, cwd=ROOT)
    say("mypy (strict)")
    run(BIN / "mypy", cwd=ROOT)
    say("pytest")
    return run(BIN / "python", "-m", "pytest", *extra, cwd=ROOT, env=env, check=False)


def cmd_demo(extra: list[str]) -> int:
    """circusd with demo/circus.ini in the foreground; what to look at is in demo/README.md."""
    ensure_venv()
    demo = ROOT / "demo"
    say("starting circusd with demo/circus.ini (Ctrl-C stops it and every child)")
    say("watch demo/events.log, the 'statsd <-' lines below, and `circusctl status`")
    os.chdir(demo)
    circusd = str(BIN / "circusd")
    os.execv(circusd, [circusd, *extra, "circus.ini"])


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - the one place an old interpreter may run
        print("circus needs Python 3.11 or newer", file=sys.stderr)
        return 1
    commands = {"test": cmd_test, "demo": cmd_demo}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
