"""The ORIGINAL Circus 0.19, installed from PyPI into its own virtual environment.

Interoperability tests and benchmarks run the original ``circusd``/``circusctl``/plugin runner next
to ours. The original cannot share our venv (it would shadow the ``circus`` package), so it lives
in ``.cache/circus-0.19`` (an ignored folder). Building it takes a few seconds; it is reused while
its marker file matches the pinned requirements, and a file lock keeps concurrent test runs from
building it twice at the same time.

The pins are the combination the wire contract was verified with (Python 3.11): the 0.19 release
declares no upper bounds, and tornado/pyzmq releases newer than these are untested with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import zmq

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / ".cache"
VENV_DIR = CACHE_DIR / "circus-0.19"
REQUIREMENTS = ("circus==0.19.0", "pyzmq==27.3.*", "tornado==6.6.*", "psutil==7.2.*")
MARKER = "circus-interop.json"
INSTALL_TIMEOUT = 600.0
LOCK_TIMEOUT = 900.0

# The original's plugin runner has no console script: circusd runs this very command line.
ORIGINAL_RUNNER_CODE = "from circus import plugins;plugins.main()"
PROBE_CODE = "import circus, zmq, tornado, psutil; print(circus.__version__)"


class OriginalCircusUnavailable(RuntimeError):
    """The original Circus could not be installed (no registry access, build failure, ...)."""


@dataclass(frozen=True)
class OriginalCircus:
    """Paths of an installed original Circus 0.19."""

    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def circusd(self) -> Path:
        return self.venv / "bin" / "circusd"

    @property
    def circusctl(self) -> Path:
        return self.venv / "bin" / "circusctl"

    def runner_command(self) -> list[str]:
        """The original plugin runner (``circus.plugins.main``) as an argument vector prefix."""
        return [str(self.python), "-c", ORIGINAL_RUNNER_CODE]


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """An exclusive ``flock``, so two pytest processes never build the same venv at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not lock {path} within {timeout:.0f} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _is_valid(venv: Path) -> bool:
    """True when the venv was completed with the current pins and still imports."""
    marker = venv / MARKER
    installed = OriginalCircus(venv)
    if not (marker.is_file() and installed.circusd.is_file() and installed.circusctl.is_file()):
        return False
    if not _shebang_ok(installed.circusd):
        return False  # built through a path that no longer exists (a removed worktree)
    try:
        if json.loads(marker.read_text()).get("requirements") != list(REQUIREMENTS):
            return False
        # without PYTHONPATH: one pointing at our circus (a worktree's checks) would make the
        # probe import ours, and the shared install would be rebuilt under running tests
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        probe = subprocess.run(
            [str(installed.python), "-c", PROBE_CODE],
            capture_output=True, text=True, timeout=60, check=False, env=clean,
        )
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "0.19.0"


def _shebang_ok(script: Path) -> bool:
    """A console script runs only while the interpreter named on its first line exists."""
    try:
        first = script.read_bytes().split(b"\n", 1)[0]
    except OSError:
        return False
    return first.startswith(b"#!") and Path(first[2:].decode().split()[0]).exists()


def _build(venv: Path) -> None:
    # Build through the real path: scripts embed it, and a worktree's .cache is often a
    # symlink into another checkout that outlives the worktree.
    venv = venv.parent.resolve() / venv.name
    if venv.exists():
        shutil.rmtree(venv)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "-q", *REQUIREMENTS],
    ]
    for step in steps:
        try:
            done = subprocess.run(
                step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise OriginalCircusUnavailable(f"timed out: {' '.join(step)}") from exc
        if done.returncode != 0:
            raise OriginalCircusUnavailable(
                f"{' '.join(step)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
    (venv / MARKER).write_text(json.dumps({"requirements": list(REQUIREMENTS)}))


def ensure_original_circus(venv: Path = VENV_DIR) -> OriginalCircus:
    """Return the original Circus 0.19, installing it first when missing or stale."""
    with _file_lock(venv.parent / f"{venv.name}.lock", LOCK_TIMEOUT):
        if not _is_valid(venv):
            _build(venv)
            if not _is_valid(venv):
                raise OriginalCircusUnavailable(f"{venv} was built but does not import circus 0.19")
    return OriginalCircus(venv)


def ping(endpoint: str, timeout: float, command: str = "status") -> dict[str, object] | None:
    """One call on a fresh DEALER; the reply, or None when none came in time.

    A fresh socket per probe keeps a late reply to an earlier probe from being mistaken for this
    one; ids are checked anyway.
    """
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
    try:
        sock.connect(endpoint)
        msg_id = uuid.uuid4().hex
        sock.send(json.dumps({"id": msg_id, "command": command, "properties": {}}).encode())
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000) + 1):
                return None
            reply = json.loads(sock.recv())
            if isinstance(reply, dict) and reply.get("id") == msg_id:
                return reply
        return None
    finally:
        sock.close(0)


