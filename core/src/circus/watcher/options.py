"""A watcher's options as the commands see them, read and written through the option schema.

``options``/``get`` answer every option the schema marks as shown (plus free-form extras);
``set`` stores values already validated by :func:`circus.commands.options.validate_options`
and reports what must follow: a graceful reload, new output streams, or count management.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from circus.config.model import WATCHER_OPTIONS, WatcherConfig
from circus.config.schema import Effect
from circus.config.watcher_options import settable

STREAMS = ("stdout_stream", "stderr_stream")


def shown_options(cfg: WatcherConfig) -> dict[str, Any]:
    """The ``options`` reply: shown options (keys sorted) plus free-form extras."""
    values: dict[str, Any] = {
        opt.shown_as: opt.kind.show(getattr(cfg, name))
        for name, opt in WATCHER_OPTIONS.items()
        if opt.shown
    }
    for key, value in cfg.extra.items():
        if key != "__name__":
            values.setdefault(key, value)
    return dict(sorted(values.items()))


@dataclass
class Applied:
    """What the stored ``set`` values need next."""

    reload: bool = False
    streams: bool = False
    #: ``hooks.X`` specs changed: their modules are re-imported at the next call
    hooks: dict[str, str] | None = None


def store(cfg: WatcherConfig, key: str, value: Any, applied: Applied) -> None:
    """Store one validated ``set`` value, converted by its option's kind; ignored keys pass."""
    found = settable(key)
    if found is None or found.option.effect is Effect.IGNORE:
        return
    opt, sub = found.option, found.sub
    kind = opt.kind
    if opt.name in STREAMS:
        # a pipe only exists for processes spawned with a stream: reload to get one
        applied.reload = applied.reload or not getattr(cfg, opt.name)
        applied.streams = True
    else:
        applied.reload = applied.reload or opt.effect is Effect.RELOAD
    if opt.name == "hooks":
        hooks = {sub: value} if sub is not None else value
        applied.hooks = {**(applied.hooks or {}), **{str(k): str(v) for k, v in hooks.items()}}
        cfg.hooks.update(applied.hooks)
    elif sub is not None:
        getattr(cfg, opt.name)[sub] = kind.convert_item(sub, value)
    elif isinstance(getattr(cfg, opt.name), dict):
        current = getattr(cfg, opt.name)
        current.clear()
        current.update(kind.convert(value))
    else:
        setattr(cfg, opt.name, kind.convert(value))
