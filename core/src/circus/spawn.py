"""Turning a watcher's configuration into the exact child to start (contract 8.9, 9.2).

Spawn-time work that depends on the worker id lives here: the child's environment
(``copy_env``/``copy_path``/``virtualenv``), ``$(circus.*)`` substitution in ``cmd``, ``args`` and
``shell_args``, shell-style splitting, user/group resolution and rlimits. The result is a
:class:`~circus.process.SpawnSpec`, so :mod:`circus.process` never sees configuration types.
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
from typing import Any

from circus.config.model import WatcherConfig
from circus.credentials import REGISTRY
from circus.output_tail import capture_enabled
from circus.process import Output, SpawnSpec

_VARIABLE = re.compile(r"\$\(circus\.([\w.-]+)\)|\(\(circus\.([\w.-]+)\)\)", re.IGNORECASE)
_LEGACY_WID = re.compile(r"\$WID\b")


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


def substitute(text: str, values: dict[str, str], env: dict[str, str]) -> str:
    """Replace known ``$(circus.KEY)``/``((circus.KEY))`` variables; unknown ones stay as is."""

    def repl(match: re.Match[str]) -> str:
        key = match.group(1) or match.group(2)
        lowered = key.lower()
        if lowered.startswith("env."):
            name = key[4:]
            if name in env:
                return env[name]
            for env_name, value in env.items():
                if env_name.lower() == name.lower():
                    return value
            return match.group(0)
        return values.get(lowered, match.group(0))

    if "circus." in text.lower():
        text = _VARIABLE.sub(repl, text)
    if "$WID" in text and "wid" in values:
        text = _LEGACY_WID.sub(values["wid"], text)
    return text


def build_argv(cfg: WatcherConfig, wid: int, env: dict[str, str]) -> list[str]:
    """The argument vector: ``argv`` verbatim for plugin watchers, else cmd + args, split."""
    if cfg.argv is not None:
        return list(cfg.argv)
    raw_args = cfg.args if isinstance(cfg.args, str) else " ".join(map(str, cfg.args))
    raw = f"{cfg.cmd} {raw_args} {cfg.shell_args or ''}"
    values = variables(cfg, wid, env) if ("circus." in raw.lower() or "$WID" in raw) else {}
    cmd = substitute(cfg.cmd, values, env) if values else cfg.cmd
    if isinstance(cfg.args, list):
        args = [substitute(str(a), values, env) for a in cfg.args]
    else:
        args = shlex.split(substitute(cfg.args, values, env)) if cfg.args else []
    if cfg.shell:
        line = " ".join([cmd, *(shlex.quote(a) for a in args)])
        extra = shlex.split(substitute(cfg.shell_args, values, env)) if cfg.shell_args else []
        return ["/bin/sh", "-c", line, *extra]
    return [*shlex.split(cmd), *args]


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


def build_spec(cfg: WatcherConfig, wid: int, *, umask: int | None = None) -> SpawnSpec:
    """Everything :meth:`circus.process.Process.spawn` needs for worker ``wid``."""
    env = child_env(cfg)
    capture = capture_enabled(cfg.extra)
    uid = cfg.uid
    if uid is not None and os.geteuid() != 0 and uid == os.geteuid():
        uid = None  # "switching" to ourselves needs no privilege
    gid, extra_groups = _groups(uid, cfg.gid)
    if gid is not None and os.geteuid() != 0 and gid == os.getegid():
        gid = None
    return SpawnSpec(
        argv=build_argv(cfg, wid, env),
        env=env,
        cwd=cfg.working_dir,
        executable=cfg.executable,
        uid=uid,
        gid=gid,
        extra_groups=extra_groups,
        umask=umask,
        rlimits=_rlimits(cfg.rlimits),
        close_stdin=cfg.close_child_stdin,
        stdout=_output(cfg.stdout_stream, cfg.close_child_stdout, capture),
        stderr=_output(cfg.stderr_stream, cfg.close_child_stderr, capture),
    )


def describe(spec: SpawnSpec) -> dict[str, Any]:
    """A loggable summary of a spec (no environment: it may hold secrets)."""
    return {"argv": spec.argv, "cwd": spec.cwd, "uid": spec.uid, "gid": spec.gid}
