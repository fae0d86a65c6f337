"""The resource_watcher's rule: samples in, decisions out (no sockets, no clock of its own).

Each *entity* (a process of the watcher, or with ``process_children`` one child of a process)
is judged on its own samples. A limit is *exceeded* by a sample (over ``max_cpu``, under
``min_cpu``, over ``max_mem``, under ``min_mem``, over ``health_threshold``); when one kind
has been exceeded continuously for ``loop_rate * max_count`` seconds, the entity is due for
the action and its history starts over.

0.19 judged the maximum (or minimum) over all processes at each ``loop_rate`` check and acted
after ``max_count`` + 1 consecutive exceeded checks, so its counts could mix processes and its
delay was the window plus up to one ``loop_rate``. Here the window is the same, sampled every
``sample_rate`` seconds, so the action comes within one ``sample_rate`` of the window's end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from circus_plugin_resource_watcher.settings import ResourceSettings, human_to_bytes

#: (main process pid, child pid or None)
Entity = tuple[int, int | None]
KINDS = ("over_cpu", "under_cpu", "over_memory", "under_memory", "over_health")


@dataclass(frozen=True)
class Sample:
    """One reading of a process; None when circusd could not read a value (``"N/A"``)."""

    cpu: float | None
    mem: float | None  # percent of RAM
    rss: int | None  # bytes

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Sample:
        """From a process info object of the ``stats`` reply (or the stats stream)."""
        def number(key: str) -> float | None:
            try:
                return float(info[key])
            except (KeyError, TypeError, ValueError):
                return None

        rss: int | None
        try:
            rss = human_to_bytes(str(info["mem_info1"]))
        except (KeyError, ValueError):
            rss = None
        return cls(cpu=number("cpu"), mem=number("mem"), rss=rss)

    def describe(self) -> str:
        rss = "?" if self.rss is None else f"{self.rss / 1024 ** 2:.1f} MiB"
        return f"cpu {self.cpu}%, mem {self.mem}% ({rss})"


def exceeded(settings: ResourceSettings, sample: Sample) -> list[str]:
    """The kinds of limit this sample exceeds.

    An unknown value exceeds nothing (0.19 counted ``"N/A"`` as 100 %, so a process it could
    not read was restarted).
    """
    kinds = []
    cpu = sample.cpu
    if cpu is not None and settings.max_cpu is not None and cpu > settings.max_cpu:
        kinds.append("over_cpu")
    if cpu is not None and settings.min_cpu is not None and cpu <= settings.min_cpu:
        kinds.append("under_cpu")
    for kind, limit, over in (("over_memory", settings.max_mem, True),
                              ("under_memory", settings.min_mem, False)):
        if limit is None:
            continue
        value = sample.mem if limit.percent else sample.rss
        if value is not None and (value > limit.value if over else value < limit.value):
            kinds.append(kind)
    threshold = settings.health_threshold
    if (threshold is not None and cpu is not None and sample.mem is not None
            and (cpu + sample.mem) / 2 > threshold):
        kinds.append("over_health")
    return kinds


@dataclass(frozen=True)
class Decision:
    """An entity is due for the action: which limits, since when, and its last sample."""

    entity: Entity
    kinds: tuple[str, ...]
    sample: Sample


@dataclass
class _History:
    since: dict[str, float] = field(default_factory=dict)  # kind -> first exceeded sample


class ResourceTracker:
    """Per-entity histories of exceeded limits."""

    def __init__(self, settings: ResourceSettings) -> None:
        self.settings = settings
        self._entities: dict[Entity, _History] = {}

    def observe(self, entity: Entity, sample: Sample,
                now: float) -> tuple[list[str], Decision | None]:
        """Record a sample; returns the kinds it exceeds and a decision when one is due."""
        kinds = exceeded(self.settings, sample)
        history = self._entities.setdefault(entity, _History())
        for kind in KINDS:
            if kind in kinds:
                history.since.setdefault(kind, now)
            else:
                history.since.pop(kind, None)
        due = tuple(k for k, t in history.since.items() if now - t >= self.settings.window)
        if not due:
            return kinds, None
        history.since.clear()
        return kinds, Decision(entity, due, sample)

    def keep_only(self, alive: set[Entity]) -> None:
        """Forget entities that no longer exist (their pids may be reused later)."""
        for entity in set(self._entities) - alive:
            del self._entities[entity]

    def reset(self) -> None:
        """Start every history over (after the whole watcher was restarted)."""
        self._entities.clear()
