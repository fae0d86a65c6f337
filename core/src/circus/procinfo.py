"""The formats of process information (contract 3.3): memory and CPU time as 0.19 wrote them.

Memory is a human string (``"1.45M"``), CPU time ``"M:SS.cc"``, a vanished process the string
:data:`NO_SUCH_PROCESS`. Gathering the figures is :mod:`circus.stats`' job.
"""

from __future__ import annotations

NO_SUCH_PROCESS = "No such process (stopped?)"
_UNITS = "KMGTPEZY"


def human_bytes(num: float) -> str:
    """``"512B"`` below 1 KiB, else two decimals and a unit: ``"1.45M"``."""
    if num < 1024:
        return f"{int(num)}B"
    value = float(num)
    unit = ""
    for unit in _UNITS:
        value /= 1024.0
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.2f}{unit}"


def cpu_time(seconds: float) -> str:
    """CPU seconds as ``M:SS.cc``."""
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:05.2f}"


def parse_human_bytes(text: str) -> int | None:
    """The inverse of :func:`human_bytes` (``"1.45M"`` -> 1520435), ``None`` for ``"N/A"`` or
    anything else: metrics exporters read memory back from ``stats`` replies and the stats
    stream, whose wire format only carries the human string. Precise to the two decimals shown."""
    if not isinstance(text, str) or not text:
        return None
    if text.endswith("B"):
        number, scale = text[:-1], 1
    elif text[-1] in _UNITS:
        number, scale = text[:-1], 1024 ** (_UNITS.index(text[-1]) + 1)
    else:
        return None
    try:
        value = float(number)
    except ValueError:
        return None
    return int(value * scale) if value >= 0 else None
