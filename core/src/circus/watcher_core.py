"""The life of a watcher's processes: spawn, exit handling, respawn, housekeeping, killing.

:class:`circus.watcher.Watcher` adds the operations the commands call on top of this core.

Exits arrive as callbacks from :class:`~circus.process.Process` the moment a child dies: the
``reap`` event is published right away and the replacement spawned at once (``reap`` then
``spawn``, as the contract's sequences say), instead of at the next ``check_delay`` tick (E2).

Every mutating operation takes the watcher's own ``asyncio.Lock``, so commands on one watcher
queue while commands on different watchers run concurrently (Circus #776, #1154). Exits that
happen while an operation holds the lock only mark that management is needed; the operation
runs it when it releases the lock.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time

import structlog

from circus.errors import MessageError
from circus.process import Process
from circus.spawn import build_spec
from circus.watcher_base import WatcherBase

log = structlog.get_logger("circus.watcher")

#: plugin watchers that crash are respawned after this delay, doubling up to the maximum
PLUGIN_BACKOFF_START = 0.1
PLUGIN_BACKOFF_MAX = 30.0
#: a plugin that stayed up this long is considered healthy again (backoff reset)
PLUGIN_HEALTHY_AFTER = 30.0
#: pause between spawn attempts when ``max_retry = -1`` (retry forever without freezing, E4)
RETRY_FOREVER_BACKOFF_MAX = 5.0


class WatcherCore(WatcherBase):
    """Keeps ``config.numprocesses`` copies of one command running; see the module docstring."""

    # -- spawning ----------------------------------------------------------------------------

    def _next_wid(self) -> int:
        used = {p.wid for p in self.processes.values()} | {p.wid for p in self.dying}
        for wid in range(1, 2 * max(self.config.numprocesses, 1) + 1):
            if wid not in used:
                return wid
        return max(used, default=0) + 1

    def _spawn_once(self) -> Process | None:
        """One attempt to start one process; publishes ``spawn`` on success."""
        if not self.call_hook("before_spawn"):
            self._spawn_vetoed = True
            return None
        wid = self._next_wid()
        try:
            spec = build_spec(self.config, wid, umask=self.umask)
            proc = Process.spawn(spec, wid, on_exit=self._on_exit, on_output=self._on_output)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.error("spawn failed", watcher=self.name, error=str(exc))
            return None
        self.processes[proc.pid] = proc
        if self.config.max_age > 0:
            variance = random.uniform(0, max(self.config.max_age_variance, 0))
            self._max_ages[proc.pid] = self.config.max_age + variance
        self.notify("spawn", {"process_pid": proc.pid, "time": proc.started})
        if not self.call_hook("after_spawn", pid=proc.pid):
            self._spawn_vetoed = True
            self._background_kill([proc])
            return None
        return proc

    async def spawn_one(self) -> Process | None:
        """Start one process, retrying failed execs: ``max_retry`` immediate attempts, or
        forever with a growing pause when it is -1 (0.19 froze the daemon there, E4)."""
        retries = self.config.max_retry
        attempt = 0
        pause = 0.1
        self._spawn_vetoed = False
        while True:
            proc = self._spawn_once()
            if proc is not None or self._stop_requested or self._spawn_vetoed:
                return proc
            attempt += 1
            if retries >= 0 and attempt > retries:
                return None
            if retries < 0:
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_FOREVER_BACKOFF_MAX)

    async def spawn_missing(self, *, pause: bool = True) -> list[int] | None:
        """Spawn until ``numprocesses`` are counted; None when spawning failed for good."""
        started: list[int] = []
        while len(self.processes) < self.config.numprocesses and not self._stop_requested:
            if started and pause and self.config.warmup_delay > 0:
                await asyncio.sleep(self.config.warmup_delay)
            proc = await self.spawn_one()
            if proc is None:
                return None if not self._stop_requested else started
            started.append(proc.pid)
        return started

    # -- exits -------------------------------------------------------------------------------

    def _on_exit(self, proc: Process) -> None:
        """A child died: drop it, publish ``reap``, respawn at once (or stop, respawn=false)."""
        counted = self.processes.get(proc.pid) is proc
        if counted:
            del self.processes[proc.pid]
        self.dying.discard(proc)
        self._max_ages.pop(proc.pid, None)
        code = proc.returncode
        expected = proc.expected_exit or (code is not None and -code in proc.signalled_with)
        now = time.time()
        if self.config.hooks:
            self.call_hook("before_reap", process_pid=proc.pid, time=now)
        self.notify(
            "reap",
            {"process_pid": proc.pid, "time": now, "exit_code": code, "expected": expected},
        )
        if self.config.hooks:
            status = 0 if code is None else (-code if code < 0 else code << 8)
            self.call_hook(
                "after_reap", process_pid=proc.pid, time=now, exit_code=code, process_status=status
            )
        if not expected:
            log.debug("process exited", watcher=self.name, pid=proc.pid, exit_code=code)
        if not counted or self.state not in ("active", "starting"):
            return
        if self.is_plugin and not expected:
            self._plugin_crashed(proc)
        # respawn right after the publisher task had its turn: the reap event goes out first
        # instead of waiting for the fork/exec of the replacement
        asyncio.get_running_loop().call_soon(self._respawn_after_exit)

    def _respawn_after_exit(self) -> None:
        if self.state in ("active", "starting"):
            self.request_manage()

    def _plugin_crashed(self, proc: Process) -> None:
        """Plugins are respawned with an exponential backoff, reset once one stayed up."""
        if proc.age() >= PLUGIN_HEALTHY_AFTER or self._plugin_backoff == 0:
            self._plugin_backoff = PLUGIN_BACKOFF_START
        else:
            self._plugin_backoff = min(self._plugin_backoff * 2, PLUGIN_BACKOFF_MAX)
        self._respawn_at = time.monotonic() + self._plugin_backoff

    def request_manage(self) -> None:
        """Bring the process count back to target now, or as soon as the lock is free."""
        if self.lock.locked():
            self._manage_pending = True
            return
        delay = self._respawn_at - time.monotonic()
        if delay > 0:
            if self._respawn_timer is None:
                loop = asyncio.get_running_loop()
                self._respawn_timer = loop.call_later(delay, self._respawn_due)
            return
        if self.config.warmup_delay <= 0 and self._fast_path_ok():
            self._manage_sync()
            return
        if self._manage_task is None or self._manage_task.done():
            self._manage_task = asyncio.create_task(self._manage_later())

    def _respawn_due(self) -> None:
        self._respawn_timer = None
        if self.state == "active":
            self.request_manage()

    def _fast_path_ok(self) -> bool:
        return self.config.max_retry >= 0 and len(self.processes) < self.config.numprocesses

    def _manage_sync(self) -> None:
        """Hot path of a respawn: spawn synchronously in the exit callback (no task hop)."""
        if not self.config.respawn:
            self._stop_if_empty()
            return
        self._spawn_vetoed = False
        while len(self.processes) < self.config.numprocesses:
            for _ in range(max(self.config.max_retry, 0) + 1):
                if self._spawn_once() is not None or self._spawn_vetoed:
                    break
            else:
                self._give_up()
                return
            if self._spawn_vetoed:
                self._give_up()
                return

    async def _manage_later(self) -> None:
        async with self.lock:
            await self.manage_locked()
        self._after_op()

    def _after_op(self) -> None:
        if self._manage_pending:
            self._manage_pending = False
            if self.state == "active":
                self.request_manage()

    def _stop_if_empty(self) -> None:
        if not self.processes and self.state == "active":
            self.state = "stopped"
            self.notify("stop", {"expected": False})

    def _give_up(self) -> None:
        """Spawning failed ``max_retry`` times: the watcher stops (contract 9.2); processes
        that did start are stopped in the background."""
        log.error("giving up spawning", watcher=self.name, max_retry=self.config.max_retry)
        self.state = "stopped"
        self.notify("stop", {"expected": False})
        self._background_kill(list(self.processes.values()))

    def _background_kill(self, procs: list[Process]) -> None:
        if procs:
            task = asyncio.get_running_loop().create_task(self._kill_all(procs))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _kill_all(self, procs: list[Process]) -> None:
        await asyncio.gather(*(self.kill_process(p) for p in procs))

    async def manage_locked(self) -> None:
        """Housekeeping with the lock held: max_age, missing or surplus processes."""
        if self.state != "active":
            return
        expired: list[Process] = []
        if self.config.max_age > 0:
            now = time.time()
            expired = [
                proc
                for pid, proc in self.processes.items()
                if now - proc.started > self._max_ages.get(pid, float("inf"))
            ]
            # replacements first, then the old ones go (no gap in service)
            self.detach(expired)
        try:
            await self._manage_count()
        finally:
            if expired:
                await self.retire(expired)

    async def _manage_count(self) -> None:
        if len(self.processes) < self.config.numprocesses:
            if not self.config.respawn:
                self._stop_if_empty()
                return
            if time.monotonic() < self._respawn_at:
                self._manage_pending = True  # a timer respawns once the backoff is over
                return
            if await self.spawn_missing() is None:
                self._give_up()
                return
        surplus = len(self.processes) - self.config.numprocesses
        if surplus > 0:
            await self.retire(list(self.processes.values())[:surplus])

    async def tick(self) -> None:
        """The ``check_delay`` pass: a safety net, since exits are handled when they happen."""
        if self.lock.locked() or self.state != "active":
            return
        async with self.lock:
            await self.manage_locked()
        self._after_op()

    # -- killing -----------------------------------------------------------------------------

    async def kill_process(
        self,
        proc: Process,
        signum: int | None = None,
        graceful_timeout: float | None = None,
    ) -> None:
        """Stop signal, ``kill`` event, wait up to graceful_timeout, then SIGKILL the process's
        whole group (and, with ``stop_children``, every descendant): see Process.terminate."""
        sig = self.config.stop_signal if signum is None else signum
        timeout = self.config.graceful_timeout if graceful_timeout is None else graceful_timeout
        proc.expected_exit = True
        allowed = self.call_hook("before_signal", pid=proc.pid, signum=sig)
        hooked: list[bool] = []

        def on_signal(pid: int, sent: int) -> None:
            if pid == proc.pid and sent == sig and not hooked:
                hooked.append(True)
                self.call_hook("after_signal", pid=proc.pid, signum=sig)
            self.notify("kill", {"process_pid": pid, "time": time.time()})

        await proc.terminate(
            sig if allowed else None,
            timeout,
            children=self.config.stop_children,
            on_signal=on_signal,
        )

    def detach(self, procs: list[Process]) -> None:
        """Stop counting processes about to be killed, so replacements can start at once."""
        for proc in procs:
            if self.processes.get(proc.pid) is proc:
                del self.processes[proc.pid]
                self.dying.add(proc)
                proc.detached = True

    async def retire(self, procs: list[Process]) -> None:
        """Kill surplus processes: uncounted at once, still reaped with ``expected: true``
        (0.19 dropped them without a ``reap`` event, E1)."""
        self.detach(procs)
        await asyncio.gather(*(self.kill_process(p) for p in procs))

    def get_process(self, pid: int) -> Process:
        proc = self.processes.get(pid)
        if proc is None:
            raise MessageError(f"process {pid} not found in '{self.name}'")
        return proc
