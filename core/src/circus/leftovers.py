"""Children of a circusd killed by SIGKILL: remembered on disk, ended by the next circusd.

A circusd that dies by SIGKILL (OOM killer, ``kill -9``) cannot stop its children; they keep
running under PID 1, and a restarted circusd on the same config would spawn a second copy of
every process and plugin. So circusd keeps a small state file listing the process groups it
spawned with their start times, and its successor on the same control endpoint reads it at
start and ends the groups it can prove are the ones listed: the leader runs with the very start
time recorded (a recycled pid has another), and leads its own group. Nothing else is touched.

PR_SET_PDEATHSIG was not used: it can only be set inside the child (a preexec step that costs
~2 ms per spawn instead of ~0.15 ms), it would only reach the direct child and not its group
(the ``sleep`` of ``sh -c 'sleep 3600'``), and it fires when the forking *thread* exits.

The file lives in ``$CIRCUS_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/circus``, else
``/run/circus`` for root, else ``/tmp/circus-<uid>``; the directory must belong to circusd's
user and not be writable by others (it names processes to kill). The file is named after a hash
of the control endpoint: only one circusd can bind an endpoint, so "the next circusd on this
endpoint" is exactly the successor. It is written 50 ms after a spawn or exit (a
burst of spawns costs one write), atomically (write + rename), and removed at a clean exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import stat
import tempfile
from pathlib import Path
from typing import Any

import psutil
import structlog

from circus.process import group_alive_without_leader, group_has_live_members

log = structlog.get_logger("circus.leftovers")

#: how long leftovers get to stop on SIGTERM before SIGKILL
LEFTOVER_GRACE = 10.0
#: spawns and exits within this delay share one write of the state file; it also keeps the
#: write out of the exit -> respawn path (a circusd killed within it may miss its newest child)
FLUSH_DELAY = 0.05
_FORMAT = 1


class RuntimeDirError(Exception):
    """The runtime directory is unsafe or cannot be created (the message says why)."""


def runtime_dir() -> Path:
    """The directory of circusd's state files (created 0700 when missing, then checked)."""
    explicit = os.environ.get("CIRCUS_RUNTIME_DIR")
    if explicit:
        path = Path(explicit)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "circus"
    elif os.geteuid() == 0:
        path = Path("/run/circus")
    else:
        path = Path(tempfile.gettempdir()) / f"circus-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise RuntimeDirError(f"{path} is not a directory")
    if info.st_uid != os.geteuid():
        raise RuntimeDirError(f"{path} belongs to uid {info.st_uid}, not to circusd's")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RuntimeDirError(f"{path} is writable by other users")
    return path


def state_path(endpoint: str) -> Path:
    digest = hashlib.sha256(endpoint.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return runtime_dir() / f"children-{digest}.json"


def _start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid: int, started: float) -> bool:
    """True when ``pid`` is the process started at ``started`` (not a recycled pid)."""
    now = _start_time(pid)
    return now is not None and abs(now - started) < 1e-3


class ChildRegistry:
    """The state file of the running circusd: its own identity and its children's groups."""

    def __init__(self, path: Path, endpoint: str) -> None:
        self.path = path
        self.endpoint = endpoint
        self._groups: dict[int, float | None] = {}
        self._pending = False
        started = _start_time(os.getpid())
        self._owner = {"pid": os.getpid(), "started": started}
        self._loop = asyncio.get_running_loop()
        self._failed = False
        self._written = False
        self._closed = False

    def add(self, pid: int) -> None:
        self._groups[pid] = None  # start time read at the next write, off the spawn path
        self._schedule()

    def discard(self, pid: int) -> None:
        if self._groups.pop(pid, None) is not None:
            self._schedule()

    def _schedule(self) -> None:
        if not self._pending:
            self._pending = True
            self._loop.call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Write the file now (atomically); a failure is logged once, then retried silently."""
        self._pending = False
        if self._closed:
            return
        for pid, started in list(self._groups.items()):
            if started is None:
                found = _start_time(pid)
                if found is None:  # already gone
                    del self._groups[pid]
                else:
                    self._groups[pid] = found
        data = {
            "format": _FORMAT,
            "endpoint": self.endpoint,
            "circusd": self._owner,
            "groups": [[pid, started] for pid, started in self._groups.items()],
        }
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "w") as handle:
                json.dump(data, handle)
            os.replace(tmp, self.path)
        except OSError as exc:
            if not self._failed:
                log.error(
                    "cannot write the children state file; after a kill -9 the next "
                    "circusd will not find these children",
                    path=str(self.path),
                    error=exc.strerror,
                )
            self._failed = True
        else:
            self._failed = False
            self._written = True

    def close(self) -> None:
        """Clean exit: every child is gone, nothing is left for a successor to end. A circusd
        that never spawned (e.g. could not bind: another one owns the endpoint) leaves the
        file alone, since it may be that other circusd's."""
        self._closed = True
        if self._written:
            with contextlib.suppress(OSError):
                self.path.unlink()


