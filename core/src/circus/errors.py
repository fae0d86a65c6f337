"""Errors shared by the daemon, the clients and the plugins.

The errno values are part of the wire contract (Circus 0.19, ``circus/commands/errors.py``):
clients such as the original ``circusctl`` branch on them, so they never change.
"""

from __future__ import annotations

import errno as _errno
from enum import IntEnum


class Errno(IntEnum):
    """``errno`` of an error reply on the control channel."""

    NOT_SPECIFIED = 0
    INVALID_JSON = 1
    UNKNOWN_COMMAND = 2
    MESSAGE_ERROR = 3
    OS_ERROR = 4
    COMMAND_ERROR = 5
    BAD_MSG_DATA_ERROR = 6


class CircusError(Exception):
    """Base of every error circus raises on purpose."""


class CommandError(CircusError):
    """A command failed; the controller turns it into an error reply with this errno."""

    errno: Errno = Errno.COMMAND_ERROR

    def __init__(self, reason: str, errno: Errno | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if errno is not None:
            self.errno = errno


class MessageError(CommandError):
    """Bad properties, unknown watcher, invalid option: errno 3."""

    errno = Errno.MESSAGE_ERROR


class ConflictError(CommandError):
    """An operation that cannot run now (errno 5, reason names the operation in progress)."""

    errno = Errno.COMMAND_ERROR


class SpawnError(OSError, CircusError):
    """A child could not be started, with the operating system's reason.

    It is an :class:`OSError` (``errno``, ``strerror``, ``filename`` = the program) so code that
    catches ``OSError`` keeps working, and carries ``code`` (``"EMFILE"``, ``"EAGAIN"``,
    ``"ENOMEM"``, ``"ENOENT"``, ``"EACCES"``...) so a reply to ``start``/``incr``/``add`` can say
    what failed instead of a bare ok. ``str()`` is one line fit for a reply or a log record.
    """

    def __init__(self, errno: int, strerror: str, command: str) -> None:
        super().__init__(errno, strerror, command)
        self.command = command

    @property
    def code(self) -> str:
        """Symbolic errno (``EMFILE``...), or the number when the system has no name for it."""
        return _errno.errorcode.get(self.errno, str(self.errno)) if self.errno else "unknown"

    def __str__(self) -> str:
        return f"cannot start {self.command!r}: {self.strerror} ({self.code})"


class CallError(CircusError):
    """A client-side failure: timeout, closed transport, undecodable reply."""


class CallTimeout(CallError):
    """No reply arrived in time. The daemon may be down, unreachable or slow."""


class ConfigError(CircusError):
    """A configuration mistake, located as precisely as possible.

    ``str()`` gives one line naming the file, section and key, which is what circusd prints
    before exiting with status 1 (no traceback for user mistakes).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        section: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.section = section
        self.key = key

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.section:
            where.append(f"[{self.section}]")
        if self.key:
            where.append(self.key)
        return f"{': '.join(where) if where else 'config'}: {self.message}"
