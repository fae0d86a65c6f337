"""The libzmq listener's memory guard (circus.listeners.router), in this process.

circusd reads the wire itself whenever it can (test_controller_native.py); the libzmq ROUTER
remains for CURVE and for endpoints only libzmq understands, such as an abstract ``ipc://@``
socket, which is what this test binds. There libzmq buffers an unfinished multipart message
without limit, and the guard must notice the growth and re-bind, which frees it.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import zmq
import zmq.asyncio
from support import zmtp_unfinished

from circus.binding import BindPolicy
from circus.listeners.router import RouterListener
from circus.logthrottle import Throttle
from circus.memguard import GrowthTrip, rss_bytes


def test_the_guard_rebinds_when_an_unfinished_message_balloons() -> None:
    name = f"circus-guard-{uuid.uuid4().hex}"

    async def scenario() -> tuple[int, int, int]:
        context = zmq.asyncio.Context()
        wakeup = asyncio.Event()
        listener = RouterListener(
            f"ipc://@{name}", context, BindPolicy(), keep_bytes=1 << 20, hard_bytes=32 << 20,
            wakeup=wakeup.set, warn=Throttle("test"), trip=GrowthTrip(limit=48 << 20),
        )
        await listener.open()
        before = rss_bytes() or 0
        flood = threading.Thread(target=zmtp_unfinished, args=("\0" + name,),
                                 kwargs={"seconds": 4.0}, daemon=True)
        flood.start()
        peak = before
        try:
            while flood.is_alive():
                await listener.service()
                assert listener.receive() is None  # nothing complete ever arrives
                peak = max(peak, rss_bytes() or 0)
                await asyncio.sleep(0.01)
        finally:
            flood.join(10)
            await listener.close(0)
            context.term()
        return listener.rebinds, peak - before, (rss_bytes() or 0) - before

    rebinds, peak, left = asyncio.run(scenario())
    assert rebinds >= 1
    # unguarded, the same flood grew this process by more than a gigabyte
    assert peak >> 20 < 600, f"peak growth {peak >> 20} MiB"
    assert left >> 20 < 256, f"growth {left >> 20} MiB"
