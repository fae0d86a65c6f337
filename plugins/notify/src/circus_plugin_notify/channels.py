"""Delivering an alert: by e-mail (SMTP) and by webhook (HTTP POST of a JSON document).

SMTP goes through the standard library's ``smtplib`` in a worker thread (``asyncio.to_thread``),
never on the plugin's event loop; the webhook through httpx's asyncio client. :func:`deliver`
retries a failed delivery a bounded number of times with a doubling pause, then logs the loss.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from circus_plugin_notify.alert import Alert
from circus_plugin_notify.settings import EmailSettings, WebhookSettings

#: seconds before the first retry; doubled each time, capped
RETRY_DELAY = 1.0
RETRY_DELAY_MAX = 30.0


class Channel(Protocol):
    name: str

    async def send(self, alert: Alert) -> None: ...

    async def close(self) -> None: ...


class EmailChannel:
    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self.name = f"e-mail to {', '.join(settings.to)} via {settings.host}:{settings.port}"

    async def send(self, alert: Alert) -> None:
        s = self.settings
        message = alert.email(s.sender, list(s.to), s.subject_prefix)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        smtp: smtplib.SMTP
        if s.tls == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        with smtp:
            if s.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if s.user:
                smtp.login(s.user, s.password or "")
            smtp.send_message(message)

    async def close(self) -> None:
        pass


class WebhookChannel:
    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.name = f"webhook {settings.url}"
        self._client = httpx.AsyncClient(timeout=settings.timeout)

    async def send(self, alert: Alert) -> None:
        response = await self._client.post(self.settings.url, json=alert.document())
        response.raise_for_status()

    async def close(self) -> None:
        await self._client.aclose()


async def deliver(channel: Channel, alert: Alert, retries: int, log: Any) -> bool:
    """Send with up to ``retries`` retries; True when it went out."""
    delay = RETRY_DELAY
    for attempt in range(retries + 1):
        try:
            await channel.send(alert)
        except Exception as exc:  # any failure of the network or the server
            reason = f"{type(exc).__name__}: {exc}"
            if attempt == retries:
                log.error(f"alert lost: {channel.name} failed {attempt + 1} time(s): {reason}",
                          watcher=alert.watcher, kind=alert.kind)
                return False
            log.warning(f"{channel.name} failed ({reason}); retrying in {delay:g}s",
                        watcher=alert.watcher, kind=alert.kind)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_DELAY_MAX)
        else:
            return True
    return False