async def take_over(endpoint: str) -> ChildRegistry | None:
    """At start: end what a killed predecessor left, then track our own children.

    Returns None (after a warning) when no safe runtime directory is available: circusd then
    runs without the protection rather than not at all.
    """
    try:
        path = state_path(endpoint)
    except (OSError, RuntimeDirError) as exc:
        log.warning(
            "no runtime directory for the children state file; children of a circusd "
            "killed by SIGKILL will not be ended at the next start",
            error=str(exc),
        )
        return None
    await end_leftovers(path)
    return ChildRegistry(path, endpoint)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        info = path.lstat()
        if info.st_uid != os.geteuid() or not stat.S_ISREG(info.st_mode):
            log.warning(
                "ignoring a children state file not owned by circusd's user", path=str(path)
            )
            return None
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring an unreadable children state file", path=str(path), error=str(exc))
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    return data


def _groups_of(data: dict[str, Any]) -> list[tuple[int, float]]:
    groups = []
    for item in data.get("groups", []):
        if (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], int)
            and isinstance(item[1], (int, float))
        ):
            groups.append((item[0], float(item[1])))
    return groups


def _proven(groups: list[tuple[int, float]]) -> list[int]:
    """Leaders still running with the start time recorded, still leading their group."""
    found = []
    for pid, started in groups:
        if pid > 1 and _same_process(pid, started):
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:
                    found.append(pid)
    return found


async def end_leftovers(path: Path, grace: float = LEFTOVER_GRACE) -> list[int]:
    """End the process groups a dead predecessor left running; returns their leaders' pids.

    Does nothing when the file's circusd still runs (the endpoint is then taken and this
    circusd will fail to bind, as it should): its children are not leftovers.
    """
    data = _read(path)
    if data is None:
        return []
    owner = data.get("circusd") or {}
    owner_pid, owner_started = owner.get("pid"), owner.get("started")
    if (
        isinstance(owner_pid, int)
        and isinstance(owner_started, (int, float))
        and owner_pid != os.getpid()
        and _same_process(owner_pid, float(owner_started))
    ):
        log.warning(
            "the circusd that owns this endpoint still runs; its children are left alone",
            pid=owner_pid,
            path=str(path),
        )
        return []
    records = _groups_of(data)
    leaders = _proven(records)
    if not leaders:
        return []
    log.warning(
        "ending processes left running by a circusd that died without stopping them",
        pids=leaders,
        previous_circusd=owner_pid,
    )
    started = dict(records)
    for pid in leaders:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    delay = 0.005
    while True:
        left = [pid for pid in leaders if _group_left(pid, started[pid])]
        if not left or loop.time() >= deadline:
            break
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, 0.1)
    for pid in left:
        log.warning("leftover group ignored SIGTERM: SIGKILL", pgid=pid)
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    return leaders


def _group_left(pgid: int, leader_started: float) -> bool:
    """Is any process of the leftover group still there? (The leader is not our child: init
    reaps it, and its number is only recycled once the whole group is gone.)"""
    try:
        leader = psutil.Process(pgid)
        if abs(leader.create_time() - leader_started) < 1e-3:
            if leader.status() != psutil.STATUS_ZOMBIE:
                return True
            return group_has_live_members(pgid)  # a parent that does not reap: scan
    except psutil.Error:
        pass
    # zombies waiting for a slow reaper count as gone (the scan only runs while any remain)
    return group_alive_without_leader(pgid) and group_has_live_members(pgid)
