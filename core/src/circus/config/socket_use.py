"""Which ``[socket:NAME]`` sockets a watcher uses, and the load-time checks of those references.

A watcher *uses* the sockets its ``cmd``, ``args``, ``shell_args`` or environment values name
with ``$(circus.sockets.NAME)``, plus its ``stdin_socket``. With ``use_sockets = true`` and no
such reference it uses every socket (0.19 passed them all; a program may find its fds by
itself). Only the sockets a watcher uses reach its children (``pass_fds``), so a worker of one
site never holds the listening socket of another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import structlog

from circus.config.model import WatcherConfig
from circus.config.socket_section import SocketConfig
from circus.errors import ConfigError

log = structlog.get_logger(__name__)

SOCKET_VARIABLE = re.compile(
    r"\$\(circus\.sockets\.([\w.-]+)\)|\(\(circus\.sockets\.([\w.-]+)\)\)", re.IGNORECASE
)


def referenced_sockets(cfg: WatcherConfig) -> list[str]:
    """Socket names (lower-cased) that ``cfg``'s templates and environment reference, in order."""
    texts: list[str] = [cfg.cmd, cfg.shell_args or "", *cfg.env.values()]
    texts.extend(cfg.args if isinstance(cfg.args, list) else [cfg.args])
    names: list[str] = []
    for text in texts:
        for match in SOCKET_VARIABLE.finditer(str(text)):
            name = (match.group(1) or match.group(2)).lower()
            if name not in names:
                names.append(name)
    return names


def used_sockets(cfg: WatcherConfig, available: Iterable[str]) -> list[str]:
    """The known sockets whose fds ``cfg``'s children inherit (see the module docstring)."""
    known = list(available)
    names = [n for n in referenced_sockets(cfg) if n in known] if cfg.use_sockets else []
    if cfg.use_sockets and not names:
        names = known
    stdin = (cfg.stdin_socket or "").lower()
    if stdin and stdin in known and stdin not in names:
        names.append(stdin)
    return names


def check_socket_references(watchers: list[WatcherConfig], sockets: list[SocketConfig]) -> None:
    """At load: ``stdin_socket`` must name a socket (error); other doubtful uses are warned about.

    Errors carry the watcher's section; the loader adds the file.
    """
    known = {s.name for s in sockets}
    for cfg in watchers:
        section = f"watcher:{cfg.name}"
        stdin = (cfg.stdin_socket or "").lower()
        if stdin and stdin not in known:
            raise ConfigError(
                f"stdin_socket: no [socket:{stdin}] section"
                + (f" (sockets: {', '.join(sorted(known))})" if known else ""),
                section=section,
                key="stdin_socket",
            )
        missing = [n for n in referenced_sockets(cfg) if n not in known]
        if missing:
            log.warning(
                "$(circus.sockets.NAME) names no [socket:NAME] section; left as written",
                section=section,
                sockets=missing,
            )
        elif referenced_sockets(cfg) and not cfg.use_sockets:
            log.warning(
                "the watcher references sockets but use_sockets is false: no socket reaches its "
                "children and the variables stay as written (set use_sockets = true)",
                section=section,
            )
        if cfg.on_demand and not used_sockets(cfg, known):
            log.warning(
                "on_demand watcher uses no socket: it starts only by command",
                section=section,
            )
