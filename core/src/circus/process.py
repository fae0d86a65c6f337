"""One child process: spawning it, noticing its exit at once, signalling it and its descendants.

Exits are noticed through a pidfd registered with the event loop (``os.pidfd_open`` +
``loop.add_reader``): the kernel wakes the loop the moment the child dies, so there is no
polling, no SIGCHLD handler and no thread per child. Only then is the child reaped (through
``Popen.poll``, which does a non-blocking ``waitpid`` and decodes the status), so the pid cannot be
reused while we still hold it. Where pidfds are missing (or ``CIRCUS_NO_PIDFD=1``), a SIGCHLD
handler gives the same guarantees (:mod:`circus.child_exits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

import psutil
import structlog

from circus.child_exits import SigchldWatcher, pidfd_forced_off
from circus.errors import SpawnError

log = structlog.get_logger("circus.process")

Output = Literal["pipe", "inherit", "null"]
OutputCallback = Callable[[str, int, bytes], None]
ExitCallback = Callable[["Process"], None]
#: ``(pid, signum)``: called by :meth:`Process.terminate` each time a signal reaches a known pid
SignalCallback = Callable[[int, int], None]

_READ_SIZE = 65536
#: how long :meth:`Process.terminate` waits for the group to go after SIGKILL before logging
KILL_TIMEOUT = 30.0
#: polling interval bounds while waiting for a group whose leader is gone (no kernel event tells
#: when the last member of a process group exits, so this is the one place that polls)
_GROUP_POLL_MIN = 0.002
_GROUP_POLL_MAX = 0.1
#: polls of a leaderless group before scanning its members (a scan reads every /proc entry)
_SCAN_AFTER_POLLS = 3


class ChildTracker(Protocol):
    """Told of every child's birth and death (circusd's state file of spawned groups, see
    :mod:`circus.leftovers`); kept as a protocol so this layer imports nothing above it."""

    def add(self, pid: int) -> None: ...

    def discard(self, pid: int) -> None: ...


@dataclass
class Termination:
    """What :meth:`Process.terminate` did, for the caller's events and logs."""

    #: pids the stop signal reached one by one (the process, and descendants with ``children``)
    signalled: list[int] = field(default_factory=list)
    #: pids SIGKILL reached one by one; empty when everything went within ``graceful_timeout``
    killed: list[int] = field(default_factory=list)
    #: SIGKILL was sent to the group (graceful_timeout elapsed with something still running)
    forced: bool = False
    #: something of the group was still there after SIGKILL and ``KILL_TIMEOUT`` (logged)
    survived: bool = False


