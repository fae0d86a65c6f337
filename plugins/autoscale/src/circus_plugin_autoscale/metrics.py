"""Where the load figure comes from: the watcher's cpu, a command's output, or a URL's body.

Each source returns a number or raises :class:`MetricError` saying why there is none; the
plugin logs that (once per distinct reason) and treats the sample as unknown, which changes
nothing. Every read is bounded by ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import urllib.request
from typing import Any


class MetricError(Exception):
    """No value this time (the reason is the message)."""


def average_cpu(info: Any) -> float:
    """Average ``cpu`` of the processes in a ``stats {name}`` reply's ``info`` (or of the
    stats stream's latest samples, ``{pid: info}``)."""
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


class CommandMetric:
    """Runs ``command`` in a shell for each reading; its standard output is the value.

    The running child is remembered so :meth:`close` can end it when the plugin stops: a
    reading in flight must not outlive the plugin as an orphan.
    """

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        self._proc: asyncio.subprocess.Process | None = None

    async def read(self) -> float:
        self._proc = proc = await asyncio.create_subprocess_shell(
            self.command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
        )
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            await self.close()
            raise MetricError(f"metric_command took more than {self.timeout:g}s") from None
        finally:
            self._proc = None
        if proc.returncode != 0:
            raise MetricError(f"metric_command exited with {proc.returncode}: "
                              f"{err.decode(errors='replace').strip()[:200]}")
        return parse_number(out.decode(errors="replace"), "metric_command")

    async def close(self) -> None:
        """Kill (with the shell's own children: its session) and reap a reading in flight."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


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
