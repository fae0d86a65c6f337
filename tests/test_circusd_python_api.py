"""get_arbiter with plugins from Python: the plugin runs as watcher ``plugin:NAME`` and works."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from support import wait_gone

from circus import get_arbiter


def test_get_arbiter_runs_a_plugin_watcher(tmp_path: Path) -> None:
    events_file = tmp_path / "events.log"
    arbiter = get_arbiter(
        [{"name": "web", "cmd": "sleep 120"}],
        plugins=[{"name": "logger", "use": "logger", "filename": str(events_file)}],
        endpoint=f"ipc://{tmp_path}/c.sock",
        pubsub_endpoint=f"ipc://{tmp_path}/p.sock",
    )

    async def main() -> None:
        await arbiter.start()
        try:
            plugin = arbiter.get_watcher("plugin:logger")
            assert plugin.is_plugin
            assert plugin.priority == 1
            assert plugin.state == "active"
            (plugin_pid,) = plugin.pids()
            web = arbiter.get_watcher("web")
            # the plugin subscribes after it started: keep causing events until it logs one
            deadline = time.monotonic() + 30
            while not events_file.exists() or "watcher.web." not in events_file.read_text():
                assert time.monotonic() < deadline, "the logger plugin never wrote an event"
                await web.incr(1)
                await web.decr(1)
                await asyncio.sleep(0.2)
        finally:
            await arbiter.quit()
            await arbiter.close()
        assert wait_gone(plugin_pid)

    asyncio.run(asyncio.wait_for(main(), 90))
