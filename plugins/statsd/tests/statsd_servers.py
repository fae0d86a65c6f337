"""Test servers for the statsd plugin: a plain UDP receiver and the real etsy statsd daemon.

The etsy daemon (npm ``statsd`` 0.9.x, installed by ``python3 dev.py`` into ``.cache/node``, found
through ``CIRCUS_NODE_DIR``) listens on loopback ports chosen here, logs every line it receives
(``dumpMessages``) and answers its management port's ``counters``/``gauges`` commands, which is
how the tests read what the daemon understood (not just what was sent).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from circus.testing import terminate

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 20.0
READY_BUCKET = "circus_test.ready"


def node_dir() -> Path:
    return Path(os.environ.get("CIRCUS_NODE_DIR", ROOT / ".cache" / "node"))


def free_port(kind: int) -> int:
    """A loopback port that was free a moment ago (the daemon binds it right after)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UdpReceiver:
    """A UDP socket on 127.0.0.1 that returns the datagrams it receives, with a deadline."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])

    def lines(self, count: int, timeout: float = TIMEOUT) -> list[str]:
        """Exactly the next ``count`` datagrams (decoded), or fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        out: list[str] = []
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {len(out)} of {count} datagrams: {out}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            out.append(data.decode("ascii"))
        return out

    def nothing_more(self, wait: float = 0.3) -> list[str]:
        """Datagrams still arriving within ``wait`` seconds (expected: none)."""
        self.sock.settimeout(wait)
        extra: list[str] = []
        with contextlib.suppress(TimeoutError):
            while True:
                extra.append(self.sock.recv(65535).decode("ascii"))
        return extra

    def close(self) -> None:
        self.sock.close()


_ENTRY = re.compile(r"'([^']+)':\s*(-?[0-9.eE+]+)")


@dataclass
class EtsyStatsd:
    """A running etsy statsd daemon on loopback ports."""

    proc: subprocess.Popen[str]
    port: int
    mgmt_port: int
    output: list[str] = field(default_factory=list)

    def admin(self, command: str) -> dict[str, float]:
        """Ask the management port (``counters``/``gauges``) and parse its util.inspect dump."""
        with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=TIMEOUT) as conn:
            conn.sendall(command.encode() + b"\n")
            buf = b""
            while not buf.rstrip().endswith(b"END"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return {k: float(v) for k, v in _ENTRY.findall(buf.decode())}

    def wait_for(
        self, command: str, check: Callable[[dict[str, float]], bool], timeout: float = TIMEOUT
    ) -> dict[str, float]:
        """Poll the management port until ``check`` holds (bounded); return the last answer."""
        deadline = time.monotonic() + timeout
        seen: dict[str, float] = {}
        while True:
            with contextlib.suppress(ConnectionRefusedError):  # listens just after "server is up"
                seen = self.admin(command)
                if check(seen):
                    return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"statsd {command} never matched; last: {seen}; "
                                     f"output: {self.output}")
            time.sleep(0.05)

    def received_lines(self) -> list[str]:
        """The metric lines the daemon logged (``dumpMessages``), in arrival order."""
        lines = [line.split("DEBUG: ", 1)[1] for line in list(self.output) if "DEBUG: " in line]
        return [line for line in lines if not line.startswith(READY_BUCKET)]

    def wait_ready(self) -> None:
        """Send a probe until the daemon counts it: "server is up" precedes the UDP bind."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:

            def counted(counters: dict[str, float]) -> bool:
                probe.sendto(f"{READY_BUCKET}:1|c".encode(), ("127.0.0.1", self.port))
                return READY_BUCKET in counters

            self.wait_for("counters", counted)


class EtsyUnavailable(Exception):
    """node or the statsd package is missing: the caller skips with this message."""


@contextlib.contextmanager
def run_etsy_statsd(tmp_path: Path) -> Iterator[EtsyStatsd]:
    """Start the daemon on free loopback ports, wait for "server is up", stop it by pid."""
    node = shutil.which("node")
    script = node_dir() / "node_modules" / "statsd" / "bin" / "statsd"
    if node is None:
        raise EtsyUnavailable("node is not installed: cannot run the etsy statsd daemon")
    if not script.exists():
        raise EtsyUnavailable(f"etsy statsd not installed at {script} (run `python3 dev.py test`)")
    port, mgmt = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    config = {
        "address": "127.0.0.1",
        "port": port,
        "mgmt_address": "127.0.0.1",
        "mgmt_port": mgmt,
        "backends": [],
        "dumpMessages": True,
        "flushInterval": 3_600_000,  # never flush during a test: counters stay readable
        "deleteCounters": False,
    }
    conf = tmp_path / "statsd-config.js"
    conf.write_text(f"({json.dumps(config)})\n")
    proc = subprocess.Popen(
        [node, str(script), str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    daemon = EtsyStatsd(proc, port, mgmt)
    up = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            daemon.output.append(line.rstrip("\n"))
            if "server is up" in line:
                up.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not up.wait(TIMEOUT):
            raise AssertionError(f"etsy statsd did not start: {daemon.output}")
        daemon.wait_ready()
        yield daemon
    finally:
        terminate(proc, TIMEOUT)
        reader.join(TIMEOUT)
