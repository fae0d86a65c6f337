"""The flapping rule as a pure state machine: events in, actions out.

No sockets, no clocks, no timers: the plugin feeds every event (with the daemon's timestamp) and
executes the returned actions, so the whole rule is unit-testable with synthetic event streams and
the plugin stays a thin shell around it.

The rule (contract 7.2, made exact): ``attempts`` *unexpected* exits of a watcher's processes
within ``window`` seconds (sliding window over the events' ``time``) mean the watcher is flapping;
the plugin stops it, starts it again ``retry_in`` seconds after the stop took effect, and does so up
to ``max_retry`` times in a row (-1 = forever); after that it leaves the watcher stopped.

Which exits are unexpected: a ``reap`` whose payload says ``expected: false`` (our circusd marks
exits it caused itself). The original circusd does not send ``expected``; then a reap counts unless
its pid had a ``kill`` event first (stop, restart, kill and quit all publish ``kill`` before the
exit; exits caused by the ``signal`` command cannot be told apart there).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from circus_plugin_flapping.settings import FlappingSettings

PLUGIN_WATCHER_PREFIX = "plugin:"


class Phase(Enum):
    """Where a watcher stands from the plugin's point of view."""

    WATCHING = "watching"  # running (or stopped by nobody we know of): exits are counted
    STOPPING = "stopping"  # the plugin asked circusd to stop it
    RETRY_WAIT = "retry_wait"  # stopped by the plugin, a start is scheduled
    GAVE_UP = "gave_up"  # stopped by the plugin after max_retry, left stopped
    HELD = "held"  # stopped by someone else: never restarted by the plugin


@dataclass(frozen=True)
class StopWatcher:
    """Ask circusd to stop ``watcher`` (keep asking until it did, while the phase is STOPPING)."""

    watcher: str
    reason: str


@dataclass(frozen=True)
class ScheduleStart:
    """Start ``watcher`` after ``delay`` seconds (then call :meth:`FlappingTracker.retry_due`)."""

    watcher: str
    delay: float


@dataclass(frozen=True)
class CancelStart:
    """Cancel the pending start of ``watcher``, if any."""

    watcher: str


@dataclass(frozen=True)
class StartWatcher:
    """Ask circusd to start ``watcher`` now."""

    watcher: str


@dataclass(frozen=True)
class RefreshSettings:
    """Re-read the watcher's ``flapping.*`` overrides (``options`` command)."""

    watcher: str


@dataclass(frozen=True)
class Note:
    """Something an operator should read in the plugin's log (why the plugin did or did not act)."""

    watcher: str
    message: str


Action = StopWatcher | ScheduleStart | CancelStart | StartWatcher | RefreshSettings | Note


@dataclass
class WatcherState:
    """What the plugin remembers about one watcher (keyed by the topic's res_name)."""

    phase: Phase = Phase.WATCHING
    exits: deque[float] = field(default_factory=deque)
    tries: int = 0
    giving_up: bool = False
    own_start_pending: bool = False
    restarted_at: float | None = None
    killed_pids: set[int] = field(default_factory=set)


