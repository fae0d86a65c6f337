"""``Notify``: the incident rule of :mod:`circus_plugin_notify.incidents` wired to circusd.

Everything runs in the plugin's loop thread (``AsyncCircusPlugin``): events in order, recovery
timers on the same loop, and one sender task that owns delivery, fed through a bounded queue so a
slow mail server never delays event handling and a long outage cannot grow memory.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from typing import Any, ClassVar

from circus.plugins import AsyncCircusPlugin, Scheduled
from circus.protocol import res_name
from circus_plugin_notify.alert import Alert
from circus_plugin_notify.channels import Channel, EmailChannel, WebhookChannel, deliver
from circus_plugin_notify.gate import AlertGate
from circus_plugin_notify.incidents import Action, ArmRecovery, Disarm, IncidentTracker, Send
from circus_plugin_notify.settings import OPTIONS, NotifySettings

#: alerts waiting for delivery; more are dropped (and logged) rather than queued without limit
QUEUE_SIZE = 100
#: seconds ``handle_stop`` gives queued alerts to go out
FLUSH_TIMEOUT = 5.0


def _settings(config: dict[str, Any]) -> NotifySettings:
    return NotifySettings.from_config(config)


class Notify(AsyncCircusPlugin):
    """Options in the README: channels (``email_to``..., ``webhook_url``), the incident rule
    (``crashes``, ``crash_window``, ``recovery_time``), ``on``, ``watchers``, ``min_interval``,
    ``rate_limit``, ``retries``."""

    name = "notify"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names
    #: it only listens: no command is ever sent
    required_commands: ClassVar[frozenset[str] | None] = frozenset()

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.settings = _settings(self.config)
        self.tracker = IncidentTracker(self.settings.incidents)
        self.gate = AlertGate(self.settings.gate)
        own = str(self.config.get("name") or "")
        self._own = res_name(own) if own else None
        self._timers: dict[str, Scheduled] = {}
        self._channels: list[Channel] = []
        self._queue: asyncio.Queue[Alert] | None = None
        self._sender: asyncio.Task[None] | None = None
        #: alerts sent per channel name, for tests and the stop log line
        self.sent: dict[str, int] = {}

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse bad option values when circusd loads its configuration."""
        _settings(config)

    def wanted(self, watcher: str) -> bool:
        if watcher == self._own:
            return False
        return any(fnmatch.fnmatchcase(watcher, p.lower()) for p in self.settings.watchers)

    # -- plugin hooks ---------------------------------------------------------------------

    async def handle_init(self) -> None:
        s = self.settings
        if s.email is not None:
            self._channels.append(EmailChannel(s.email))
        if s.webhook is not None:
            self._channels.append(WebhookChannel(s.webhook))
        self._queue = asyncio.Queue(QUEUE_SIZE)
        self._sender = self.loop.create_task(self._send_loop(self._queue))
        self.log.info(
            f"notifying {', '.join(sorted(s.on))} of watchers {' '.join(s.watchers)} "
            f"by {'; '.join(c.name for c in self._channels)}"
        )

    async def handle_recv(self, data: tuple[str, str]) -> None:
        event = self.parse_event(data)
        if event is not None and self.wanted(event[0]):
            self.execute(self.tracker.on_event(*event, time.time()))

    async def handle_stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._queue is not None and self._sender is not None and not self._sender.done():
            try:
                async with asyncio.timeout(FLUSH_TIMEOUT):
                    await self._queue.join()
            except TimeoutError:
                self.log.error(f"{self._queue.qsize()} alert(s) not delivered before stopping")
        if self._sender is not None:
            self._sender.cancel()
        for channel in self._channels:
            await channel.close()
        if self.gate.held:
            self.log.warning(f"{self.gate.held} alert(s) were held back by the rate limits "
                             "and never reported")

    # -- actions ----------------------------------------------------------------------------

    def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._offer(action.alert)
            elif isinstance(action, ArmRecovery):
                self._disarm(action.watcher)
                self._timers[action.watcher] = self.schedule(
                    action.delay, self._recovery_due, action.watcher)
            elif isinstance(action, Disarm):
                self._disarm(action.watcher)

    def _disarm(self, watcher: str) -> None:
        timer = self._timers.pop(watcher, None)
        if timer is not None:
            timer.cancel()

    def _recovery_due(self, watcher: str) -> None:
        self._timers.pop(watcher, None)
        self.execute(self.tracker.recovery_due(watcher, time.time()))

    def _offer(self, alert: Alert) -> None:
        self.log.warning(alert.summary, watcher=alert.watcher, kind=alert.kind)
        if alert.kind not in self.settings.on:
            return
        admitted = self.gate.admit(alert, time.monotonic())
        if admitted is None:
            self.log.warning(f"{alert.watcher}: {alert.kind} alert held back by min_interval "
                             "or rate_limit", watcher=alert.watcher)
            return
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(admitted)
        except asyncio.QueueFull:
            self.log.error(f"alert dropped: {QUEUE_SIZE} alerts already wait for delivery",
                           watcher=alert.watcher, kind=alert.kind)

    async def _send_loop(self, queue: asyncio.Queue[Alert]) -> None:
        while True:
            alert = await queue.get()
            try:
                for channel in self._channels:
                    if await deliver(channel, alert, self.settings.retries, self.log):
                        self.sent[channel.name] = self.sent.get(channel.name, 0) + 1
                        self.log.info(f"alert sent by {channel.name}: {alert.summary}",
                                      watcher=alert.watcher, kind=alert.kind)
            finally:
                queue.task_done()
