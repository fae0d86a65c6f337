"""Carrying out the policy's actions on the processes, inside and outside operations.

The :class:`Engine` is the part of a watcher's runtime that acts: it spawns (one path, every
success or failure reported to the policy, which alone decides about retries), retires, keeps
the one backoff timer, and respawns after an exit right after the ``reap`` event left. The
:class:`~circus.watcher.runtime.Watcher` holds it and calls it from its operations.

Outside an operation (an exit, the timer) spawns happen synchronously, a few per loop iteration;
while an operation holds the watcher's lock they wait for it to end (the operation reconciles
the count then). Inside an operation :meth:`Engine.carry_out` spawns and retires at once and
reports the cause of a failed spawn, which the operation's reply names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from circus.events import requested_by
from circus.process import Process
from circus.watcher.policy import Action, CancelWake, Policy, Retire, Spawn, Wake
from circus.watcher.processes import ProcessSet, SpawnVetoed, describe
from circus.watcher.state import RUNNING, Transition

log = structlog.get_logger("circus.watcher")

#: respawns done synchronously in one loop iteration; more wait for the next one
SYNC_SPAWNS = 8


class Engine:
    """One watcher's spawning, retiring and backoff timer; see the module docstring.

    ``announce`` publishes a state transition; ``stop_vetoed`` stops the watcher after a hook
    vetoed a spawn (0.19: no retry); ``lock`` is the watcher's operation lock.
    """

    def __init__(
        self,
        name: str,
        policy: Policy,
        processes: ProcessSet,
        lock: asyncio.Lock,
        *,
        announce: Callable[[Transition], None],
        stop_vetoed: Callable[[], Awaitable[None]],
    ) -> None:
        self.name = name
        self.policy = policy
        self.processes = processes
        self.lock = lock
        self._announce = announce
        self._stop_vetoed = stop_vetoed
        self._wake: asyncio.TimerHandle | None = None
        self._respawn_scheduled = False
        self._logged_failure: str | None = None
        self._background: set[asyncio.Task[Any]] = set()
        #: a stop is waiting for the lock: spawn loops end early
        self.stop_requested = False
        #: a hook vetoed a spawn: the watcher stops once the current operation ends
        self.vetoed = False

    def after_operation(self) -> None:
        """An operation released the lock: stop after a veto, else reconcile the count
        (whatever exited meanwhile is replaced now; a no-op when the count is right).

        The reconciliation is the daemon's doing: it replaces exits the operation did not
        cause, so it must not run in the operation's context (its ``by``)."""
        if self.vetoed:
            self.stop_after_veto()
        else:
            with requested_by(None):  # call_soon copies the context current here
                self.respawn_soon()

    def close(self) -> None:
        """Daemon shutdown: cancel the timer and background work."""
        self.cancel_wake()
        for task in list(self._background):
            task.cancel()

    def execute(self, actions: list[Action]) -> None:
        """Actions decided outside an operation (an exit, a timer): spawns come just after."""
        for action in actions:
            if isinstance(action, Spawn):
                self.respawn_soon()
            elif isinstance(action, Retire):
                self.spawn_task(self.retire(action))
            else:
                self._apply(action)

    async def carry_out(
        self, actions: list[Action], *, wait: bool = True, replacing: int = 0
    ) -> str | None:
        """Actions decided inside an operation: spawns and retirements done now (retirements
        in the background when ``wait`` is false). Returns the cause of a failed spawn.

        The first ``replacing`` spawns replace exits the operation did not cause: they are
        made on the daemon's account, the rest on behalf of whoever asked."""
        failure = None
        for action in actions:
            if isinstance(action, Spawn):
                own = min(replacing, action.count)
                replacing -= own
                cause = None
                if own:
                    with requested_by(None):
                        _, cause = await self.spawn_batch(own)
                if cause is None and action.count > own:
                    _, cause = await self.spawn_batch(action.count - own)
                failure = failure or cause
            elif isinstance(action, Retire):
                if wait:
                    await self.retire(action)
                else:
                    self.spawn_task(self.retire(action))
            else:
                self._apply(action)
        return failure

    def _apply(self, action: Transition | Wake | CancelWake) -> None:
        if isinstance(action, Transition):
            self._announce(action)
        elif isinstance(action, Wake):
            self.cancel_wake()
            loop = asyncio.get_running_loop()
            self._wake = loop.call_later(action.delay, self._on_wake)
        else:
            self.cancel_wake()

    def cancel_wake(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None

    def _on_wake(self) -> None:
        self._wake = None
        with requested_by(None):  # the backoff's own retry, whoever armed the timer
            self.execute(self.policy.timer(time.time()))

    def spawn_task(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def respawn_soon(self) -> None:
        """Respawn right after the current callback (the ``reap`` event leaves first); during
        an operation, when it ends (see ``_locked``)."""
        if not self.lock.locked() and not self._respawn_scheduled:
            self._respawn_scheduled = True
            asyncio.get_running_loop().call_soon(self._respawn_now)

    def _respawn_now(self) -> None:
        """Hot path of a respawn: spawn synchronously, a few per loop iteration."""
        self._respawn_scheduled = False
        if self.lock.locked():
            return  # the operation holding it reconciles when it ends
        for action in self.policy.reconcile(time.time()):
            if isinstance(action, Spawn):
                for _ in range(min(action.count, SYNC_SPAWNS)):
                    if self._spawn_one() is None:
                        break  # the policy knows: it backs off
                else:
                    if action.count > SYNC_SPAWNS:
                        self.respawn_soon()
            elif isinstance(action, Retire):
                self.spawn_task(self.retire(action))
            else:
                self._apply(action)

    def _spawn_one(self) -> Process | None:
        """Spawn one process and tell the policy; None (after telling it) when that failed."""
        try:
            proc = self.processes.spawn_one()
        except SpawnVetoed as exc:
            # 0.19: the watcher stops, no retry; done when the lock is free (see _locked)
            log.warning("spawn vetoed by a hook: watcher stopped", watcher=self.name, hook=str(exc))
            self.policy.last_failure = f"vetoed by the {exc} hook"
            self.vetoed = True
            if not self.lock.locked():
                self.stop_after_veto()
            return None
        except (OSError, ValueError) as exc:
            self._spawn_failed(describe(exc))
            return None
        self.policy.spawned(proc.pid, proc.started)
        self._logged_failure = None  # a success ends the streak: the next failure is logged
        return proc

    def stop_after_veto(self) -> None:
        self.vetoed = False
        self.spawn_task(self._stop_vetoed())

    def _spawn_failed(self, cause: str) -> None:
        """Log a failure once per streak of the same cause, then let the policy decide."""
        if cause != self._logged_failure:
            log.error("spawn failed", watcher=self.name, error=cause)
            self._logged_failure = cause
        else:
            log.debug("spawn failed again", watcher=self.name, error=cause)
        self.execute(self.policy.spawn_failed(time.time(), cause))

    async def spawn_batch(
        self, count: int, *, warmup: bool = False
    ) -> tuple[list[int], str | None]:
        """Spawn up to ``count`` processes, yielding to the loop between them (``warmup_delay``
        apart when asked); stops at the first failure and returns its cause."""
        started: list[int] = []
        for index in range(count):
            if self.stop_requested or self.policy.state not in RUNNING:
                break
            if index and warmup and self.policy.config.warmup_delay > 0:
                await asyncio.sleep(self.policy.config.warmup_delay)
            elif index:
                await asyncio.sleep(0)  # let the controller answer during a big start
            proc = self._spawn_one()
            if proc is None:
                return started, self.policy.last_failure or "spawn failed"
            started.append(proc.pid)
        return started, None

    async def retire(self, retire: Retire) -> None:
        """Kill processes the policy no longer counts; they are still reaped (``reap`` with
        ``expected: true``, where 0.19 dropped them silently, E1)."""
        await self.processes.kill_all(self.processes.detach(retire.pids))
