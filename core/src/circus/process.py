"""One child process: spawning it, noticing its exit at once, signalling it and its descendants.

Exits are noticed through a pidfd registered with the event loop (``os.pidfd_open`` +
``loop.add_reader``): the kernel wakes the loop the moment the child dies, so there is no
polling, no SIGCHLD handler and no thread per child. Only then is the child reaped (through
``Popen.poll``, which does a non-blocking ``waitpid`` and decodes the status), so the pid cannot be
reused while we still hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import psutil
import structlog

log = structlog.get_logger("circus.process")

Output = Literal["pipe", "inherit", "null"]
OutputCallback = Callable[[str, int, bytes], None]
ExitCallback = Callable[["Process"], None]

_READ_SIZE = 65536


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


def _std(output: Output) -> int | None:
    if output == "pipe":
        return subprocess.PIPE
    if output == "null":
        return subprocess.DEVNULL
    return None


class Process:
    """A spawned child. ``exited`` resolves with the exit code (status, or minus the signal)."""

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
        self._on_exit = on_exit
        self._on_output = on_output
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int | None] = self._loop.create_future()
        self._pipes: dict[int, str] = {}
        self._psutil: psutil.Process | None = None
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except OSError:
            # e.g. out of file descriptors: a child we cannot watch must not run unsupervised
            popen.kill()
            popen.wait()
            for pipe in (popen.stdout, popen.stderr):
                if pipe is not None:
                    pipe.close()
            raise
        self._loop.add_reader(self._pidfd, self._notice_exit)
        for stream, name in ((popen.stdout, "stdout"), (popen.stderr, "stderr")):
            if stream is not None:
                fd = stream.fileno()
                os.set_blocking(fd, False)
                self._pipes[fd] = name
                self._loop.add_reader(fd, self._read_pipe, fd)

    @classmethod
    def spawn(
        cls,
        spec: SpawnSpec,
        wid: int,
        *,
        on_exit: ExitCallback | None = None,
        on_output: OutputCallback | None = None,
    ) -> Process:
        """Start the child in a new session; raises ``OSError`` when it cannot be executed."""
        popen = subprocess.Popen(
            spec.argv,
            executable=spec.executable,
            stdin=subprocess.DEVNULL if spec.close_stdin else None,
            stdout=_std(spec.stdout),
            stderr=_std(spec.stderr),
            cwd=spec.cwd,
            env=spec.env,
            close_fds=True,
            start_new_session=True,
            user=spec.uid,
            group=spec.gid,
            extra_groups=spec.extra_groups,
            umask=-1 if spec.umask is None else spec.umask,
            # only setrlimit runs there, and circusd starts no Python threads
            preexec_fn=_rlimit_setter(spec.rlimits) if spec.rlimits else None,  # noqa: PLW1509
        )
        return cls(popen, wid, on_exit=on_exit, on_output=on_output)

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
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        code = self.popen.poll()
        if code is None:  # cannot happen for a readable pidfd; be safe and block briefly
            code = self.popen.wait()
        self.returncode = code
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

    def children(self) -> list[psutil.Process]:
        try:
            return self.psutil_process().children(recursive=False)
        except psutil.Error:
            return []

    def send_signal(self, signum: int) -> bool:
        """Signal the process itself; False when it is already gone."""
        if not self.alive:
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def signal_tree(self, signum: int, *, children: bool = True) -> list[int]:
        """Signal the process and (optionally) all its descendants; returns the pids reached.

        Descendants are looked up first, then the parent is signalled, then each descendant
        (psutil checks their create time, so a recycled pid is never hit).
        """
        found = self.descendants() if children else []
        reached: list[int] = []
        if self.send_signal(signum):
            reached.append(self.pid)
        reached.extend(signal_processes(found, signum))
        return reached


def signal_processes(procs: list[psutil.Process], signum: int) -> list[int]:
    """Send ``signum`` to each psutil process still alive; returns the pids reached."""
    reached = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signum)
            reached.append(proc.pid)
    return reached
