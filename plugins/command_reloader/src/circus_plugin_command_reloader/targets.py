"""What each watcher depends on, and which watchers a batch of filesystem changes concerns.

No sockets and no timers: the plugin feeds it the watchers' ``cmd`` (from the ``get``
command) and batches of changed paths (from the notifier); it answers which directories to
watch and which watchers to restart. Files are recognised by a *signature* (resolved path,
inode, size, mtime), so the several events of one replacement (write a temporary file,
rename it over the old one) restart the watcher once, and a symlink that is re-pointed
(``current -> release-2``) counts as a change even if both targets are old files.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

Signature = tuple[str, int, int, int] | None


def signature(path: str) -> Signature:
    """Resolved path, inode, size and mtime (ns) of ``path``; None when it does not exist."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return None
    return (real, st.st_ino, st.st_size, st.st_mtime_ns)


def executable(cmd: str, working_dir: str | None = None, search_path: str | None = None
               ) -> str | None:
    """The file ``cmd`` runs: its first word, searched in PATH when it has no ``/``.

    0.19 resolved the *whole* ``cmd`` string as a path, so any ``cmd`` with arguments made
    it fail (B8). Returns None when the program cannot be found.
    """
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = cmd.split()
    if not words:
        return None
    program = words[0]
    if "/" not in program:
        found = shutil.which(program, path=search_path)
        return os.path.abspath(found) if found else None
    return os.path.abspath(os.path.join(working_dir or os.getcwd(), program))


@dataclass
class WatchedWatcher:
    """The files and directories one watcher is restarted for."""

    files: dict[str, Signature] = field(default_factory=dict)  # path -> last signature
    dirs: list[str] = field(default_factory=list)


class Targets:
    """Watchers -> what they depend on; changed paths -> watchers to restart."""

    def __init__(self) -> None:
        self._watchers: dict[str, WatchedWatcher] = {}

    def __contains__(self, watcher: object) -> bool:
        return watcher in self._watchers

    def names(self) -> list[str]:
        return sorted(self._watchers)

    def define(self, watcher: str, files: list[str], dirs: list[str]) -> None:
        """(Re)define what ``watcher`` depends on.

        A file already tracked keeps its reference signature: a refresh racing with a
        replacement must not adopt the new version silently. New files start from now.
        """
        known = self._watchers[watcher].files if watcher in self._watchers else {}
        self._watchers[watcher] = WatchedWatcher(
            files={path: known[path] if path in known else signature(path) for path in files},
            dirs=[os.path.abspath(d) for d in dirs],
        )

    def files_of(self, watcher: str) -> list[str]:
        entry = self._watchers.get(watcher)
        return sorted(entry.files) if entry else []

    def remove(self, watcher: str) -> None:
        self._watchers.pop(watcher, None)

    def directories(self) -> tuple[set[str], set[str]]:
        """(directories to watch for the files, directories to watch recursively).

        A file is watched through its directory, and through its resolved target's directory
        too: an editor or a deploy that replaces the file (or re-points a symlink) removes the
        watched inode, which a watch on the file itself would not survive.
        """
        flat: set[str] = set()
        for entry in self._watchers.values():
            for path in entry.files:
                for candidate in (path, os.path.realpath(path)):
                    parent = os.path.dirname(candidate)
                    if os.path.isdir(parent):
                        flat.add(parent)
        recursive = {d for e in self._watchers.values() for d in e.dirs if os.path.isdir(d)}
        return flat, recursive

    def changed(self, paths: set[str]) -> list[str]:
        """Watchers to restart for these changed paths (each at most once, sorted)."""
        touched = {os.path.abspath(p) for p in paths}
        parents = {str(parent) for p in touched for parent in Path(p).parents}
        result = []
        for name, entry in self._watchers.items():
            hit = False
            for path, old in entry.files.items():
                if path in touched or os.path.realpath(path) in touched or (
                        old is not None and old[0] in touched):
                    new = signature(path)
                    if new != old:
                        entry.files[path] = new
                        # a file that disappeared is not a new version: wait for it to come back
                        hit = hit or new is not None
            if any(d in touched or d in parents for d in entry.dirs):
                hit = True
            if hit:
                result.append(name)
        return sorted(result)
