"""Turning a reply into what circusctl prints (contract 10.2).

Each command has a plain-text rendering that scripts parse (comma-separated pids, ``name: state``
lines, bare numbers), so the shapes follow the original circusctl closely; ``--json`` bypasses
all of it. Error replies render as ``error: <reason>`` whatever the command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Reply = Mapping[str, Any]

_INFO_FIELDS = ("pid", "cmdline", "username", "nice", "mem_info1", "mem_info2", "cpu", "mem",
                "ctime")


def as_json(reply: Reply, prettify: bool = False) -> str:
    if prettify:
        return json.dumps(reply, indent=2, sort_keys=True)
    return json.dumps(reply)


def is_error(reply: Reply) -> bool:
    return reply.get("status") == "error"


def render_error(reply: Reply) -> str:
    return f"error: {reply.get('reason')}"


def option_value(key: str, value: Any) -> str:
    """One option value as text: env as ``K=V,K2=V2`` (sorted), ``None`` as empty."""
    if key == "env" and isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    if value is None:
        return ""
    return str(value)


def _options(reply: Reply) -> str:
    options = reply.get("options") or {}
    return "\n".join(f"{key}: {option_value(key, options[key])}" for key in sorted(options))


def _count(reply: Reply) -> str:
    if "singleton" in reply:
        return "This watcher is a singleton: the number of processes did not change"
    return str(reply.get("numprocesses", "ok"))


def _number(field: str) -> Callable[[Reply], str]:
    return lambda reply: str(reply.get(field))


def _list(reply: Reply) -> str:
    if "pids" in reply:
        return ",".join(str(pid) for pid in reply["pids"])
    return ",".join(str(name) for name in reply.get("watchers", []))


def _status(reply: Reply) -> str:
    statuses = reply.get("statuses")
    if isinstance(statuses, Mapping):
        return "\n".join(f"{name}: {statuses[name]}" for name in sorted(statuses))
    return str(reply.get("status"))


def info_line(info: Any) -> str:
    """A process info object as one line (the original's field order); strings as they are."""
    if not isinstance(info, Mapping):
        return str(info)
    return " ".join(str(info.get(field, "N/A")) for field in _INFO_FIELDS)


def _info_block(info: Any, indent: str = "   ") -> list[str]:
    lines = [info_line(info)]
    if isinstance(info, Mapping):
        lines.extend(indent + info_line(child) for child in info.get("children") or [])
    return lines


def _process_lines(infos: Mapping[str, Any]) -> list[str]:
    lines = []
    for pid in sorted(infos, key=lambda p: (len(str(p)), str(p))):
        first, *rest = _info_block(infos[pid])
        lines.append(f"{pid}: {first}")
        lines.extend(rest)
    return lines


def _stats(reply: Reply) -> str:
    if "infos" in reply:
        lines: list[str] = []
        for watcher in sorted(reply["infos"] or {}):
            lines.append(f"{watcher}:")
            lines.extend(_process_lines(reply["infos"][watcher] or {}))
        return "\n".join(lines)
    if "process" in reply:
        first, *rest = _info_block(reply.get("info"))
        return "\n".join([f"{reply['process']}: {first}", *rest])
    return "\n".join([f"{reply.get('name')}:", *_process_lines(reply.get("info") or {})])


def _dstats(reply: Reply) -> str:
    info = reply.get("info") or {}
    lines = ["Main Process:", "    " + info_line(info)]
    children = info.get("children") if isinstance(info, Mapping) else None
    if children:
        lines.append("Children:")
        lines.extend("    " + info_line(child) for child in children)
    return "\n".join(lines)


def _sockets(reply: Reply) -> str:
    lines = []
    for sock in reply.get("sockets") or []:
        where = sock["path"] if "path" in sock else f"{sock.get('host')}:{sock.get('port')}"
        lines.append(f"{sock.get('fd')}:socket '{sock.get('name')}' at {where}")
    return "\n".join(lines)


def _ipython(reply: Reply) -> str:
    if reply.get("shell"):
        return f"kernel started: {reply['shell']}"
    return f"no IPython kernel: {reply.get('msg') or 'unavailable'}"


def duration(seconds: float) -> str:
    """An uptime the way ``ps``/``pm2`` users read it: ``42s``, ``3m07s``, ``2h05m``, ``3d04h``."""
    total = int(max(seconds, 0))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _number_or_dash(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


_TABLE_HEAD = ("NAME", "WID", "PID", "STATE", "UPTIME", "RESTARTS", "CPU%", "MEM%", "RSS")


def process_rows(watchers: Any) -> list[tuple[str, ...]]:
    """One row per live process, or one per watcher without any (``status -l``, circus-top)."""
    rows: list[tuple[str, ...]] = []
    for watcher in watchers or []:
        procs = watcher.get("processes") or []
        if not procs:
            rows.append((watcher["name"], "-", "-", watcher["state"], "-",
                         str(watcher.get("restarts", 0)), "-", "-", "-"))
        for proc in procs:
            rows.append((
                watcher["name"], str(proc["wid"]), str(proc["pid"]), watcher["state"],
                duration(proc["uptime"]), str(proc["restarts"]), _number_or_dash(proc["cpu"]),
                _number_or_dash(proc["mem"], "{:.2f}"), str(proc["rss"]),
            ))
    return rows


def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns two spaces apart, like ``supervisorctl status``."""
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [head, *rows]
    )


def _processes(reply: Reply) -> str:
    return table(_TABLE_HEAD, process_rows(reply.get("watchers")))


_RENDERERS: dict[str, Callable[[Reply], str]] = {
    "processes": _processes,
    "incr": _count,
    "decr": _count,
    "numprocesses": _number("numprocesses"),
    "numwatchers": _number("numwatchers"),
    "list": _list,
    "status": _status,
    "options": _options,
    "get": _options,
    "globaloptions": _options,
    "stats": _stats,
    "dstats": _dstats,
    "listsockets": _sockets,
    "ipython": _ipython,
}


def note(command: str, props: Mapping[str, Any], reply: Reply) -> str | None:
    """A line for stderr beside the rendered reply (stdout stays what scripts parse), if any."""
    if command == "incr" and reply.get("state") == "backoff" and not is_error(reply):
        retry = reply.get("retry_in")
        when = f" in {retry:.1f}s" if isinstance(retry, int | float) else ""
        return (f"note: {props.get('name')} is backing off: the new processes start at its "
                f"next retry{when} (`circusctl start {props.get('name')}` tries at once)")
    return None


def render(command: str, reply: Reply) -> str:
    """The text circusctl prints for ``reply`` to ``command`` (``ok`` by default)."""
    if is_error(reply):
        return render_error(reply)
    renderer = _RENDERERS.get(command)
    return "ok" if renderer is None else renderer(reply)
