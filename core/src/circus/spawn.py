"""Turning a watcher's configuration into the exact child to start (contract 8.9, 9.2).

Spawn-time work that depends on the worker id lives here: the child's environment
(``copy_env``/``copy_path``/``virtualenv``), ``$(circus.*)`` substitution in ``cmd``, ``args`` and
``shell_args`` (split into arguments first, then each argument substituted in one pass, so a
value is exactly one argument and is never expanded again), user/group resolution and rlimits.
The result is a :class:`~circus.process.SpawnSpec`, so :mod:`circus.process` never sees
configuration types.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pwd
import re
import resource
import shlex
import sys
from collections.abc import Mapping
from typing import Any

from circus.config.environment import Lookup, expand, lookup_name, split_template
from circus.config.model import WatcherConfig
from circus.config.socket_use import SOCKET_VARIABLE
from circus.credentials import REGISTRY
from circus.output_tail import capture_enabled
from circus.process import Output, SpawnSpec


def child_env(cfg: WatcherConfig) -> dict[str, str]:
    """The environment of a child: circusd's own with ``copy_env``, then the configured env."""
    env: dict[str, str] = dict(os.environ) if cfg.copy_env else {}
    env.update(cfg.env)
    env.update(REGISTRY.child_env(cfg.name))  # a plugin's credentials (never in `options`)
    if cfg.copy_path:
        paths = [p for p in sys.path if p]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
    if cfg.virtualenv:
        venv = cfg.virtualenv
        env["PATH"] = os.pathsep.join(p for p in (os.path.join(venv, "bin"), env.get("PATH")) if p)
        version = cfg.virtualenv_py_ver or f"{sys.version_info.major}.{sys.version_info.minor}"
        sites = glob.glob(os.path.join(venv, "lib", f"python{version}", "site-packages"))
        if sites:
            current = env.get("PYTHONPATH")
            env["PYTHONPATH"] = os.pathsep.join([*sites, *([current] if current else [])])
    return env


def with_socket_fds(env: dict[str, str], sockets: Mapping[str, int]) -> dict[str, str]:
    """``$(circus.sockets.NAME)`` in environment values -> the fd (only that variable: nothing
    else substitutes inside environment values)."""
    if not sockets:
        return env

    def fd_of(match: re.Match[str]) -> str:
        fd = sockets.get((match.group(1) or match.group(2)).lower())
        return match.group(0) if fd is None else str(fd)

    return {key: SOCKET_VARIABLE.sub(fd_of, value) for key, value in env.items()}


def variables(cfg: WatcherConfig, wid: int, env: dict[str, str]) -> dict[str, str]:
    """Values of ``$(circus.KEY)`` (keys lower-cased) for one spawn."""
    values: dict[str, str] = {}
    for fld in dataclasses.fields(cfg):
        value = getattr(cfg, fld.name)
        if isinstance(value, (str, int, float, bool)):
            values[fld.name.lower()] = str(value)
    values.update(
        wid=str(wid),
        working_dir=cfg.working_dir or os.getcwd(),
        uid="" if cfg.uid is None else str(cfg.uid),
        gid="" if cfg.gid is None else str(cfg.gid),
        shell=str(cfg.shell),
        args=cfg.args if isinstance(cfg.args, str) else " ".join(cfg.args),
        executable=cfg.executable or "",
        use_fds=str(cfg.use_sockets),
    )
    for name, limit in cfg.rlimits.items():
        values[f"rlimits.{name.lower()}"] = "" if limit is None else str(limit)
    return values


def spawn_lookup(
    cfg: WatcherConfig, wid: int, env: dict[str, str], sockets: Mapping[str, int] | None = None
) -> Lookup:
    """Values of ``$(circus.KEY)`` for one spawn: ``env.X`` from the child's environment, then
    circusd's (as at load), ``sockets.NAME`` the fd the child gets, other keys from
    :func:`variables` (computed only when needed)."""
    computed: dict[str, str] = {}

    def lookup(key: str) -> str | None:
        lowered = key.lower()
        if lowered.startswith("sockets."):
            fd = (sockets or {}).get(lowered[len("sockets.") :])
            return None if fd is None else str(fd)
        if lowered.startswith("env."):
            name = key[4:]
            found = lookup_name(name, env)
            return found if found is not None else lookup_name(name, os.environ)
        if not computed:
            computed.update(variables(cfg, wid, env))
        return computed.get(lowered)

    return lookup


