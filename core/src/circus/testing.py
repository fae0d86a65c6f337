"""Helpers to test plugins (and anything else) against a real circusd; shipped in circus-core.

What a plugin author's tests need, and nothing of this repository's own plumbing (its /proc and
wire-protocol helpers live in its test tree, ``tests/support``):

* :class:`CircusdProcess` writes a config with ``ipc://`` endpoints in a temporary directory,
  starts ``circusd`` as a subprocess, waits (bounded) until it answers ``status``, and in
  teardown sends ``quit``, then kills by pid whatever is left (circusd and any child it leaked),
  reporting leaks (:class:`CircusdError`). :func:`start_circusd` is the same without ``with``.
* :class:`EventCollector` subscribes to the event channel and waits for events matching a
  predicate (``wait_ready`` first, against ZeroMQ's slow-joiner effect).
* :func:`run_plugin` runs a plugin in its own process through ``circus-plugin``, as circusd
  does, against any daemon (the original 0.19 too); :func:`terminate` ends such a helper process
  (SIGTERM, then SIGKILL), e.g. a server the plugin talks to.
* :func:`wait_until` polls a condition with a deadline; :func:`log_count` counts lines of
  circusd's log (with ``debug = true`` its plugins' lines too); :func:`free_port` finds a
  loopback port for a server the test starts.
* :func:`missing_part` skips a test whose real part (a server, a tool) is not installed, or
  fails it when ``CIRCUS_REQUIRE_PARTS`` is set, as in CI (:func:`parts_required`).

The pytest fixtures over these (``circusd``, ``circus_plugin``, ``circus_events``,
``plugin_harness``) are in :mod:`circus.plugins.pytest_plugin`. Example::

    import os, signal
    from circus.testing import CircusdProcess, EventCollector

    def test_respawn(tmp_path):
        with CircusdProcess("[watcher:w]\\ncmd = sleep 60\\n", tmp_path) as daemon:
            with EventCollector(daemon.pubsub_endpoint) as events:
                events.wait_ready(daemon, "w")  # the subscription is live from here on
                pid = daemon.call("list", name="w")["pids"][0]
                os.kill(pid, signal.SIGKILL)
                _, reap = events.wait_for(lambda t, p: t == "watcher.w.reap")
                assert reap["exit_code"] == -9 and reap["expected"] is False
                events.wait_for(lambda t, p: t == "watcher.w.spawn")
                assert daemon.call("list", name="w")["pids"] != [pid]

Plugin authors: put ``[plugin:NAME]`` sections in the config text as in production; circusd
starts the plugin with its runner, and ``daemon.log_text()`` holds circusd's output (with
``debug = true`` in ``[circus]`` the plugins' output too).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import psutil
import zmq

from circus.errors import CallError
from circus.transports import CommandClient

_T = TypeVar("_T")

Event = tuple[str, dict[str, Any]]
Predicate = Callable[[str, dict[str, Any]], bool]

#: ipc:// paths must fit in sun_path (108 bytes); longer tmp dirs get a short socket dir
_MAX_IPC_DIR = 80


class CircusdError(RuntimeError):
    """circusd did not start, did not answer, or left processes behind."""


def _with_endpoints(config_text: str, endpoint: str, pubsub: str, check_delay: float | None) -> str:
    """Put our endpoints into the ``[circus]`` section (added when missing)."""
    lines = [f"endpoint = {endpoint}", f"pubsub_endpoint = {pubsub}"]
    if check_delay is not None:
        lines.append(f"check_delay = {check_delay}")
    header = re.search(r"^\[circus\][ \t]*$", config_text, flags=re.MULTILINE)
    if header is None:
        return "[circus]\n" + "\n".join(lines) + "\n\n" + config_text
    insert_at = header.end()
    return config_text[:insert_at] + "\n" + "\n".join(lines) + config_text[insert_at:]


class CircusdProcess:
    """A circusd subprocess running ``config_text`` (see the module docstring).

    The ``[circus]`` section gets ``endpoint``/``pubsub_endpoint`` on ``ipc://`` sockets in the
    temporary directory (do not set them yourself). ``check_delay`` is set when given.
    """

    def __init__(
        self,
        config_text: str,
        tmp_path: str | os.PathLike[str],
        *,
        check_delay: float | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        start_timeout: float = 30.0,
        call_timeout: float = 20.0,
        config_name: str = "circus.ini",
    ) -> None:
        self.tmp_path = Path(tmp_path)
        self._sock_dir: str | None = None
        sock_dir = str(self.tmp_path)
        if len(sock_dir) > _MAX_IPC_DIR:
            self._sock_dir = tempfile.mkdtemp(prefix="circus-")
            sock_dir = self._sock_dir
        self.endpoint = f"ipc://{sock_dir}/control.sock"
        self.pubsub_endpoint = f"ipc://{sock_dir}/events.sock"
        self.config_path = self.tmp_path / config_name
        self.config_text = _with_endpoints(
            config_text, self.endpoint, self.pubsub_endpoint, check_delay
        )
        self.args = list(args)
        self.env = env
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self.log_path = self.tmp_path / "circusd.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self._client: CommandClient | None = None
        self._seen_children: dict[int, psutil.Process] = {}

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise CircusdError("circusd is not running")
        return self.popen.pid

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> CircusdProcess:
        self.tmp_path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "circus.circusd", *self.args, str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        self.wait_ready(self.start_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Wait until circusd answers ``status`` (bounded); raise with its log if it died."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.popen is not None
            code = self.popen.poll()
            if code is not None:
                raise CircusdError(f"circusd exited with {code}:\n{self.log_text()}")
            try:
                reply = self.client.call("status", timeout=0.5)
            except CallError:
                reply = None
            if reply is not None and reply.get("status") == "ok":
                return
            if time.monotonic() > deadline:
                self.kill()
                raise CircusdError(f"circusd did not answer within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def client(self) -> CommandClient:
        if self._client is None:
            self._client = CommandClient(self.endpoint, timeout=self.call_timeout)
        return self._client

    def call(self, command: str, **props: Any) -> dict[str, Any]:
        """Send a command and return the reply (raises ``CallTimeout`` when none comes)."""
        return self.client.call(command, **props)

    def children(self) -> list[psutil.Process]:
        """circusd's live descendants (remembered, so teardown can check none is left)."""
        try:
            found = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []
        for proc in found:
            self._seen_children.setdefault(proc.pid, proc)
        return found

    def stop(self, timeout: float = 30.0) -> int | None:
        """``quit``, wait for the exit (bounded), then kill what remains by pid.

        Returns circusd's exit status. Raises :class:`CircusdError` when a child of circusd
        outlived it (it is killed first).
        """
        if self.popen is None:
            return None
        self.children()
        if self.popen.poll() is None:
            with contextlib.suppress(CallError):
                self.client.call("quit", timeout=min(timeout, 10.0))
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        code = self.popen.returncode
        leaked = self._kill_leftovers()
        self._cleanup()
        if leaked:
            raise CircusdError(f"processes left behind by circusd: {leaked}")
        return code

    def kill(self) -> None:
        """Hard stop (SIGKILL) of circusd and its known descendants."""
        if self.popen is not None and self.popen.poll() is None:
            self.children()
            self.popen.kill()
            self.popen.wait(10)
        self._kill_leftovers()
        self._cleanup()

    def _kill_leftovers(self) -> list[int]:
        leaked = []
        for pid, proc in self._seen_children.items():
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    leaked.append(pid)
                    proc.kill()
        self._seen_children.clear()
        return leaked

    def _cleanup(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None

    def __enter__(self) -> CircusdProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.kill()
        else:
            self.stop()


def start_circusd(
    config_text: str, tmp_path: str | os.PathLike[str], **kwargs: Any
) -> CircusdProcess:
    """Start circusd and return the running :class:`CircusdProcess` (call ``stop()`` later)."""
    return CircusdProcess(config_text, tmp_path, **kwargs).start()


class EventCollector:
    """A SUB socket (owned by the calling thread) that keeps every event it receives."""

    def __init__(self, endpoint: str, topics: Sequence[str] = ("",)) -> None:
        self.endpoint = endpoint
        self.topics = list(topics)
        self.events: list[Event] = []
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None

    def connect(self) -> EventCollector:
        self._context = zmq.Context()
        sock = self._context.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        for topic in self.topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sock.connect(self.endpoint)
        self._socket = sock
        return self

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def __enter__(self) -> EventCollector:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self, timeout: float) -> bool:
        """Receive what arrives within ``timeout`` s; True when something came."""
        if self._socket is None:
            raise RuntimeError("EventCollector is not connected")
        if not self._socket.poll(int(timeout * 1000)):
            return False
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return True
            if len(frames) == 2:
                self.events.append((frames[0].decode(), json.loads(frames[1])))

    def wait_for(self, predicate: Predicate, timeout: float = 20.0, *, start: int = 0) -> Event:
        """The first event (from index ``start``) matching ``predicate``; AssertionError on
        timeout, listing what was received."""
        deadline = time.monotonic() + timeout
        checked = start
        while True:
            while checked < len(self.events):
                topic, payload = self.events[checked]
                checked += 1
                if predicate(topic, payload):
                    return topic, payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no matching event within {timeout} s; received: {self.events[start:]!r}"
                )
            self._receive(min(remaining, 0.5))

    def wait_count(self, predicate: Predicate, count: int, timeout: float = 20.0, *,
                   start: int = 0) -> list[Event]:
        """Wait until ``count`` events (from index ``start``: pass ``len(events)`` taken
        before acting, so events from before, such as a start-up caught by a quick
        subscription, do not count) match; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events[start:] if predicate(*e)]
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{len(found)}/{count} matching events within {timeout} s: {self.events!r}"
                )
            self._receive(min(remaining, 0.5))

    def assert_quiet(self, predicate: Predicate, seconds: float) -> None:
        """Assert that no event matching ``predicate`` arrives within ``seconds`` from now
        (the bounded "nothing more happens" window after the last expected event)."""
        mark = len(self.events)
        try:
            topic, payload = self.wait_for(predicate, timeout=seconds, start=mark)
        except AssertionError:
            return
        raise AssertionError(f"unexpected event {topic} {payload}")

    def drain(self, timeout: float = 0.0) -> list[Event]:
        """Collect what is already there (or arrives within ``timeout``)."""
        self._receive(timeout)
        return list(self.events)

    def wait_ready(self, daemon: CircusdProcess, watcher: str, timeout: float = 20.0) -> None:
        """Make sure the subscription is live before the test acts (ZeroMQ slow joiner).

        Re-sets ``watcher``'s ``graceful_timeout`` to its current value (a no-op that publishes
        ``updated``) until that event is received. The priming events stay in ``events``.
        """
        name = watcher.lower().replace(" ", "_")
        current = daemon.call("get", name=watcher, keys=["graceful_timeout"])
        value = current["options"]["graceful_timeout"]
        topic = f"watcher.{name}.updated"
        deadline = time.monotonic() + timeout
        while True:
            daemon.call("set", name=watcher, options={"graceful_timeout": value})
            mark = len(self.events)
            try:
                self.wait_for(lambda t, p: t == topic, timeout=0.3, start=mark)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise


def terminate(popen: subprocess.Popen[Any], timeout: float = 20.0) -> int:
    """End a helper process a test started: SIGTERM (so it can clean up), then SIGKILL if it
    is still there after ``timeout`` s. Returns its exit status."""
    with contextlib.suppress(ProcessLookupError):
        popen.send_signal(signal.SIGTERM)
    try:
        return popen.wait(timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        return popen.wait(timeout)


@contextlib.contextmanager
def run_plugin(
    endpoint: str, pubsub: str, plugin: str, log: str | os.PathLike[str],
    options: Mapping[str, str] | None = None, *, stop_timeout: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``plugin`` (short name or dotted path) with ``options`` through our runner against
    any circusd (ours or the original), logging in text format to ``log``; ended by pid on exit
    (SIGTERM, so its ``handle_stop`` runs, then SIGKILL after ``stop_timeout``)."""
    argv = [sys.executable, "-m", "circus.plugins.runner", "--endpoint", endpoint,
            "--pubsub", pubsub, "--log-output", str(log), "--log-format", "text", plugin,
            *(f"{key}={value}" for key, value in (options or {}).items())]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        terminate(proc, stop_timeout)


