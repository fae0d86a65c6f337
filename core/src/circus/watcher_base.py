"""A watcher's state and plumbing: identity, events, hooks, output streams.

The process life cycle lives in :mod:`circus.watcher_core` and the operations the commands call
in :mod:`circus.watcher`; both build on this base.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from circus.config.model import WatcherConfig
from circus.errors import ConfigError
from circus.journal import ProcessJournal
from circus.output_tail import WatcherOutput, limits_from, passthrough
from circus.process import Process
from circus.protocol import res_name
from circus.streams import OutputStreams
from circus.watcher_hooks import HookRunner

Publish = Callable[[str, str, dict[str, Any]], int]


class WatcherBase:
    """A watcher's state, identity, events, hooks and output streams."""

    def __init__(
        self, config: WatcherConfig, publish: Publish, *, umask: int | None = None
    ) -> None:
        self.config = config
        self._publish = publish
        self.umask = umask
        self.state = "stopped"
        #: counted processes, in spawn order (pid -> process)
        self.processes: dict[int, Process] = {}
        #: surplus processes being killed: no longer counted, still reaped
        self.dying: set[Process] = set()
        self.lock = asyncio.Lock()
        self._manage_pending = False
        self._manage_task: asyncio.Task[None] | None = None
        self._respawn_timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._stop_requested = False
        self._max_ages: dict[int, float] = {}
        self._plugin_backoff = 0.0
        self._respawn_at = 0.0
        self.streams = OutputStreams({}, {})
        self._open_streams()
        #: recent output lines per slot (``circusctl tail``) and restart counts (``status -l``)
        self.output = WatcherOutput(config.name, limits_from(config.extra))
        self.journal = ProcessJournal()
        #: set by the arbiter; passed to hooks as ``arbiter``
        self.arbiter: Any = None
        self.hook_runner = HookRunner(self.notify)
        self._spawn_vetoed = False

    # -- identity and simple views -----------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def res_name(self) -> str:
        return res_name(self.config.name)

    @property
    def priority(self) -> int:
        return self.config.priority

    @property
    def singleton(self) -> bool:
        return self.config.singleton

    @property
    def autostart(self) -> bool:
        return self.config.autostart

    @property
    def numprocesses(self) -> int:
        return self.config.numprocesses

    @property
    def is_plugin(self) -> bool:
        return self.config.is_plugin

    def pids(self) -> list[int]:
        """Live processes, spawn order."""
        return [pid for pid, proc in self.processes.items() if proc.alive]

    def notify(self, action: str, payload: dict[str, Any] | None = None) -> int:
        """Publish an event of this watcher; ``time`` comes first as in 0.19 payloads."""
        if payload is None or "time" not in payload:
            payload = {"time": time.time(), **(payload or {})}
        if action in ("spawn", "reap"):
            self._observe_process(action, payload)
        return self._publish(self.name, action, payload)

    def _observe_process(self, action: str, payload: dict[str, Any]) -> None:
        pid = payload.get("process_pid")
        if not isinstance(pid, int):
            return
        wid = self.journal.observe(action, payload, self._wid_of(pid))
        if action == "reap" and wid is not None:
            self.output.finish(pid, wid)

    def _wid_of(self, pid: int) -> int | None:
        proc = self.processes.get(pid)
        if proc is None:
            proc = next((p for p in self.dying if p.pid == pid), None)
        return proc.wid if proc is not None else self.journal.wid_of(pid)

    def call_hook(self, hook_name: str, **extras: Any) -> bool:
        """Run a configured hook (contract 8.5); True when it allows what it guards."""
        if not self.config.hooks:
            return True
        return self.hook_runner.call(
            self.config.hooks, hook_name, watcher=self, arbiter=self.arbiter, **extras
        )

    # -- streams -----------------------------------------------------------------------------

    def _open_streams(self) -> None:
        """(Re)build the output streams; a bad class or unopenable file is a ConfigError."""
        self.streams.close()
        try:
            self.streams = OutputStreams(self.config.stdout_stream, self.config.stderr_stream)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot set up an output stream: {exc}",
                section=f"watcher:{self.name}",
                key="stdout_stream" if self.config.stdout_stream else "stderr_stream",
            ) from None

    def _on_output(self, name: str, pid: int, data: bytes) -> None:
        # looked up at each chunk: `set stdout_stream.*` replaces the streams of live processes
        if (self.streams.stdout if name == "stdout" else self.streams.stderr) is None:
            passthrough(name, data)  # no stream: shown where an inheriting child would write
        else:
            self.streams.write(name, pid, data)
        wid = self._wid_of(pid)
        self.output.feed(pid, 0 if wid is None else wid, name, data)

    def close_streams(self) -> None:
        self.streams.close()

    def close(self) -> None:
        """Daemon shutdown (after stop): cancel pending respawns, close the streams."""
        if self._respawn_timer is not None:
            self._respawn_timer.cancel()
            self._respawn_timer = None
        if self._manage_task is not None:
            self._manage_task.cancel()
            self._manage_task = None
        for task in list(self._background):
            task.cancel()
        self.close_streams()
