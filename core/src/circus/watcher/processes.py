"""The processes of one watcher: spawning one, killing one, finding them, their stats.

The runtime decides *when* (its policy says so); this module knows *how*: the spawn spec, the
``before_spawn``/``after_spawn`` and ``before_signal``/``after_signal`` hooks, the ``spawn`` and
``kill`` events, the graceful kill with its SIGKILL escalation. Counted processes are kept in
spawn order; retired ones move to ``dying`` until their exit is reaped.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psutil
import structlog

from circus.config.model import WatcherConfig
from circus.config.socket_use import used_sockets
from circus.errors import MessageError
from circus.events import REQUESTER
from circus.process import ExitCallback, OutputCallback, Process, descendants_of
from circus.sockets import SocketSet
from circus.spawn import build_spec
from circus.stats.report import process_stats
from circus.stats.sampler import Sample

log = structlog.get_logger("circus.watcher")

Notify = Callable[[str, dict[str, Any]], int]
CallHook = Callable[..., bool]


class SpawnVetoed(Exception):
    """A ``before_spawn``/``after_spawn`` hook said no (0.19: the watcher stops, no retry)."""


def describe(exc: BaseException) -> str:
    """One line naming why a spawn failed, with the symbolic errno (``EMFILE``...)."""
    if isinstance(exc, OSError) and not hasattr(exc, "code") and exc.errno:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return f"{exc.strerror or exc} ({name})"
    return str(exc)


class ProcessSet(Mapping[int, Process]):
    """One watcher's processes; see the module docstring. As a mapping: the counted ones,
    pid -> process, in spawn order."""

    def __init__(
        self,
        config: WatcherConfig,
        *,
        notify: Notify,
        call_hook: CallHook,
        on_exit: ExitCallback,
        on_output: OutputCallback,
        umask: int | None = None,
        sockets: SocketSet | None = None,
    ) -> None:
        self.config = config
        #: circusd's ``[socket:NAME]`` sockets (the arbiter's), None when embedded without any
        self.sockets = sockets
        self._notify = notify
        self._call_hook = call_hook
        self._on_exit = on_exit
        self._on_output = on_output
        self.umask = umask
        #: counted processes, in spawn order (pid -> process)
        self.counted: dict[int, Process] = {}
        #: retired processes being killed: no longer counted, still reaped
        self.dying: set[Process] = set()

    def __len__(self) -> int:
        return len(self.counted)

    def __getitem__(self, pid: int) -> Process:
        return self.counted[pid]

    def __iter__(self) -> Iterator[int]:
        return iter(self.counted)

    def pids(self) -> list[int]:
        """Live counted processes, spawn order."""
        return [pid for pid, proc in self.counted.items() if proc.alive]

    def all(self) -> list[Process]:
        return [*self.counted.values(), *self.dying]

    def find(self, pid: int) -> Process:
        """The counted process ``pid``; errno 3 naming the watcher when there is none."""
        proc = self.counted.get(pid)
        if proc is None:
            raise MessageError(f"process {pid} not found in '{self.config.name}'")
        return proc

    def select(self, pid: int | None) -> list[Process]:
        """Every counted process, or the one with ``pid`` (none if unknown)."""
        if pid is None:
            return list(self.counted.values())
        found = self.counted.get(pid)
        return [found] if found is not None else []

    def forget(self, proc: Process) -> bool:
        """A process exited: drop it; True when it was counted."""
        counted = self.counted.get(proc.pid) is proc
        if counted:
            del self.counted[proc.pid]
        self.dying.discard(proc)
        return counted

    # -- spawning -----------------------------------------------------------------------------

    def _next_wid(self) -> int:
        used = {p.wid for p in self.all()}
        for wid in range(1, 2 * max(self.config.numprocesses, 1) + 1):
            if wid not in used:
                return wid
        return max(used, default=0) + 1

    def spawn_one(self) -> Process:
        """Start one process and publish ``spawn``.

        Raises ``OSError`` (circus.errors.SpawnError) or ``ValueError`` when the OS refuses,
        :class:`SpawnVetoed` when a hook does.
        """
        if not self._call_hook("before_spawn"):
            raise SpawnVetoed("before_spawn")
        wid = self._next_wid()
        fds: dict[str, int] = {}
        temporary: list[socket.socket] = []
        if self.sockets:
            fds, temporary = self.sockets.for_spawn(used_sockets(self.config, self.sockets))
        try:
            spec = build_spec(self.config, wid, umask=self.umask, sockets=fds)
            proc = Process.spawn(spec, wid, on_exit=self._on_exit, on_output=self._on_output)
        except subprocess.SubprocessError as exc:
            raise ValueError(str(exc)) from exc
        finally:
            for sock in temporary:  # so_reuseport: the child holds its own copy now
                sock.close()
        self.counted[proc.pid] = proc
        self._notify("spawn", {"process_pid": proc.pid, "time": proc.started})
        if not self._call_hook("after_spawn", pid=proc.pid):
            raise SpawnVetoed("after_spawn")
        return proc

    # -- killing ------------------------------------------------------------------------------

    def detach(self, pids: tuple[int, ...] | list[int]) -> list[Process]:
        """Stop counting these processes (being retired): they move to ``dying``."""
        procs: list[Process] = []
        for pid in pids:
            proc = self.counted.pop(pid, None)
            if proc is not None:
                self.dying.add(proc)
                proc.detached = True
                procs.append(proc)
        return procs

    async def kill_all(self, procs: list[Process]) -> None:
        """Kill these processes at once; with ``stop_children`` their descendants are looked
        up in one pass for all, in a worker thread (not one /proc pass per process)."""
        trees: dict[int, list[psutil.Process]] = {}
        if self.config.stop_children and procs:
            trees = await asyncio.to_thread(descendants_of, [p.pid for p in procs])
        await asyncio.gather(*(self.kill(p, tree=trees.get(p.pid)) for p in procs))

    async def kill(
        self,
        proc: Process,
        signum: int | None = None,
        graceful_timeout: float | None = None,
        *,
        tree: list[psutil.Process] | None = None,
    ) -> None:
        """Stop signal, ``kill`` event, wait up to graceful_timeout, then SIGKILL the process's
        whole group (and, with ``stop_children``, every descendant, ``tree`` when known): see
        Process.terminate."""
        sig = self.config.stop_signal if signum is None else signum
        timeout = self.config.graceful_timeout if graceful_timeout is None else graceful_timeout
        proc.expected_exit = True
        proc.exit_requested_by = REQUESTER.get()
        allowed = self._call_hook("before_signal", pid=proc.pid, signum=sig)
        hooked: list[bool] = []

        def on_signal(pid: int, sent: int) -> None:
            if pid == proc.pid and sent == sig and not hooked:
                hooked.append(True)
                self._call_hook("after_signal", pid=proc.pid, signum=sig)
            self._notify("kill", {"process_pid": pid, "time": time.time()})

        await proc.terminate(
            sig if allowed else None,
            timeout,
            children=self.config.stop_children,
            on_signal=on_signal,
            tree=tree,
        )

    # -- stats --------------------------------------------------------------------------------

    def stats(self, sample: Sample, proc: Process) -> dict[str, Any] | str:
        """One process's ``stats`` entry from a sample taken off the event loop."""
        return process_stats(sample, proc.pid, wid=proc.wid, started=proc.started)

    def started_at(self) -> float:
        return min((p.started for p in self.counted.values()), default=time.time())
