"""Signal names and numbers, as users write them in configs and commands.

Circus accepts ``15``, ``"15"``, ``"TERM"``, ``"sigterm"``, ``"SIGRTMIN+1"``: operators copy signal
names from ``kill -l``, man pages and older configs, so every spelling maps to one number here and
nowhere else.
"""

from __future__ import annotations

import re
import signal

_OFFSET = re.compile(r"^(RTMIN|RTMAX)\s*([+-])\s*(\d+)$")


def _valid_number(num: int) -> bool:
    return 0 < num < signal.NSIG


def _by_name(name: str) -> int | None:
    """Look a bare upper-case name (``TERM``, ``RTMIN+2``) up; ``None`` when unknown."""
    member = getattr(signal.Signals, "SIG" + name, None)
    if isinstance(member, signal.Signals):
        return int(member)
    match = _OFFSET.match(name)
    if match is None:
        return None
    base = signal.SIGRTMIN if match.group(1) == "RTMIN" else signal.SIGRTMAX
    offset = int(match.group(3))
    num = int(base) + offset if match.group(2) == "+" else int(base) - offset
    if not int(signal.SIGRTMIN) <= num <= int(signal.SIGRTMAX):
        return None
    return num


def to_signum(value: int | str) -> int:
    """Return the signal number for ``value``.

    Accepts an int, a numeric string, or a name with or without ``SIG`` in any case, including
    real-time offsets such as ``SIGRTMIN+1``. Raises :class:`ValueError` with a message naming
    the bad value for anything else (unknown name, out-of-range number, other types).
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid signal {value!r}: expected a signal name or number")
    if isinstance(value, int):
        num = value
    else:
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            num = int(text)
        else:
            name = text.upper()
            if name.startswith("SIG"):
                name = name[3:]
            found = _by_name(name)
            if found is None:
                raise ValueError(
                    f"unknown signal {value!r}: expected a name such as TERM, SIGHUP or "
                    "SIGRTMIN+1, or a number"
                )
            num = found
    if not _valid_number(num):
        raise ValueError(f"invalid signal number {num}: must be between 1 and {signal.NSIG - 1}")
    return num


def signal_name(num: int) -> str:
    """Return the conventional name of signal ``num`` (``SIGTERM``, ``SIGRTMIN+3``).

    Numbers without a name come back as their decimal string so callers can always print them.
    """
    try:
        return signal.Signals(num).name
    except ValueError:
        pass
    if int(signal.SIGRTMIN) < num < int(signal.SIGRTMAX):
        return f"SIGRTMIN+{num - int(signal.SIGRTMIN)}"
    return str(num)