def build_argv(
    cfg: WatcherConfig, wid: int, env: dict[str, str], sockets: Mapping[str, int] | None = None
) -> list[str]:
    """The argument vector: ``argv`` verbatim for plugin watchers, else cmd + args.

    Templates are split shell-style *first*, then each argument is substituted: with
    ``shell = false`` a value with spaces, quotes or ``;`` stays one argument. Raises
    ``ValueError`` for a template that cannot be split (configs are checked at load; ``add``
    and ``set`` values are not).
    """
    if cfg.argv is not None:
        return list(cfg.argv)
    lookup = spawn_lookup(cfg, wid, env, sockets)
    if isinstance(cfg.args, list):
        args = [expand(str(a), lookup) for a in cfg.args]
    else:
        args = [expand(a, lookup) for a in split_template(cfg.args, "args")] if cfg.args else []
    if cfg.shell:
        line = " ".join([expand(cfg.cmd, lookup), *(shlex.quote(a) for a in args)])
        extra = split_template(cfg.shell_args, "shell_args") if cfg.shell_args else []
        return ["/bin/sh", "-c", line, *(expand(a, lookup) for a in extra)]
    return [*(expand(a, lookup) for a in split_template(cfg.cmd)), *args]


def _output(stream: dict[str, str], close: bool, capture: bool) -> Output:
    if stream.get("class", "").lower() in ("null", "nullstream"):
        return "null"  # nothing to read: the child writes straight to /dev/null
    if stream:
        return "pipe"
    if close:
        return "null"
    # piped for the recent-output rings (circus.output_tail) unless output_lines = 0
    return "pipe" if capture else "inherit"


def _rlimits(limits: dict[str, int | None]) -> dict[int, int | None]:
    resolved: dict[int, int | None] = {}
    for name, value in limits.items():
        constant = getattr(resource, f"RLIMIT_{name.upper()}", None)
        if isinstance(constant, int):
            resolved[constant] = value
    return resolved


def _groups(uid: int | None, gid: int | None) -> tuple[int | None, list[int] | None]:
    """With ``uid`` only, the gid defaults to the user's primary group plus its supplementary
    groups (what ``initgroups`` gives a login). Only root may switch, so others keep theirs."""
    if uid is None or os.geteuid() != 0:
        return gid, None
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return gid, []  # unknown user: at least drop root's supplementary groups
    primary = entry.pw_gid if gid is None else gid
    return primary, os.getgrouplist(entry.pw_name, primary)


def build_spec(
    cfg: WatcherConfig,
    wid: int,
    *,
    umask: int | None = None,
    sockets: Mapping[str, int] | None = None,
) -> SpawnSpec:
    """Everything :meth:`circus.process.Process.spawn` needs for worker ``wid``.

    ``sockets``: name -> fd of the ``[socket:NAME]`` sockets this child gets
    (:func:`circus.config.socket_use.used_sockets`), kept at their numbers in the child.
    """
    sockets = sockets or {}
    env = with_socket_fds(child_env(cfg), sockets)
    stdin_name = (cfg.stdin_socket or "").lower()
    shared = {n: fd for n, fd in sockets.items() if cfg.use_sockets or n != stdin_name}
    capture = capture_enabled(cfg.extra)
    uid = cfg.uid
    if uid is not None and os.geteuid() != 0 and uid == os.geteuid():
        uid = None  # "switching" to ourselves needs no privilege
    gid, extra_groups = _groups(uid, cfg.gid)
    if gid is not None and os.geteuid() != 0 and gid == os.getegid():
        gid = None
    return SpawnSpec(
        argv=build_argv(cfg, wid, env, sockets),
        env=env,
        cwd=cfg.working_dir,
        executable=cfg.executable,
        uid=uid,
        gid=gid,
        extra_groups=extra_groups,
        umask=umask,
        rlimits=_rlimits(cfg.rlimits),
        close_stdin=cfg.close_child_stdin,
        stdin_fd=sockets.get(stdin_name) if stdin_name else None,
        pass_fds=tuple(sorted(set(shared.values()))),
        stdout=_output(cfg.stdout_stream, cfg.close_child_stdout, capture),
        stderr=_output(cfg.stderr_stream, cfg.close_child_stderr, capture),
    )


def describe(spec: SpawnSpec) -> dict[str, Any]:
    """A loggable summary of a spec (no environment: it may hold secrets)."""
    return {"argv": spec.argv, "cwd": spec.cwd, "uid": spec.uid, "gid": spec.gid}
