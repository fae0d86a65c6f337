"""Which events a plugin missed: gaps, daemon restarts and the start-up window.

circusd stamps every event with ``boot`` (drawn once per daemon start) and ``seq`` (+1 per event
from 1). A subscriber that received everything sees ``seq`` climb by one; any jump is events it
never got (ZeroMQ dropped them, or the plugin's own bounded queue did), and a new ``boot`` means
the daemon restarted and its state may have changed entirely. This module turns the stamps into
:class:`Gap` reports; the runtime passes each one to ``handle_gap`` so the plugin can
resynchronise (see :mod:`circus.plugins.snapshot`).

The stamps are read from the raw payload without decoding the JSON: the publisher appends
``"boot": "<id>", "seq": <n>``, so the last ``"boot": "`` is ours (a string value containing that
text has its quotes escaped). This keeps the per-event cost to one ``rfind`` and one regex match.
Events without the stamps (a Circus 0.19 daemon) are delivered untracked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

GapKind = Literal["start", "gap", "restart"]

_BOOT_KEY = b'"boot": "'
#: what the publisher appends: ``"boot": "<hex>", "seq": <n>`` (``"by"`` may follow)
_STAMP = re.compile(rb'"boot": "([^"\\]*)", "seq": (\d+)')


@dataclass(frozen=True)
class Gap:
    """Events the plugin did not receive, reported before the first event after them.

    ``kind``: ``"start"`` (events the daemon published before the plugin's first one),
    ``"gap"`` (a jump in ``seq``: events lost on the way) or ``"restart"`` (a new daemon: its
    state may differ from anything seen so far). ``missed``: how many events of the current boot
    were not received. ``dropped``: how many events the plugin's own queue discarded since the
    last report because the plugin did not keep up (included in ``missed`` when they belong to
    this gap). ``seq`` and ``boot``: the event about to be delivered.
    """

    kind: GapKind
    missed: int
    dropped: int
    seq: int
    boot: str


@dataclass
class EventCounters:
    """Running totals since the plugin started (read them from any thread)."""

    received: int = 0
    missed: int = 0
    dropped: int = 0
    gaps: int = 0
    restarts: int = 0


def read_stamp(payload: bytes) -> tuple[str, int] | None:
    """``(boot, seq)`` of a raw event payload, or ``None`` when it carries none."""
    found = _find_stamp(payload)
    return None if found is None else (found[0].decode("ascii", "replace"), found[1])


def _find_stamp(payload: bytes) -> tuple[bytes, int] | None:
    at = payload.rfind(_BOOT_KEY)
    if at < 0:
        return None
    match = _STAMP.match(payload, at)
    if match is None:
        return None
    return match.group(1), int(match.group(2))


class SequenceTracker:
    """Follows ``(boot, seq)`` across events and reports what was missed.

    ``contiguous`` is true when the plugin subscribes to every event: only then is a jump in
    ``seq`` a loss. With a narrower subscription a jump is normal, so only restarts are reported.
    """

    def __init__(self, *, contiguous: bool) -> None:
        self.contiguous = contiguous
        self.counters = EventCounters()
        self.boot: str | None = None
        self.seq = 0
        self._boot_raw: bytes | None = None

    def observe(self, payload: bytes, dropped: int = 0) -> Gap | None:
        """Account for one received event; the gap before it, if any.

        ``dropped``: events the plugin's queue discarded since the previous call.
        """
        counters = self.counters
        counters.received += 1
        counters.dropped += dropped
        stamp = _find_stamp(payload)
        if stamp is None:
            return None
        boot_raw, seq = stamp
        gap: Gap | None = None
        if boot_raw != self._boot_raw:  # bytes compared: decoded only when it changes
            self._boot_raw = boot_raw
            boot = boot_raw.decode("ascii", "replace")
            kind: GapKind = "start" if self.boot is None else "restart"
            if kind == "restart":
                counters.restarts += 1
            missed = seq - 1 if self.contiguous else 0
            if missed > 0 or kind == "restart":
                gap = Gap(kind, missed, dropped, seq, boot)
            self.boot = boot
        elif self.contiguous and seq > self.seq + 1:
            gap = Gap("gap", seq - self.seq - 1, dropped, seq, self.boot or "")
            counters.gaps += 1
        elif dropped:
            # drops not visible as a jump (narrow subscription): still tell the plugin
            gap = Gap("gap", 0, dropped, seq, self.boot or "")
        if gap is not None:
            counters.missed += gap.missed
        self.seq = seq
        return gap