@dataclass
class OriginalDaemon:
    """A running original circusd (started by :func:`start_original_circusd`)."""

    installed: OriginalCircus
    process: subprocess.Popen[bytes]
    config_path: Path
    log_path: Path
    endpoint: str
    pubsub_endpoint: str
    _known_children: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.process.pid

    def circusctl(
        self, *args: str, timeout: float = 30.0, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the ORIGINAL circusctl against this daemon."""
        return run_original_circusctl(
            self.installed, self.endpoint, *args, timeout=timeout, env=env
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def remember_children(self) -> None:
        """Record the daemon's descendants so teardown can end them even if circusd dies first."""
        with contextlib.suppress(psutil.Error):
            self._known_children.update(
                child.pid for child in psutil.Process(self.pid).children(recursive=True)
            )

    def stop(self, timeout: float = 20.0) -> None:
        """``quit``, then SIGKILL the daemon and any child left, by pid.

        0.19 turns SIGTERM into a ``quit`` that is silently dropped when it collides with the
        periodic tick (lock conflict, contract C3), so ``quit`` is sent on the control channel
        and repeated while it is rejected; SIGTERM is only the fallback.
        """
        self.remember_children()
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            reply = ping(self.endpoint, timeout=2.0, command="quit")
            if reply is not None and reply.get("status") != "error":
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        if self.process.poll() is None:
            try:
                self.process.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(10)
        for pid in sorted(self._known_children):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                proc.kill()
                proc.wait(5)


def _circus_section(options: Mapping[str, object]) -> str:
    return "[circus]\n" + "".join(f"{key} = {value}\n" for key, value in options.items())


def start_original_circusd(
    installed: OriginalCircus,
    directory: Path,
    config_text: str = "",
    *,
    circus_options: Mapping[str, object] | None = None,
    startup_timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> OriginalDaemon:
    """Start the original circusd on ``ipc://`` endpoints in ``directory``; wait until it answers.

    ``config_text`` holds the other sections (``[watcher:x]``, ``[plugin:y]``...). The ``[circus]``
    section is generated: control/pubsub endpoints in ``directory``, multicast discovery
    disabled (an address outside the multicast range makes 0.19 skip its UDP socket on 0.0.0.0),
    no circusd-stats (0.19 starts it whenever ``stats_endpoint`` is set), plus ``circus_options``
    (e.g. ``{"check_delay": 1}``). ``env`` is added to this process's environment for circusd
    (0.19 exports circusd's ``sys.path`` to plugins, so ``PYTHONPATH`` here reaches them).
    """
    if "[circus]" in config_text:
        raise ValueError("pass [circus] settings as circus_options, not in config_text")
    directory.mkdir(parents=True, exist_ok=True)
    options: dict[str, object] = {
        "endpoint": f"ipc://{directory}/control.sock",
        "pubsub_endpoint": f"ipc://{directory}/pubsub.sock",
        "multicast_endpoint": "udp://127.0.0.1:12027",
        "statsd": "false",
    }
    options.update(circus_options or {})
    config_path = directory / "circus.ini"
    config_path.write_text(_circus_section(options) + "\n" + config_text)
    log_path = directory / "circusd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(installed.circusd), str(config_path)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=directory, start_new_session=True, env={**os.environ, **(env or {})},
        )
    daemon = OriginalDaemon(
        installed=installed, process=process, config_path=config_path, log_path=log_path,
        endpoint=str(options["endpoint"]), pubsub_endpoint=str(options["pubsub_endpoint"]),
    )
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"original circusd exited with {process.returncode}:\n{daemon.log()}"
            )
        if ping(daemon.endpoint, timeout=min(1.0, max(0.05, deadline - time.monotonic()))):
            daemon.remember_children()
            return daemon
    daemon.stop()
    raise RuntimeError(
        f"original circusd did not answer within {startup_timeout} s:\n{daemon.log()}"
    )


def run_original_circusctl(
    installed: OriginalCircus,
    endpoint: str,
    *args: str,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the original circusctl (``--endpoint`` given) and capture its text output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(installed.circusctl), "--endpoint", endpoint, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
        stdin=subprocess.DEVNULL, env=full_env,
    )