@dataclass
class SpawnSpec:
    """Everything needed to start one child, already resolved (variables substituted, ids known).

    The watcher builds this from its configuration; keeping it free of config types lets the
    process layer stay below the watcher layer and be tested alone.
    """

    argv: list[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    executable: str | None = None
    uid: int | None = None
    gid: int | None = None
    extra_groups: list[int] | None = None
    umask: int | None = None
    rlimits: dict[int, int | None] = field(default_factory=dict)
    close_stdin: bool = True
    #: fd that becomes the child's stdin (``stdin_socket``); wins over ``close_stdin``
    stdin_fd: int | None = None
    #: fds the child keeps at the same numbers (its ``[socket:NAME]`` sockets); all others close
    pass_fds: tuple[int, ...] = ()
    stdout: Output = "inherit"
    stderr: Output = "inherit"


def _rlimit_setter(limits: dict[int, int | None]) -> Callable[[], None]:
    """A preexec function applying rlimits in the child (only used when rlimits are set,
    because a preexec function forces the slower fork path of subprocess)."""
    items = [
        (res, resource.RLIM_INFINITY if value is None else value, value)
        for res, value in limits.items()
    ]

    def apply() -> None:
        for res, soft, _ in items:
            resource.setrlimit(res, (soft, soft))

    return apply


def _stdin(spec: SpawnSpec) -> int | None:
    if spec.stdin_fd is not None:
        return spec.stdin_fd
    return subprocess.DEVNULL if spec.close_stdin else None


def _std(output: Output) -> int | None:
    if output == "pipe":
        return subprocess.PIPE
    if output == "null":
        return subprocess.DEVNULL
    return None


class Process:
    """A spawned child. ``exited`` resolves with the exit code (status, or minus the signal)."""

    #: set by circusd for its lifetime; None in tests and embedded use
    tracker: ClassVar[ChildTracker | None] = None

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        wid: int,
        *,
        on_exit: ExitCallback | None = None,
        on_output: OutputCallback | None = None,
    ) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.wid = wid
        self.started = time.time()
        self.returncode: int | None = None
        #: set when the daemon asked this process to go (stop, kill, decr, reload, signal command)
        self.expected_exit = False
        #: set when the watcher no longer counts this process (surplus being killed)
        self.detached = False
        #: signals sent by command; dying of one of them counts as an expected exit
        self.signalled_with: set[int] = set()
        #: who asked this process to go (``plugin:NAME``, ``circusctl``...), for its exit events
        self.exit_requested_by: str | None = None
        self._on_exit = on_exit
        self._on_output = on_output
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int | None] = self._loop.create_future()
        self._pipes: dict[int, str] = {}
        self._psutil: psutil.Process | None = None
        self._pidfd = _open_pidfd(popen)
        self._sigchld: SigchldWatcher | None = None
        if self._pidfd >= 0:
            self._loop.add_reader(self._pidfd, self._notice_exit)
        for stream, name in ((popen.stdout, "stdout"), (popen.stderr, "stderr")):
            if stream is not None:
                fd = stream.fileno()
                os.set_blocking(fd, False)
                self._pipes[fd] = name
                self._loop.add_reader(fd, self._read_pipe, fd)
        if self._pidfd < 0:
            try:
                self._sigchld = SigchldWatcher.of(self._loop)
            except OSError:
                self._abandon()  # a child we cannot watch must not run unsupervised
                raise
            self._sigchld.add(self.pid, popen.poll, self._notice_exit)
        if Process.tracker is not None:
            Process.tracker.add(self.pid)

    def _abandon(self) -> None:
        """Kill and reap a child we failed to set up, closing its pipes."""
        for fd in list(self._pipes):
            self._close_pipe(fd)
        self.popen.kill()
        self.popen.wait()

    @classmethod
    def spawn(
        cls,
        spec: SpawnSpec,
        wid: int,
        *,
        on_exit: ExitCallback | None = None,
        on_output: OutputCallback | None = None,
    ) -> Process:
        """Start the child in a new session (so it leads its own process group).

        Raises :class:`~circus.errors.SpawnError` (an ``OSError``) naming the OS cause when the
        child cannot be forked, executed or watched; nothing of the attempt stays open.
        """
        try:
            popen = cls._popen(spec)
        except OSError as exc:
            code = exc.errno if exc.errno is not None else errno.EINVAL
            raise SpawnError(code, exc.strerror or str(exc), spec.argv[0]) from exc
        except (subprocess.SubprocessError, ValueError) as exc:
            # preexec failure (e.g. setrlimit above the hard limit), NUL byte in an argument
            raise SpawnError(errno.EINVAL, str(exc), spec.argv[0]) from exc
        try:
            return cls(popen, wid, on_exit=on_exit, on_output=on_output)
        except OSError as exc:
            code = exc.errno if exc.errno is not None else errno.EINVAL
            raise SpawnError(code, exc.strerror or str(exc), spec.argv[0]) from exc

    @staticmethod
    def _popen(spec: SpawnSpec) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            spec.argv,
            executable=spec.executable,
            stdin=_stdin(spec),
            stdout=_std(spec.stdout),
            stderr=_std(spec.stderr),
            # the pipes are read with os.read on the loop: no 8 KiB buffer object per pipe
            bufsize=0,
            cwd=spec.cwd,
            env=spec.env,
            close_fds=True,
            pass_fds=spec.pass_fds,
            start_new_session=True,
            user=spec.uid,
            group=spec.gid,
            extra_groups=spec.extra_groups,
            umask=-1 if spec.umask is None else spec.umask,
            # only setrlimit runs there; circusd's one thread (the stats sampler) holds no lock
            # the child needs (test_spawning_with_rlimits_while_the_sampler_runs)
            preexec_fn=_rlimit_setter(spec.rlimits) if spec.rlimits else None,  # noqa: PLW1509
        )

    # -- state -------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def age(self) -> float:
        return time.time() - self.started

    def psutil_process(self) -> psutil.Process:
        """The psutil handle, created once so its create_time guards against pid reuse."""
        if self._psutil is None:
            self._psutil = psutil.Process(self.pid)
        return self._psutil

    # -- exit and output ---------------------------------------------------------------------

    def _notice_exit(self) -> None:
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        self._sigchld = None
        code = self.popen.poll()
        if code is None:  # cannot happen for a readable pidfd; be safe and block briefly
            code = self.popen.wait()
        self.returncode = code
        if Process.tracker is not None:
            Process.tracker.discard(self.pid)
        self._drain_pipes()
        if not self.exited.done():
            self.exited.set_result(code)
        if self._on_exit is not None:
            self._on_exit(self)

    def _read_pipe(self, fd: int) -> bool:
        """Read one chunk; True when data came (more may follow)."""
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._close_pipe(fd)
            return False
        if self._on_output is not None:
            self._on_output(self._pipes[fd], self.pid, data)
        return True

    def _drain_pipes(self) -> None:
        """Deliver what the child wrote before dying, then stop listening: a grandchild that
        inherited the pipe must not keep it (and us) busy forever."""
        for fd in list(self._pipes):
            for _ in range(64):
                if not self._read_pipe(fd):
                    break
            if fd in self._pipes:
                self._close_pipe(fd)

    def _close_pipe(self, fd: int) -> None:
        self._loop.remove_reader(fd)
        self._pipes.pop(fd, None)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None and not stream.closed and stream.fileno() == fd:
                stream.close()

    def close(self) -> None:
        """Release the pidfd and pipes without waiting (daemon shutdown after the children)."""
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        if self._sigchld is not None:
            self._sigchld.remove(self.pid)
            self._sigchld = None
        for fd in list(self._pipes):
            self._close_pipe(fd)

    # -- signals -----------------------------------------------------------------------------

    def descendants(self) -> list[psutil.Process]:
        """Every descendant, collected *before* anything is signalled (fixes E9: once the parent
        dies its children are re-parented and can no longer be found through it)."""
        try:
            return self.psutil_process().children(recursive=True)
        except psutil.Error:
            return []

    async def _descendants_off_loop(self) -> list[psutil.Process]:
        """:meth:`descendants` in a worker thread: psutil reads every process's ``stat`` file
        at each call (see :func:`_by_parent`), which must not hold the event loop."""
        return await asyncio.to_thread(self.descendants)

    def send_signal(self, signum: int) -> bool:
        """Signal the process itself; False when it is already gone."""
        if not self.alive:
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    @property
    def pgid(self) -> int:
        """The child's process group: it is spawned as a session leader, so its own pid."""
        return self.pid

    def group_alive(self) -> bool:
        """True while a process of the child's group may still run; never for a recycled number.

        While the leader is unreaped its pid (hence the group id) cannot be reused. Once reaped,
        the kernel still keeps the number while any member holds it as their group id, so a
        *process* now carrying that pid proves our group emptied and the number was recycled.
        """
        return self.alive or group_alive_without_leader(self.pgid)

    def signal_group(self, signum: int) -> bool:
        """Signal every process of the child's group; False when the group is gone."""
        if not self.group_alive():
            return False
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            return False
        except PermissionError as exc:
            log.warning("cannot signal process group", pgid=self.pgid, error=exc.strerror)
            return False
        return True

    async def terminate(
        self,
        signum: int | None = signal.SIGTERM,
        graceful_timeout: float = 30.0,
        *,
        children: bool = False,
        on_signal: SignalCallback | None = None,
        tree: list[psutil.Process] | None = None,
    ) -> Termination:
        """End the process and its whole process group; returns once they are gone.

        1. The stop signal ``signum`` goes to the process itself (``children=False``, the
           ``stop_children = false`` default: a master shuts its workers down its own way), or
           to the whole group and every descendant found (``children=True``). ``None`` sends no
           stop signal (a ``before_signal`` hook vetoed it) and only the deadline applies.
        2. Once the process has exited, whatever is left of its group (a shell's ``sleep``,
           workers of a dead master) gets the stop signal too (``children=False``; with
           ``children=True`` it already had it), within the same deadline.
        3. At ``graceful_timeout`` anything left gets SIGKILL: the group, plus the descendants
           found then (and, with ``children=True``, at step 1) that left it; psutil checks their
           start time, so a recycled pid is never hit. Waiting after SIGKILL is bounded by
           ``KILL_TIMEOUT``.

        ``on_signal(pid, signum)`` is called for each pid a signal reaches by pid, so the watcher
        can publish ``kill`` events as they happen. ``tree``: the descendants for step 1 when
        the caller looked them up already (``ProcessSet.kill_all`` does, in one pass for all).
        Circus 0.19 with ``stop_children = false`` left the rest of the group running: see
        docs/daemon.md.
        """
        loop = self._loop
        deadline = loop.time() + max(0.0, graceful_timeout)
        done = Termination()
        if not children:
            tree = []
        elif tree is None:
            tree = await self._descendants_off_loop()

        def reached(pids: list[int], sig: int, into: list[int]) -> None:
            for pid in pids:
                into.append(pid)
                if on_signal is not None:
                    on_signal(pid, sig)

        if signum is not None:
            if children:
                reached(self._signal_everything(signum, tree), signum, done.signalled)
            elif self.send_signal(signum):
                reached([self.pid], signum, done.signalled)
        if await self._wait_exit(deadline):
            if signum is not None and not children and self.signal_group(signum):
                log.debug("stop signal to what is left of the group", pgid=self.pgid)
            if await self._wait_group_gone(deadline):
                return done
        done.forced = True
        # descendants found now and before (some may have been re-parented since the stop)
        tree = list({p.pid: p for p in [*tree, *await self._descendants_off_loop()]}.values())
        reached(self._signal_everything(signal.SIGKILL, tree), signal.SIGKILL, done.killed)
        kill_deadline = loop.time() + KILL_TIMEOUT
        gone = await self._wait_exit(kill_deadline) and await self._wait_group_gone(kill_deadline)
        if not gone:
            done.survived = True
            log.error("process group survived SIGKILL", pid=self.pid, timeout=KILL_TIMEOUT)
        return done

    def _signal_everything(self, signum: int, tree: list[psutil.Process]) -> list[int]:
        """Signal the group at once, then each descendant that left it; returns the pids
        reached (the process, and the descendants in ``tree``), in that order."""
        inside: list[psutil.Process] = []
        outside: list[psutil.Process] = []
        for proc in tree:
            try:
                (inside if os.getpgid(proc.pid) == self.pgid else outside).append(proc)
            except OSError:
                continue  # already gone
        pids: list[int] = []
        leader = self.alive
        if self.signal_group(signum):
            pids.extend([self.pid] if leader else [])
            pids.extend(proc.pid for proc in inside)
        # signalling group members one by one as well would deliver the signal twice
        pids.extend(signal_processes(outside, signum))
        return pids

    async def _wait_exit(self, deadline: float) -> bool:
        """Wait for the process's own exit until ``deadline`` (loop time); True when it exited."""
        if self.exited.done():
            return True
        remaining = deadline - self._loop.time()
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), remaining)
        except TimeoutError:
            return False
        return True

    async def _wait_group_gone(self, deadline: float) -> bool:
        """Wait until no process of the group is left, or ``deadline``; True when it is empty."""
        delay = _GROUP_POLL_MIN
        polls = 0
        while self.group_alive():
            if not self.alive:
                self._reap_adopted_members()
                polls += 1
                # zombies waiting for their reaper (init, a slow container init) are gone for
                # us: after a few polls, scan for a live member instead of waiting for it (in a
                # worker thread: a scan reads every process's stat, ~7 ms at 600 processes,
                # and many groups of a big watcher may linger at once)
                if polls >= _SCAN_AFTER_POLLS and not await asyncio.to_thread(
                    group_has_live_members, self.pgid
                ):
                    break
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _GROUP_POLL_MAX)
        return True

    def _reap_adopted_members(self) -> None:
        """Reap members of the child's group that became *our* children.

        As PID 1 (a container's init) or a subreaper, circusd inherits the orphans of the
        processes it spawned; dead, they would stay zombies that keep the group "alive" until
        the SIGKILL timeout. ``waitpid(-pgid)`` only reaps children in that group, i.e. what we
        spawned, and is only called once the leader itself has been reaped by its Popen.
        """
        while True:
            try:
                pid, _ = os.waitpid(-self.pgid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def signal_tree(self, signum: int, tree: list[psutil.Process] | None = None) -> list[int]:
        """Signal the process and all its descendants; returns the pids reached.

        Descendants are looked up first (``tree``, when the caller did it for several processes
        in one pass: :func:`descendants_of`), then the parent is signalled, then each
        descendant (psutil checks their create time, so a recycled pid is never hit).
        """
        found = self.descendants() if tree is None else tree
        reached: list[int] = []
        if self.send_signal(signum):
            reached.append(self.pid)
        reached.extend(signal_processes(found, signum))
        return reached


_pidfd_missing = not hasattr(os, "pidfd_open")


def _open_pidfd(popen: subprocess.Popen[bytes]) -> int:
    """A pidfd for the child, or -1 where pidfds are missing or forced off (SIGCHLD path)."""
    global _pidfd_missing  # noqa: PLW0603 - learnt once: the kernel will not grow the call
    if _pidfd_missing or pidfd_forced_off():
        return -1
    try:
        return os.pidfd_open(popen.pid)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM):  # old kernel, or a seccomp filter
            _pidfd_missing = True
            log.info("pidfd_open unavailable: child exits are noticed through SIGCHLD",
                     error=exc.strerror)
            return -1
        # e.g. out of file descriptors: a child we cannot watch must not run unsupervised
        popen.kill()
        popen.wait()
        for pipe in (popen.stdout, popen.stderr):
            if pipe is not None:
                pipe.close()
        raise


