"""The latency probe of ``probe_plugins`` as an async plugin (ours only: 0.19 has no async
flavour, and its runner imports ``probe_plugins``, so this lives apart).

``bench/bench_plugins.py`` runs it beside the threaded probe: same events, same ``status`` call,
but the handler runs on the plugin's loop thread, so no handler thread is woken per event.
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from probe_plugins import _text

from circus.plugins import AsyncCircusPlugin


class AsyncProbe(AsyncCircusPlugin):
    """The ``latency`` mode of :class:`Probe` as an async plugin: its handlers run on the
    plugin's loop thread (no handler thread to wake) and it awaits ``call``."""

    name = "probe"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.out_path = str(self.config["out"])
        self.out: TextIO | None = None
        self.ready = False

    async def handle_init(self) -> None:
        self.out = open(self.out_path, "a", buffering=1)  # noqa: SIM115 - closed in handle_stop

    def handle_stop(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    async def handle_recv(self, data: Any) -> None:
        now = time.time()
        topic = _text(data[0])
        if self.out is None:
            return
        if topic.endswith(".updated") and not self.ready:
            self.ready = True
            self.out.write("ready\n")
        if topic == "watcher.victim.reap":
            pid = json.loads(data[1])["process_pid"]
            await self.call("status")
            answered = time.time()
            self.out.write(f"recv {pid} {now:.6f}\ncall {pid} {answered:.6f}\n")
