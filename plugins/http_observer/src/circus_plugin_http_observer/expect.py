"""What a healthy HTTP answer is: expected status codes and, optionally, text in the body.

Kept apart from the probe so the rule is tested without a server, and so a bad option is
refused when circusd loads its configuration (one clear line) rather than at the first check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CODE = re.compile(r"^[1-5](?:\d\d|xx)$")


def parse_statuses(text: str) -> tuple[str, ...]:
    """``"200, 204"``, ``"2xx"``, ``"2xx,301"`` -> normalised patterns; ValueError otherwise."""
    patterns = tuple(p.strip().lower() for p in text.replace(" ", ",").split(",") if p.strip())
    if not patterns:
        raise ValueError("expected at least one status code or class such as 200 or 2xx")
    for pattern in patterns:
        if not _CODE.match(pattern):
            raise ValueError(f"{pattern!r} is not a status code (100-599) or class (2xx)")
    return patterns


@dataclass(frozen=True)
class Expectation:
    """``statuses``: patterns from :func:`parse_statuses`; ``body``: text that must appear."""

    statuses: tuple[str, ...] = ("2xx",)
    body: str | None = None

    def status_ok(self, status: int) -> bool:
        code = str(status)
        return any(p == code or (p.endswith("xx") and p[0] == code[0]) for p in self.statuses)

    def judge(self, status: int, body: str) -> tuple[bool, str]:
        """Whether the answer is healthy, and a one-line reason for the log."""
        if not self.status_ok(status):
            wanted = ",".join(self.statuses)
            return False, f"status {status} (expected {wanted})"
        if self.body is not None and self.body not in body:
            return False, f"status {status} but the body lacks {self.body!r}"
        return True, f"status {status}"
