"""When to add or remove processes: a pure policy (values and times in, decisions out).

The rule, designed so a watcher never oscillates:

- **thresholds with a band** (hysteresis): more processes while the metric stays above
  ``scale_up``, fewer while it stays below ``scale_down`` (which must be lower);
- **sustained**: the metric must stay beyond a threshold for ``up_after`` / ``down_after``
  seconds, every sample of that time (a spike or a dip changes nothing);
- **cooldown**: after a change, nothing changes for ``cooldown`` seconds, and the samples of
  that time are not counted (new processes start idle, removed ones take their load along);
- **prediction** (cpu only, where the load is shared by the processes): a removal that would
  bring the average of the remaining processes to ``scale_up`` or more is not made, since it
  would call for the addition it just undid;
- **bounds**: never below ``min`` nor above ``max``; a count outside them (someone ran
  ``incr``) is brought back at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from circus_plugin_autoscale.settings import AutoscaleSettings


@dataclass(frozen=True)
class Decision:
    """Change the watcher from ``current`` to ``target`` processes, because ``reason``."""

    current: int
    target: int
    reason: str

    @property
    def delta(self) -> int:
        return self.target - self.current


class AutoscalePolicy:
    def __init__(self, settings: AutoscaleSettings) -> None:
        self.settings = settings
        self._above_since: float | None = None
        self._below_since: float | None = None
        self._quiet_until = -math.inf
        self.held: str | None = None  # why the last due removal was not made (for the log)

    def changed(self, now: float) -> None:
        """A change was made (by us): start the cooldown, forget the streaks."""
        self._quiet_until = now + self.settings.cooldown
        self._above_since = self._below_since = None

    def observe(self, value: float | None, current: int, now: float) -> Decision | None:
        """One sample of the metric (None: unknown) with the current number of processes."""
        s = self.settings
        self.held = None
        if current < s.min:
            return Decision(current, s.min, f"{current} processes, below min {s.min}")
        if current > s.max:
            return Decision(current, s.max, f"{current} processes, above max {s.max}")
        if now < self._quiet_until or value is None:
            self._above_since = self._below_since = None
            return None
        if value > s.scale_up:
            self._below_since = None
            since = self._above_since = self._above_since if self._above_since is not None \
                else now
            if now - since >= s.up_after and current < s.max:
                target = min(s.max, current + s.step)
                return Decision(current, target, f"{s.metric} {value:.1f} above {s.scale_up:g} "
                                                 f"for {now - since:.1f}s")
            return None
        if value < s.scale_down:
            self._above_since = None
            since = self._below_since = self._below_since if self._below_since is not None \
                else now
            if now - since >= s.down_after and current > s.min:
                target = max(s.min, current - s.step)
                if s.metric == "cpu" and target > 0:
                    predicted = value * current / target
                    if predicted >= s.scale_up:
                        self.held = (f"not removing: the {target} remaining processes would "
                                     f"average {predicted:.1f} (scale_up {s.scale_up:g})")
                        return None
                return Decision(current, target, f"{s.metric} {value:.1f} below "
                                                 f"{s.scale_down:g} for {now - since:.1f}s")
            return None
        self._above_since = self._below_since = None  # inside the band: steady
        return None
