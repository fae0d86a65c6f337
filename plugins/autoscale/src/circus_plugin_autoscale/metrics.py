"""Where the load figure comes from: the watcher's cpu, a command's output, or a URL's body.

Each source returns a number or raises :class:`MetricError` saying why there is none; the
plugin logs that (once per distinct reason) and treats the sample as unknown, which changes
nothing. Every read is bounded by ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from typing import Any


class MetricError(Exception):
    """No value this time (the reason is the message)."""


def average_cpu(info: Any) -> float:
    """Average ``cpu`` of the processes in a ``stats {name}`` reply's ``info``."""
    values = []
    if isinstance(info, dict):
        for process in info.values():
            if isinstance(process, dict):
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    values.append(float(process["cpu"]))  # "N/A" is skipped
    if not values:
        raise MetricError("no process with a readable cpu")
    return sum(values) / len(values)


def parse_number(text: str, source: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise MetricError(f"{source} gave {text.strip()[:60]!r}, not a number") from None


async def from_command(command: str, timeout: float) -> float:
    """Run ``command`` in a shell; its standard output is the value."""
    proc = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise MetricError(f"metric_command took more than {timeout:g}s") from None
    if proc.returncode != 0:
        raise MetricError(f"metric_command exited with {proc.returncode}: "
                          f"{err.decode(errors='replace').strip()[:200]}")
    return parse_number(out.decode(errors="replace"), "metric_command")


def _fetch(url: str, timeout: float) -> str:
    # settings accepted only http(s) URLs
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read(4096)
    return body.decode(errors="replace")


async def from_url(url: str, timeout: float) -> float:
    """GET ``url``; the body (a number) is the value. Runs in a worker thread."""
    try:
        async with asyncio.timeout(timeout + 1):
            text = await asyncio.to_thread(_fetch, url, timeout)
    except (OSError, TimeoutError) as exc:
        raise MetricError(f"GET {url} failed: {exc}") from None
    return parse_number(text, url)
