"""``circusctl listen``: print every event published on circusd's pub/sub endpoint.

Runs until interrupted (Ctrl-C, SIGINT, SIGTERM), which is the normal way to end it, so that
ends with status 0. Each line is ``<topic>: <payload>`` as text, flushed at once so a pipe
(``circusctl listen | grep reap``) sees events as they happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TextIO

from circus.curve import ClientKeys
from circus.wire.subscriber import open_subscriber


async def _print_events(
    endpoint: str, topics: list[str], out: TextIO, curve: ClientKeys | None = None
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        async with open_subscriber(endpoint, topics, curve=curve) as subscriber:
            while not stop.is_set():
                receiver = asyncio.ensure_future(subscriber.recv_batch())
                done, _ = await asyncio.wait(
                    {receiver, stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                if receiver not in done:
                    receiver.cancel()
                    break
                for topic, payload in receiver.result():
                    out.write(f"{topic.decode('utf-8', 'replace')}: "
                              f"{payload.decode('utf-8', 'replace')}\n")
                out.flush()
    finally:
        stopper.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def listen(
    endpoint: str, topics: list[str], out: TextIO = sys.stdout, curve: ClientKeys | None = None
) -> int:
    """Subscribe to ``topics`` (prefixes; ``[""]`` = everything) and print until interrupted."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_print_events(endpoint, topics, out, curve))
    return 0
