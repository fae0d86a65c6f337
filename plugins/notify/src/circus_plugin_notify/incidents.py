"""From circusd events to alerts: one *incident* per watcher, opened once, closed once.

Pure (no sockets, no clock, no timers): the plugin feeds events and executes the actions, so a
crash loop of thousands of exits is tested as a list of dicts (``tests/test_notify_incidents.py``).

- **crashing**: ``crashes`` unexpected exits within ``crash_window`` seconds. Unexpected means a
  ``reap`` with ``expected: false`` (our circusd); the original circusd sends no ``expected``,
  so there a reap counts unless a ``kill`` event for its pid came first.
- **flapping**: the watcher was stopped by a command right after crashing: the ``stop`` event
  says ``"by": "plugin:..."`` (our circusd names who sent the command), or, from daemons that
  do not say who, a ``stop`` within ``crash_window`` of an unexpected exit (which is what the
  flapping plugin does). A stop by anyone else (``circusctl``) is the operator's: no alert, and
  an open incident is closed quietly.
- **stopped**: circusd stopped the watcher on its own (``stop`` with ``expected: false``: it
  gave up respawning, every process exited with ``respawn = false``, a hook failed), or gave
  up on it after quick failures in a row (our ``fatal`` event, ``give_up_after``).
- **recovered**: the watcher of an open incident ran ``recovery_time`` seconds without an
  unexpected exit (and was not stopped meanwhile).

A ``backoff`` event (our circusd holds a crash loop's respawn back, docs/daemon.md) is part of
the crash incident, never an alert of its own: its ``failures`` (quick failures in a row) open
the *crashing* incident when they reach ``crashes`` even if the backoff spaced the exits wider
than ``crash_window``, and no recovery is declared before the watcher ran ``recovery_time``
after the retry (``retry_at``): a watcher waiting out a 30 s backoff is not running, so the
quiet time is no recovery (without this, a slow crash loop alternated crashing and recovered).

While an incident is open, more crashes and more stops of the same kind send nothing; a change
of kind (crashing, then stopped for flapping) sends one more alert, marked as an escalation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from circus_plugin_notify.alert import Alert


@dataclass(frozen=True)
class IncidentRule:
    crashes: int = 3
    crash_window: float = 60.0
    recovery_time: float = 30.0


@dataclass(frozen=True)
class Send:
    alert: Alert


@dataclass(frozen=True)
class ArmRecovery:
    """Call :meth:`IncidentTracker.recovery_due` for ``watcher`` after ``delay`` s (replacing
    any earlier timer of that watcher)."""

    watcher: str
    delay: float


@dataclass(frozen=True)
class Disarm:
    watcher: str


Action = Send | ArmRecovery | Disarm


@dataclass
class _State:
    crashes: deque[float] = field(default_factory=deque)
    exit_codes: deque[int | None] = field(default_factory=lambda: deque(maxlen=5))
    killed_pids: set[int] = field(default_factory=set)
    last_crash: float | None = None
    incident: str | None = None
    stopped: bool = False
    #: when circusd retries after its current backoff (no recovery before that + recovery_time)
    retry_at: float | None = None


def _fmt(seconds: float) -> str:
    return f"{seconds:g}s"


class IncidentTracker:
    """Per-watcher incident state; feed every event of the watchers you notify about."""

    def __init__(self, rule: IncidentRule) -> None:
        self.rule = rule
        self._states: dict[str, _State] = {}

    def incident(self, watcher: str) -> str | None:
        st = self._states.get(watcher)
        return st.incident if st else None

    def on_event(self, watcher: str, action: str, payload: dict[str, Any], now: float
                 ) -> list[Action]:
        when = payload.get("time")
        t = float(when) if isinstance(when, int | float) else now
        if action == "kill":
            pid = payload.get("process_pid")
            if isinstance(pid, int):
                self._state(watcher).killed_pids.add(pid)
            return []
        if action == "reap":
            return self._on_reap(watcher, payload, t)
        if action == "stop":
            return self._on_stop(watcher, payload, t)
        if action == "fatal":
            return self._on_fatal(watcher, payload, t)
        if action == "backoff":
            return self._on_backoff(watcher, payload, t)
        if action == "start":
            return self._on_start(watcher)
        if action == "remove":
            self._states.pop(watcher, None)
            return [Disarm(watcher)]
        return []

    def recovery_due(self, watcher: str, now: float) -> list[Action]:
        """A recovery timer fired: close the incident if nothing went wrong since."""
        st = self._states.get(watcher)
        if st is None or st.incident is None or st.stopped:
            return []
        # tolerate timer jitter of a few milliseconds
        if st.last_crash is not None and now - st.last_crash < self.rule.recovery_time - 0.05:
            return []
        if st.retry_at is not None and now - st.retry_at < self.rule.recovery_time - 0.05:
            return []  # still backing off, or not long enough since the retry
        kind, st.incident = st.incident, None
        st.crashes.clear()
        summary = (f"{watcher}: recovered: running for {_fmt(self.rule.recovery_time)} "
                   f"without a crash (after: {kind})")
        return [Send(Alert("recovered", watcher, now, summary, {"after": kind}))]

    # -- handlers -----------------------------------------------------------------------------

    def _state(self, watcher: str) -> _State:
        return self._states.setdefault(watcher, _State())

    def _unexpected(self, st: _State, payload: dict[str, Any]) -> bool:
        pid = payload.get("process_pid")
        killed = isinstance(pid, int) and pid in st.killed_pids
        if isinstance(pid, int):
            st.killed_pids.discard(pid)
        flag = payload.get("expected")
        return not flag if isinstance(flag, bool) else not killed

    def _on_reap(self, watcher: str, payload: dict[str, Any], t: float) -> list[Action]:
        st = self._state(watcher)
        if not self._unexpected(st, payload):
            return []
        code = payload.get("exit_code")
        st.exit_codes.append(code if isinstance(code, int) else None)
        st.last_crash = t
        st.crashes.append(t)
        while st.crashes and st.crashes[0] < t - self.rule.crash_window:
            st.crashes.popleft()
        actions: list[Action] = []
        if st.incident is None and len(st.crashes) >= self.rule.crashes:
            st.incident = "crashing"
            summary = (f"{watcher}: crashing: {len(st.crashes)} unexpected exits within "
                       f"{_fmt(self.rule.crash_window)} (last exit code {code})")
            actions.append(Send(Alert("crashing", watcher, t, summary, self._details(st))))
        if st.incident is not None and not st.stopped:
            actions.append(ArmRecovery(watcher, self.rule.recovery_time))
        return actions

    def _on_stop(self, watcher: str, payload: dict[str, Any], t: float) -> list[Action]:
        st = self._state(watcher)
        st.stopped = True
        st.retry_at = None  # a stop cancels the retry
        while st.crashes and st.crashes[0] < t - self.rule.crash_window:
            st.crashes.popleft()
        # crashes since the last recovery, within the window (a recovery forgets them)
        crashes = len(st.crashes)
        recent = crashes > 0
        by = payload.get("by")
        kind: str | None
        if payload.get("expected") is False:
            kind = "stopped"
            summary = (f"{watcher}: stopped by circusd itself, not by a command "
                       f"(it gave up respawning, or its processes exited with respawn off)")
        elif isinstance(by, str) and by.startswith("plugin:"):
            kind = "flapping" if recent or "flapping" in by else "stopped"
            summary = f"{watcher}: stopped by {by}" + (
                f" after {crashes} unexpected exit(s)" if recent else "")
        elif by is None and recent:
            kind = "flapping"
            summary = (f"{watcher}: stopped after {crashes} unexpected exit(s) within "
                       f"{_fmt(self.rule.crash_window)} (by the flapping plugin, most likely)")
        else:  # the operator's stop: theirs to know about
            kind = None
            summary = ""
        if kind is None:
            st.crashes.clear()
            st.incident = None
            return [Disarm(watcher)]
        return self._stopped(watcher, kind, summary, t, {} if by is None else {"by": by})

    def _on_backoff(self, watcher: str, payload: dict[str, Any], t: float) -> list[Action]:
        """circusd holds the respawn back after quick failures: part of the crash incident."""
        st = self._state(watcher)
        retry_at, delay = payload.get("retry_at"), payload.get("delay")
        if isinstance(retry_at, int | float):
            st.retry_at = float(retry_at)
        elif isinstance(delay, int | float):
            st.retry_at = t + float(delay)
        wait = max(0.0, st.retry_at - t) if st.retry_at is not None else 0.0
        failures = payload.get("failures")
        actions: list[Action] = []
        if (st.incident is None and isinstance(failures, int)
                and failures >= self.rule.crashes):
            st.incident = "crashing"
            summary = (f"{watcher}: crashing: {failures} quick failures in a row; circusd "
                       f"retries in {_fmt(round(wait, 2))} (backoff)")
            details = {**self._details(st), "failures": failures, "reason": payload.get("reason")}
            actions.append(Send(Alert("crashing", watcher, t, summary, details)))
        if st.incident is not None and not st.stopped:
            actions.append(ArmRecovery(watcher, wait + self.rule.recovery_time))
        return actions

    def _on_fatal(self, watcher: str, payload: dict[str, Any], t: float) -> list[Action]:
        """Our circusd gave up respawning (``give_up_after`` quick failures in a row)."""
        failures = payload.get("failures")
        reason = payload.get("reason")
        summary = f"{watcher}: circusd gave up on it (state fatal)"
        if isinstance(failures, int):
            summary += f" after {failures} quick failures in a row"
        if reason:
            summary += f": {reason}"
        return self._stopped(watcher, "stopped", summary, t, {"failures": failures,
                                                              "reason": reason})

    def _stopped(self, watcher: str, kind: str, summary: str, t: float,
                 extra: dict[str, Any]) -> list[Action]:
        """The watcher no longer runs: open (or escalate to) ``kind``, once."""
        st = self._state(watcher)
        st.stopped = True
        st.retry_at = None
        details = {**self._details(st), **extra}
        st.crashes.clear()
        actions: list[Action] = [Disarm(watcher)]
        if st.incident != kind:
            if st.incident is not None:
                details["escalated_from"] = st.incident
            st.incident = kind
            actions.append(Send(Alert(kind, watcher, t, summary, details)))
        return actions

    def _on_start(self, watcher: str) -> list[Action]:
        st = self._state(watcher)
        st.stopped = False
        st.retry_at = None  # a start while backing off tries at once
        st.killed_pids.clear()
        if st.incident is None:
            return []
        return [ArmRecovery(watcher, self.rule.recovery_time)]

    def _details(self, st: _State) -> dict[str, Any]:
        return {"crashes": len(st.crashes), "crash_window": self.rule.crash_window,
                "exit_codes": list(st.exit_codes)}
