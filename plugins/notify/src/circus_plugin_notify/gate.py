"""Which alerts are sent: per-watcher spacing and a global rate limit, both bounded.

The incident tracker already sends one alert per incident; this gate protects the inbox from
what is left: a watcher that keeps recovering and breaking again (``min_interval`` between two
new incidents of one watcher), and many watchers failing at once (``rate_limit`` alerts per
hour, a token bucket). What is held back is counted and the count rides on the next alert that
goes out ("3 earlier alerts suppressed"), so nothing disappears without a trace. A recovery is
sent only when its incident's alert was sent (else it would announce the end of something
nobody heard of), and is never held back: it is bounded by the alerts before it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from circus_plugin_notify.alert import Alert


@dataclass(frozen=True)
class GateRule:
    min_interval: float = 300.0
    rate_limit: int = 30  # alerts per hour, all watchers together
    period: float = 3600.0


class AlertGate:
    def __init__(self, rule: GateRule) -> None:
        self.rule = rule
        self._tokens = float(rule.rate_limit)
        self._refilled: float | None = None
        self._last_sent: dict[str, float] = {}
        self._announced: set[str] = set()
        self._held: dict[str, int] = {}
        self._held_globally = 0

    @property
    def held(self) -> int:
        """Alerts held back so far and not yet reported on a later alert."""
        return self._held_globally + sum(self._held.values())

    def admit(self, alert: Alert, now: float) -> Alert | None:
        """The alert to send (with its ``suppressed`` count), or None to hold it back."""
        w = alert.watcher
        if alert.kind == "recovered":
            if w not in self._announced:
                return None
            self._announced.discard(w)
            return self._stamp(alert)
        escalation = "escalated_from" in alert.details
        last = self._last_sent.get(w)
        if not escalation and last is not None and now - last < self.rule.min_interval:
            self._held[w] = self._held.get(w, 0) + 1
            return None
        self._refill(now)
        if self._tokens < 1:
            self._held_globally += 1
            return None
        self._tokens -= 1
        self._last_sent[w] = now
        self._announced.add(w)
        return self._stamp(alert)

    def _stamp(self, alert: Alert) -> Alert:
        held = self._held.pop(alert.watcher, 0) + self._held_globally
        self._held_globally = 0
        return replace(alert, suppressed=alert.suppressed + held) if held else alert

    def _refill(self, now: float) -> None:
        if self._refilled is not None:
            rate = self.rule.rate_limit / self.rule.period
            self._tokens = min(float(self.rule.rate_limit),
                               self._tokens + (now - self._refilled) * rate)
        self._refilled = now
