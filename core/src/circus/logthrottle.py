"""Rate-limited warnings, for lines a remote peer can provoke at will.

A client that sends thousands of badly framed messages must not be able to fill circusd's log
(issue 9 measured 8,000 WARNING lines for 8,000 messages). :class:`Throttle` lets ``burst`` lines
through per ``period`` and counts the rest; the next line that gets through carries
``suppressed=N``, and :meth:`Throttle.flush` reports a count still pending (at shutdown), so
nothing disappears without a trace.
"""

from __future__ import annotations

import time
from typing import Any

from circus.logs import get_logger


class Throttle:
    """At most ``burst`` warnings per ``period`` seconds through one logger."""

    def __init__(self, logger_name: str, *, period: float = 10.0, burst: int = 5) -> None:
        self._log = get_logger(logger_name)
        self.period = period
        self.burst = burst
        self._window_start = -period
        self._emitted = 0
        self.suppressed = 0

    def warning(self, event: str, **fields: Any) -> bool:
        """Log ``event`` unless the budget of this window is spent; true when logged."""
        return self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> bool:
        """As :meth:`warning`, at error level (a failure that repeats, like a stats round's);
        both levels share the budget."""
        return self._emit("error", event, fields)

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> bool:
        now = time.monotonic()
        if now - self._window_start >= self.period:
            self._window_start = now
            self._emitted = 0
        if self._emitted >= self.burst:
            self.suppressed += 1
            return False
        self._emitted += 1
        if self.suppressed:
            fields["suppressed"] = self.suppressed
            self.suppressed = 0
        getattr(self._log, level)(event, **fields)
        return True

    def flush(self, event: str = "similar warnings suppressed") -> None:
        """Report the count of lines suppressed since the last one logged, if any."""
        if self.suppressed:
            self._log.warning(event, suppressed=self.suppressed)
            self.suppressed = 0


__all__ = ["Throttle"]
