"""A watcher's decisions as a pure state machine: events in, actions out.

No processes, no sockets, no clocks: the runtime (:mod:`circus.watcher.runtime`) feeds what
happened (a process exited or was spawned, a spawn failed, a command began or ended, the
housekeeping tick, a backoff timer fired) with the time, and carries out the returned actions.
So every rule below is tested with synthetic events (``core/tests/test_watcher_policy.py``).

The rules:

* **Count.** While running (``starting``, ``active``, ``backoff``) the watcher keeps
  ``numprocesses`` processes; surplus ones are retired oldest first.
* **Immediate respawn** of a process that exited after running at least ``min_uptime`` seconds,
  or that circusd ended itself (kill command, signal command, ``max_age``): a healthy exit also
  clears the failure count and any backoff.
* **Crash-loop protection.** A process that exits unexpectedly before ``min_uptime``, or a spawn
  that fails, is a *quick failure*. The next respawn then waits ``backoff_start`` seconds, doubling
  at each new failure up to ``backoff_max``; the state is ``backoff`` meanwhile and the ``backoff``
  event says when the retry comes. Failures while already waiting join the same retry (the delay
  grows once per round, not once per process). ``min_uptime = 0`` or ``backoff_start = 0`` turn
  the delay off.
* **Give up.** With ``give_up_after = N`` (0 = never, the default), N quick failures in a row make
  the watcher ``fatal`` (Supervisor's FATAL): nothing is respawned until ``start``. Processes
  still running keep running.
* **max_retry** keeps 0.19's meaning: after ``max_retry + 1`` failed spawns in a row with no
  process running, the watcher stops (``stop`` event, ``expected: false``); -1 retries forever.
  Failed spawns while processes run never stop those processes.
* **max_age**: at the tick, processes past ``max_age + uniform(0, max_age_variance)`` are
  replaced, the replacement spawned first.
* ``respawn = false``: exits are not replaced; the watcher stops when its last process is gone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from circus.config.model import WatcherConfig
from circus.watcher.state import RUNNING, State, Transition


@dataclass(frozen=True)
class Spawn:
    """Start ``count`` processes now (report each with ``spawned`` or ``spawn_failed``)."""

    count: int


@dataclass(frozen=True)
class Retire:
    """Stop these processes (no longer counted); their exits are expected."""

    pids: tuple[int, ...]
    reason: str


@dataclass(frozen=True)
class Wake:
    """Call :meth:`Policy.timer` after ``delay`` seconds (replaces any pending wake-up)."""

    delay: float


@dataclass(frozen=True)
class CancelWake:
    """Forget the pending wake-up, if any."""


Action = Spawn | Retire | Wake | CancelWake | Transition


class Policy:
    """One watcher's state and respawn decisions; see the module docstring.

    ``config`` is read live (``set`` changes it); ``uniform`` draws the ``max_age`` variance.
    """

    def __init__(
        self,
        config: WatcherConfig,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.config = config
        self._uniform = uniform
        self.state = State.STOPPED
        #: counted processes, spawn order: pid -> when it is due for replacement (max_age)
        self.running: dict[int, float] = {}
        #: quick failures in a row (reset by a process that stayed up)
        self.failures = 0
        #: failed spawns in a row (``max_retry``)
        self.spawn_failures = 0
        #: the delay of the last backoff (0: none since the last reset)
        self.delay = 0.0
        #: when the pending retry is due (wall time), None when none is pending
        self.retry_at: float | None = None
        #: the cause of the last failure, for replies, logs and events
        self.last_failure: str | None = None

    # -- the one place the state changes ------------------------------------------------------

    def go(self, new: State, now: float, **payload: object) -> list[Action]:
        """Change the state; the returned :class:`Transition` is what announces it."""
        old, self.state = self.state, new
        if old is new:
            return []
        return [Transition(old, new, {"time": now, **payload})]

    # -- views --------------------------------------------------------------------------------

    @property
    def missing(self) -> int:
        return max(self.config.numprocesses - len(self.running), 0)

    def _surplus(self) -> list[Action]:
        extra = len(self.running) - self.config.numprocesses
        if extra <= 0:
            return []
        oldest = tuple(list(self.running)[:extra])
        return [self.release(oldest, "surplus")]

    def release(self, pids: tuple[int, ...], reason: str) -> Retire:
        """Stop counting ``pids`` (they are being retired) and say so."""
        for pid in pids:
            self.running.pop(pid, None)
        return Retire(pids, reason)

    # -- processes ----------------------------------------------------------------------------

    def spawned(self, pid: int, now: float) -> None:
        """A process started; it counts from now on."""
        self.spawn_failures = 0
        due = math.inf
        if self.config.max_age > 0:
            due = now + self.config.max_age + self._uniform(0, max(self.config.max_age_variance, 0))
        self.running[pid] = due

    def spawn_failed(self, now: float, cause: str) -> list[Action]:
        """A spawn failed (the OS refused: ENOENT, EMFILE, EAGAIN...)."""
        self.spawn_failures += 1
        retries = self.config.max_retry
        if retries >= 0 and self.spawn_failures > retries and not self.running:
            self.last_failure = cause
            self.retry_at = None
            return [CancelWake(), *self.go(State.STOPPED, now, expected=False)]
        return self._quick_failure(now, cause)

    def exited(self, pid: int, now: float, ran_for: float, expected: bool) -> list[Action]:
        """A process exited (``expected``: circusd ended it); decide about its replacement."""
        if self.running.pop(pid, None) is None or self.state not in RUNNING:
            return []  # retired, or the watcher is stopping: nothing to replace
        if not self.config.respawn:
            if self.running or self.state is State.STARTING:
                return []
            return [CancelWake(), *self.go(State.STOPPED, now, expected=False)]
        if expected:
            return self.reconcile(now)
        if ran_for >= self.config.min_uptime:
            self._reset()
            if self.state is State.BACKOFF:  # a healthy exit ends the backoff for all
                self.retry_at = None
                return [CancelWake(), *self.go(State.ACTIVE, now), *self.reconcile(now)]
            return self.reconcile(now)
        return self._quick_failure(now, f"exited after {ran_for:.2f}s (min_uptime is "
                                        f"{self.config.min_uptime:g}s)")  # fmt: skip

    def _reset(self) -> None:
        self.failures = 0
        self.delay = 0.0
        self.last_failure = None

    def _quick_failure(self, now: float, cause: str) -> list[Action]:
        self.failures += 1
        self.last_failure = cause
        limit = self.config.give_up_after
        if limit and self.failures >= limit:
            self.retry_at = None
            fatal = self.go(State.FATAL, now, failures=self.failures, reason=cause)
            return [CancelWake(), *fatal]
        if self.retry_at is not None:
            return []  # already waiting: respawned with the others when the timer fires
        if self.config.min_uptime <= 0 or self.config.backoff_start <= 0:
            return self.reconcile(now)  # protection turned off: respawn at once
        delay = self.config.backoff_start if self.delay <= 0 else self.delay * 2
        self.delay = min(delay, max(self.config.backoff_max, self.config.backoff_start))
        self.retry_at = now + self.delay
        actions: list[Action] = [Wake(self.delay)]
        if self.state is not State.STARTING:  # a start announces its backoff when it ends
            actions += self._backoff(now)
        return actions

    def _backoff(self, now: float) -> list[Action]:
        assert self.retry_at is not None
        return self.go(
            State.BACKOFF,
            now,
            delay=self.delay,
            retry_at=self.retry_at,
            failures=self.failures,
            reason=self.last_failure,
        )

    def timer(self, now: float) -> list[Action]:
        """The backoff is over: respawn what is missing."""
        if self.retry_at is None:
            return []
        self.retry_at = None
        if self.state is State.BACKOFF:
            return [*self.go(State.ACTIVE, now), *self.reconcile(now)]
        return self.reconcile(now)

    # -- housekeeping -------------------------------------------------------------------------

    def reconcile(self, now: float) -> list[Action]:
        """Reach the target count: spawn the missing (unless held back), retire the surplus."""
        if self.state is not State.ACTIVE:
            return self._surplus() if self.state is State.BACKOFF else []
        actions = self._surplus()
        if self.missing and self.config.respawn:
            actions.insert(0, Spawn(self.missing))
        return actions

    def tick(self, now: float) -> list[Action]:
        """The ``check_delay`` pass: ``max_age`` replacements (new ones first), then the count."""
        if self.state is not State.ACTIVE:
            return []
        expired = tuple(pid for pid, due in self.running.items() if due <= now)
        if not expired:
            return self.reconcile(now)
        retire = self.release(expired, "max_age")
        return [*self.reconcile(now), retire]

    def count_changed(self, now: float) -> list[Action]:
        """``numprocesses`` changed (incr, decr, set, reloadconfig): spawn or retire now.

        Unlike an exit, a command's new processes are spawned even with ``respawn = false``.
        While backing off only the surplus goes; the retry spawns the rest (or, if nothing is
        missing any more, the backoff ends).
        """
        if self.state is State.BACKOFF:
            if self.missing:
                return self._surplus()
            self.retry_at = None
            return [CancelWake(), *self.go(State.ACTIVE, now), *self._surplus()]
        if self.state is not State.ACTIVE:
            return []
        actions = self._surplus()
        if self.missing:
            actions.insert(0, Spawn(self.missing))
        return actions

    # -- operations ---------------------------------------------------------------------------

    def starting(self, now: float) -> list[Action]:
        """A ``start`` begins: a fresh start (failure counts cleared, no backoff pending)."""
        self._reset()
        self.spawn_failures = 0
        self.retry_at = None
        return [CancelWake(), *self.go(State.STARTING, now)]

    def started(self, now: float) -> list[Action]:
        """The ``start`` spawned what it could: active, or held back by a failure."""
        if self.state is not State.STARTING:
            return []  # stopped meanwhile (max_retry, respawn = false, a stop)
        if self.retry_at is not None:
            return self._backoff(now)
        return self.go(State.ACTIVE, now)

    def stopping(self, now: float) -> list[Action]:
        """A ``stop`` begins: no more respawns or retries."""
        self.retry_at = None
        return [CancelWake(), *self.go(State.STOPPING, now)]

    def stopped(self, now: float, expected: bool = True) -> list[Action]:
        self.running.clear()
        return self.go(State.STOPPED, now, expected=expected)
