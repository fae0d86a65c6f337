"""The slice of the arbiter and watcher API that commands may use (docs/architecture.md).

Commands are written against these protocols instead of importing ``circus.arbiter``: the
arbiter owns the controller, the controller owns the commands, so a concrete import would be a
cycle. It also pins down, in one place, everything a command is allowed to touch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from circus.journal import ProcessJournal
from circus.output_tail import WatcherOutput
from circus.stats.sampler import Sample, Sampler


class ProcessView(Protocol):
    """One live process as ``status -l`` and ``tail`` read it."""

    @property
    def pid(self) -> int: ...

    @property
    def wid(self) -> int: ...

    @property
    def started(self) -> float: ...


class WatcherAPI(Protocol):
    """What a command may read from and do to one watcher."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def retry_in(self) -> float | None: ...

    @property
    def priority(self) -> int: ...

    @property
    def singleton(self) -> bool: ...

    @property
    def autostart(self) -> bool: ...

    @property
    def numprocesses(self) -> int: ...

    def pids(self) -> list[int]: ...

    @property
    def processes(self) -> Mapping[int, ProcessView]: ...

    @property
    def output(self) -> WatcherOutput: ...

    @property
    def journal(self) -> ProcessJournal: ...

    def options(self) -> dict[str, Any]: ...

    def get_option(self, key: str) -> Any: ...

    async def start(self) -> dict[str, list[int]]: ...

    async def stop(self) -> None: ...

    async def restart(self) -> dict[str, list[int]]: ...

    async def reload(
        self, graceful: bool = True, sequential: bool = False
    ) -> dict[str, list[int]]: ...

    async def incr(self, nb: int = 1) -> int: ...

    async def decr(self, nb: int = 1) -> int: ...

    async def kill(
        self,
        pid: int | None = None,
        signum: int | None = None,
        graceful_timeout: float | None = None,
    ) -> None: ...

    def send_signal(
        self,
        signum: int,
        pid: int | None = None,
        childpid: int | None = None,
        children: bool = False,
        recursive: bool = False,
    ) -> None: ...

    async def apply_options(self, options: dict[str, Any]) -> None: ...

    def stats(
        self, sample: Sample, pid: int | None = None, extended: bool = False
    ) -> dict[str, Any]: ...


class ArbiterAPI(Protocol):
    """What a command may read from and do to the arbiter.

    Watcher lists passed back to the arbiter are typed ``Any`` so that the concrete arbiter can
    declare them as lists of its own ``Watcher`` class.
    """

    @property
    def endpoint(self) -> str: ...

    @property
    def watchers(self) -> Sequence[WatcherAPI]: ...

    def get_watcher(self, name: str) -> WatcherAPI: ...

    async def start_watchers(self, watchers: Any = None) -> None: ...

    async def stop_watchers(self, watchers: Any = None) -> None: ...

    async def restart_watchers(self, watchers: Any = None) -> None: ...

    async def reload(self, graceful: bool = True, sequential: bool = False) -> None: ...

    async def reload_config(self) -> None: ...

    async def add_watcher(
        self,
        name: str,
        cmd: str,
        args: str | list[str] | None,
        options: dict[str, Any],
        start: bool,
    ) -> WatcherAPI: ...

    async def remove_watcher(self, name: str, nostop: bool = False) -> None: ...

    async def quit(self) -> None: ...

    def global_options(self) -> dict[str, Any]: ...

    def list_sockets(self) -> list[dict[str, Any]]: ...

    async def dstats(self) -> dict[str, Any]: ...

    @property
    def sampler(self) -> Sampler: ...
