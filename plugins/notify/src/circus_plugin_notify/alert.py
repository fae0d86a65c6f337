"""One alert and its renderings: a one-line summary, an e-mail, a JSON document.

The JSON carries ``text`` (the summary) so Slack- and Mattermost-style incoming webhooks show it
as is, next to structured fields for anything else.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

#: The alert kinds, which are also the values of the ``on`` option.
KINDS = ("crashing", "flapping", "stopped", "recovered")


@dataclass(frozen=True)
class Alert:
    """Something an operator should hear about."""

    kind: str  # one of KINDS
    watcher: str
    time: float
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    #: alerts about this watcher (or, globally, rate-limited ones) not sent before this one
    suppressed: int = 0

    def document(self, host: str | None = None) -> dict[str, Any]:
        """The webhook's JSON body."""
        text = self.summary
        if self.suppressed:
            text += f" ({self.suppressed} earlier alert(s) suppressed)"
        return {
            "text": text,
            "kind": self.kind,
            "watcher": self.watcher,
            "time": self.time,
            "host": host or socket.gethostname(),
            "details": self.details,
            "suppressed": self.suppressed,
        }

    def email(self, sender: str, recipients: list[str], prefix: str,
              host: str | None = None) -> EmailMessage:
        doc = self.document(host)
        message = EmailMessage()
        message["Subject"] = f"{prefix} {self.watcher}: {self.kind}".strip()
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        when = datetime.fromtimestamp(self.time, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        lines = [doc["text"], "", f"host:    {doc['host']}", f"watcher: {self.watcher}",
                 f"when:    {when}"]
        lines += [f"{key}: {json.dumps(value)}" for key, value in self.details.items()]
        message.set_content("\n".join(lines) + "\n")
        return message