class FlappingTracker:
    """Applies the flapping rule to a stream of events; see the module docstring.

    ``settings_for(watcher)`` gives the effective settings of a watcher (plugin options plus its
    overrides); the plugin keeps that cache and refreshes it when told to (RefreshSettings).
    """

    def __init__(self, settings_for: Callable[[str], FlappingSettings]) -> None:
        self._settings_for = settings_for
        self._states: dict[str, WatcherState] = {}

    def state(self, watcher: str) -> WatcherState:
        return self._states.setdefault(watcher, WatcherState())

    def known(self, watcher: str) -> bool:
        return watcher in self._states

    def on_event(
        self, watcher: str, action: str, payload: Mapping[str, Any], now: float
    ) -> list[Action]:
        """Feed one event; ``now`` is used when the payload carries no ``time``."""
        if watcher.startswith(PLUGIN_WATCHER_PREFIX):
            # Plugin watchers (this one included) are respawned by circusd with its own backoff;
            # stopping one would only take a tool away, and stopping ourselves would end us.
            return []
        when = payload.get("time")
        t = float(when) if isinstance(when, int | float) else now
        handler = {
            "reap": self._on_reap,
            "kill": self._on_kill,
            "stop": self._on_stop,
            "start": self._on_start,
            "updated": self._on_updated,
            "add": self._on_add,
            "remove": self._on_remove,
        }.get(action)
        if handler is None:
            return []
        return handler(watcher, payload, t)

    def retry_due(self, watcher: str, now: float) -> list[Action]:
        """The timer of a ScheduleStart fired: start the watcher unless that became wrong.

        Exits are counted again from this moment (a process may crash before the ``start``
        event or the command's reply arrives); the ``start`` event that follows is ours.
        """
        st = self._states.get(watcher)
        if st is None or st.phase is not Phase.RETRY_WAIT:
            return []
        st.phase = Phase.WATCHING
        st.own_start_pending = True
        st.restarted_at = now
        st.exits.clear()
        return [StartWatcher(watcher)]

    def stop_failed(self, watcher: str) -> bool:
        """Whether a failed stop request should be sent again (the plugin still wants it)."""
        st = self._states.get(watcher)
        return st is not None and st.phase is Phase.STOPPING

    def start_failed(self, watcher: str) -> list[Action]:
        """A start request failed: go back to waiting and try again after ``retry_in``."""
        st = self._states.get(watcher)
        if st is None or not st.own_start_pending or st.phase is not Phase.WATCHING:
            return []
        st.own_start_pending = False
        st.phase = Phase.RETRY_WAIT
        return [ScheduleStart(watcher, self._settings_for(watcher).retry_in)]

    # -- event handlers -------------------------------------------------------------------

    def _on_kill(self, watcher: str, payload: Mapping[str, Any], t: float) -> list[Action]:
        pid = payload.get("process_pid")
        if isinstance(pid, int):
            self.state(watcher).killed_pids.add(pid)
        return []

    def _expected(self, st: WatcherState, payload: Mapping[str, Any]) -> bool:
        pid = payload.get("process_pid")
        killed = isinstance(pid, int) and pid in st.killed_pids
        if isinstance(pid, int):
            st.killed_pids.discard(pid)
        flag = payload.get("expected")
        if isinstance(flag, bool):
            return flag
        return killed

    def _on_reap(self, watcher: str, payload: Mapping[str, Any], t: float) -> list[Action]:
        st = self.state(watcher)
        if self._expected(st, payload) or st.phase is not Phase.WATCHING:
            return []
        settings = self._settings_for(watcher)
        if not settings.active:
            st.exits.clear()
            return []
        st.exits.append(t)
        while st.exits and st.exits[0] < t - settings.window:
            st.exits.popleft()
        if len(st.exits) < settings.attempts:
            return []
        return self._flapping(watcher, st, settings)

    def _flapping(self, watcher: str, st: WatcherState, cfg: FlappingSettings) -> list[Action]:
        first = st.exits[0]
        st.exits.clear()
        if st.restarted_at is not None and first - st.restarted_at > cfg.stable_after:
            st.tries = 0
        what = f"{cfg.attempts} unexpected exits within {cfg.window:g}s"
        st.phase = Phase.STOPPING
        if cfg.max_retry == -1 or st.tries < cfg.max_retry:
            st.tries += 1
            st.giving_up = False
            budget = "unlimited" if cfg.max_retry == -1 else str(cfg.max_retry)
            reason = (
                f"{watcher}: flapping ({what}): stopping it, "
                f"retry {st.tries}/{budget} in {cfg.retry_in:g}s"
            )
        else:
            st.giving_up = True
            reason = (
                f"{watcher}: flapping ({what}) after {st.tries} retries "
                f"(max_retry = {cfg.max_retry}): stopping it for good"
            )
        return [StopWatcher(watcher, reason)]

    def _on_stop(self, watcher: str, payload: Mapping[str, Any], t: float) -> list[Action]:
        st = self.state(watcher)
        st.exits.clear()
        st.killed_pids.clear()
        st.own_start_pending = False
        if st.phase is Phase.STOPPING:
            if st.giving_up:
                st.phase = Phase.GAVE_UP
                msg = (
                    f"{watcher}: left stopped after {st.tries} retries; "
                    "start it by hand once fixed (that resets the count)"
                )
                return [Note(watcher, msg)]
            st.phase = Phase.RETRY_WAIT
            return [ScheduleStart(watcher, self._settings_for(watcher).retry_in)]
        pending = st.phase is Phase.RETRY_WAIT
        st.phase = Phase.HELD
        st.tries = 0
        st.restarted_at = None
        actions: list[Action] = [CancelStart(watcher)]
        if pending:
            actions.append(Note(watcher, f"{watcher}: stopped by someone else: retry cancelled"))
        return actions

    def _on_start(self, watcher: str, payload: Mapping[str, Any], t: float) -> list[Action]:
        st = self.state(watcher)
        if st.own_start_pending:
            # Ours (its reply and this event race; either order is fine).
            st.own_start_pending = False
            st.restarted_at = t
            return []
        # Started by someone else (circusctl, reloadconfig, a restart): a fresh start.
        pending = st.phase is Phase.RETRY_WAIT
        self._states[watcher] = WatcherState()
        actions: list[Action] = [CancelStart(watcher), RefreshSettings(watcher)]
        if pending:
            actions.append(Note(watcher, f"{watcher}: started by someone else: retry cancelled"))
        return actions

    def _on_updated(self, watcher: str, payload: Mapping[str, Any], t: float) -> list[Action]:
        return [RefreshSettings(watcher)]

    def _on_add(self, watcher: str, payload: Mapping[str, Any], t: float) -> list[Action]:
        self._states[watcher] = WatcherState()
        return [CancelStart(watcher), RefreshSettings(watcher)]

    def _on_remove(self, watcher: str, payload: Mapping[str, Any], t: float) -> list[Action]:
        self._states.pop(watcher, None)
        return [CancelStart(watcher)]