#: set (to anything but "" or "0") by ``python3 dev.py test``, i.e. in CI: a real part a test
#: needs (the etsy statsd daemon, redis-server, tmux, the original Circus) must be there
REQUIRE_PARTS_ENV = "CIRCUS_REQUIRE_PARTS"


def parts_required() -> bool:
    """Whether a missing real part fails the test instead of skipping it (CI)."""
    return os.environ.get(REQUIRE_PARTS_ENV, "") not in ("", "0")


def missing_part(what: str) -> NoReturn:
    """A real part the test needs is not available: skip it, or fail it in CI.

    A test that silently skips in CI proves nothing; locally, a developer without (say) npm can
    still run the rest. The pytest summary counts the skips.
    """
    import pytest  # only test code calls this: circusd never imports pytest

    if parts_required():
        pytest.fail(f"{what} ({REQUIRE_PARTS_ENV} is set: CI must not skip it)", pytrace=False)
    pytest.skip(what)


def wait_until(
    condition: Callable[[], _T], what: str, timeout: float = 30.0, *,
    daemon: CircusdProcess | None = None,
) -> _T:
    """Poll ``condition`` (every 20 ms) until it returns a true value, and return that value
    (``pid = wait_until(lambda: new_pid(), "the respawn")``); on timeout an AssertionError
    naming ``what``, with ``daemon``'s log when given (what a plugin logged is usually the
    clue)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            context = f":\n{daemon.log_text()}" if daemon is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{context}")
        time.sleep(0.02)
    return value


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_count(daemon: CircusdProcess, text: str, logger: str = "") -> int:
    """How many lines of circusd's log (with ``debug = true``: its plugins' too) contain
    ``text``, counting only lines that also contain ``logger`` when given."""
    return sum(text in line and logger in line for line in daemon.log_text().splitlines())


__all__ = [
    "CircusdError",
    "CircusdProcess",
    "EventCollector",
    "free_port",
    "log_count",
    "missing_part",
    "parts_required",
    "run_plugin",
    "start_circusd",
    "terminate",
    "wait_until",
]