def group_alive_without_leader(pgid: int) -> bool:
    """Is any process left in group ``pgid`` whose leader was reaped? Never true for a recycled
    number: the kernel keeps a number while a member holds it as group id, so a live process
    with pid ``pgid`` proves the old group emptied and the number went to someone else."""
    if _pid_exists(pgid):
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # members that changed user are still members
    return True


def group_has_live_members(pgid: int) -> bool:
    """Scan for a process of group ``pgid`` that is not a zombie (the slow path: it reads every
    process, so callers first use the ``killpg(pgid, 0)`` test and only scan when it lingers)."""
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if os.getpgid(proc.pid) == pgid:
                return True
        except OSError:
            continue
    return False


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _by_parent() -> dict[int, list[psutil.Process]]:
    """Every process by parent pid, from one pass over the process table.

    ``psutil.Process.children()`` makes that pass (a read of every process's ``stat``) at each
    call: 6.8 ms with 616 processes on the machine at load 8, so asking for the children of
    600 processes one by one held the event loop ~4 s. Callers ask for all of theirs at once.
    """
    table: dict[int, list[psutil.Process]] = {}
    for proc in psutil.process_iter(["ppid"]):
        table.setdefault(proc.info["ppid"], []).append(proc)
    return table


def children_of(parents: Iterable[int]) -> dict[int, list[psutil.Process]]:
    """The direct children of each pid in ``parents`` (one pass, see :func:`_by_parent`)."""
    table = _by_parent()
    return {pid: table.get(pid, []) for pid in parents}


def descendants_of(parents: Iterable[int]) -> dict[int, list[psutil.Process]]:
    """Every descendant of each pid in ``parents`` (one pass, see :func:`_by_parent`)."""
    table = _by_parent()
    found: dict[int, list[psutil.Process]] = {}
    for parent in parents:
        tree: list[psutil.Process] = []
        seen = {parent}
        stack = [parent]
        while stack:
            for child in table.get(stack.pop(), []):
                if child.pid not in seen:
                    seen.add(child.pid)
                    tree.append(child)
                    stack.append(child.pid)
        found[parent] = tree
    return found


def signal_processes(procs: list[psutil.Process], signum: int) -> list[int]:
    """Send ``signum`` to each psutil process still alive; returns the pids reached."""
    reached = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signum)
            reached.append(proc.pid)
    return reached
