"""When a failing health check should lead to an action: a pure policy, no I/O, no clock.

Health observers (http_observer, redis_observer) probe a service every ``loop_rate`` seconds.
Circus 0.19 restarted the watcher on *every* failed probe, forever: one slow answer meant a
restart, and a service that cannot come back was restarted every period without end. This
policy makes that decision explicit and bounded:

- act after ``max_failures`` *consecutive* failed checks (one success starts the count over);
- after acting, failures within ``cooldown`` seconds are not counted: the watcher is coming
  back, and restarting it again while it boots would only make things worse;
- if the service is still unhealthy once the cooldown is over, the next action waits twice as
  long (exponential back-off, at most ``max_cooldown``); a success restores the base cooldown.

The observer feeds every check result with a monotonic timestamp and executes the verdict, so
the rule is tested with plain numbers (``core/tests/test_plugin_failures.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """What one check result means."""

    HEALTHY = "healthy"  # the check passed
    RECOVERED = "recovered"  # the check passed after failures or after an action
    FAILING = "failing"  # counted failure, below the threshold
    COOLING = "cooling"  # failure during the cooldown after an action: not counted
    ACT = "act"  # threshold reached: restart the watcher (or send the signal) now


@dataclass(frozen=True)
class FailureRule:
    """The knobs of :class:`FailurePolicy` (the observers' options of the same names)."""

    max_failures: int = 1
    cooldown: float = 10.0
    max_cooldown: float = 600.0

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError(f"max_failures: must be at least 1, got {self.max_failures}")
        if self.cooldown < 0:
            raise ValueError(f"cooldown: must be >= 0, got {self.cooldown:g}")
        if self.max_cooldown < self.cooldown:
            raise ValueError(
                f"max_cooldown: must be >= cooldown ({self.cooldown:g}), got {self.max_cooldown:g}"
            )


class FailurePolicy:
    """Consecutive-failure counter with a backing-off cooldown after each action."""

    def __init__(self, rule: FailureRule) -> None:
        self.rule = rule
        #: consecutive counted failures since the last success or action
        self.failures = 0
        #: actions taken since the service was last seen healthy
        self.actions = 0
        self._quiet_until: float | None = None
        self._next_cooldown = rule.cooldown

    @property
    def quiet_until(self) -> float | None:
        """Until when failures are not counted (after an action), or None."""
        return self._quiet_until

    def record(self, ok: bool, now: float) -> Verdict:
        """Feed one check result taken at ``now`` (monotonic seconds); returns the verdict."""
        if ok:
            troubled = self.failures > 0 or self.actions > 0
            self.failures = 0
            self.actions = 0
            self._quiet_until = None
            self._next_cooldown = self.rule.cooldown
            return Verdict.RECOVERED if troubled else Verdict.HEALTHY
        if self._quiet_until is not None and now < self._quiet_until:
            return Verdict.COOLING
        self.failures += 1
        if self.failures < self.rule.max_failures:
            return Verdict.FAILING
        self.failures = 0
        self.actions += 1
        self._quiet_until = now + self._next_cooldown
        self._next_cooldown = min(self._next_cooldown * 2, self.rule.max_cooldown)
        return Verdict.ACT
