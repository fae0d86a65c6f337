"""An append-only log file that follows rotation.

logrotate (and friends) rename or delete the file and expect the writer to start a new one,
either on SIGHUP or by noticing. Before each line this compares the path's device/inode with the
open file's, one ``stat`` per event, and reopens when they differ or the path is gone, so a
rotated-away file never swallows lines even when nobody sends SIGHUP.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from circus.errors import ConfigError


def check_writable(path: Path) -> None:
    """Raise ConfigError unless ``path`` can be appended to (or created) by this process."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory", key="filename")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {path}: directory {parent} does not exist",
                          key="filename")
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        raise ConfigError(f"cannot write {path}: permission denied", key="filename")


class LogFile:
    """Line-oriented appender: every line is flushed as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()
        check_writable(self.path)
        try:
            self._file = self._open()
        except OSError as exc:
            raise ConfigError(f"cannot open {self.path}: {exc.strerror}", key="filename") from None

    def _open(self) -> TextIO:
        return open(self.path, "a", encoding="utf-8")

    def _identity(self) -> tuple[int, int]:
        st = os.fstat(self._file.fileno())
        return st.st_dev, st.st_ino

    def rotated(self) -> bool:
        """Whether the path no longer names the open file (renamed, deleted, replaced)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._identity()

    def reopen(self) -> None:
        """Close and open the path again (a new file if it was rotated away).

        The new file is opened before the old one is closed, so a failure (directory gone,
        permission changed) leaves the logger writing where it wrote before and raises.
        """
        new = self._open()
        old, self._file = self._file, new
        old.close()

    def write_line(self, line: str) -> None:
        if self.rotated():
            self.reopen()
        self._file.write(line)
        self._file.flush()

    def close(self) -> None:
        self._file.close()
