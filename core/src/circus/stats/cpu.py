"""CPU percentages from successive CPU-time readings, over a window of about one second.

psutil's ``cpu_percent()`` measures since the previous call on the same handle, so two
``stats`` a few milliseconds apart gave 0.0 or 100.0 (10 ms clock ticks), and 0.19's ``dstats``
slept 10 ms on the event loop to get a reading at all. Here every round records
``(time, cpu seconds)`` per process and a percentage is measured against the newest reading at
least :data:`WINDOW` old (or the oldest one at least :data:`MIN_WINDOW` old). A process with no
such reading yet (just started, or first round) gets its lifetime average, which is a real
figure rather than 0.19's constant 0.0.

Percentages are of one CPU (a process using two cores fully shows 200.0), as in psutil.
"""

from __future__ import annotations

from collections import deque

#: seconds a measurement spans when history allows
WINDOW = 1.0
#: below this, clock-tick granularity (10 ms) makes the figure noise: use the lifetime average
MIN_WINDOW = 0.2
#: a process not seen for this long is forgotten (bounded memory across pid churn)
FORGET = 30.0

Key = tuple[int, float]  # (pid, create_time): a recycled pid is another process


class CpuTracker:
    """Per-process history of CPU-time readings; only the sampler thread uses it."""

    def __init__(self) -> None:
        self._history: dict[Key, deque[tuple[float, float]]] = {}
        self._last_prune = 0.0

    def percent(self, key: Key, now: float, cpu_seconds: float, age: float) -> float:
        """CPU percent of the process ``key`` whose CPU time is ``cpu_seconds`` at ``now``
        (monotonic seconds); records the reading."""
        history = self._history.setdefault(key, deque())
        ref: tuple[float, float] | None = None
        for t, cpu in history:  # oldest first
            if now - t >= WINDOW or (ref is None and now - t >= MIN_WINDOW):
                ref = (t, cpu)
        if ref is not None:
            value = (cpu_seconds - ref[1]) / (now - ref[0]) * 100.0
        elif age > 0:
            value = cpu_seconds / age * 100.0
        else:
            value = 0.0
        if not history or now - history[-1][0] >= MIN_WINDOW / 2:
            history.append((now, cpu_seconds))
        # only the newest reading at least WINDOW old can be a reference: drop older ones, which
        # bounds the history to about WINDOW / (MIN_WINDOW / 2) + 1 readings
        while len(history) > 1 and now - history[1][0] >= WINDOW:
            history.popleft()
        return round(max(value, 0.0), 1)

    def prune(self, now: float) -> None:
        """Forget processes with no reading for :data:`FORGET` seconds."""
        if now - self._last_prune < FORGET:
            return
        self._last_prune = now
        stale = [key for key, hist in self._history.items() if now - hist[-1][0] > FORGET]
        for key in stale:
            del self._history[key]

    def __len__(self) -> int:
        return len(self._history)
