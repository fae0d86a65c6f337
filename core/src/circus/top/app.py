"""The circus-top screen (urwid): a table of processes that keys sort and filter.

urwid was chosen over textual for a tool people run over ssh on servers: it draws with plain
terminal escapes (no mouse, no true colour needed, works in 80 columns), imports in a fraction
of textual's time, and adds two small pure-Python packages (``wcwidth``, ``typing_extensions``).
It runs on the asyncio loop (``urwid.AsyncioEventLoop``), so the feeds are ordinary tasks and
no thread touches a socket. Redraws are throttled to :data:`REFRESH` seconds whatever the rate
of stats and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import urwid

from circus.ctl.render import duration
from circus.top.feeds import Feeds
from circus.top.model import Row, TopModel

REFRESH = 0.25

#: key -> sort column; pressing the key of the current column flips the order
SORT_KEYS = {"c": "cpu", "m": "mem", "a": "age", "r": "restarts", "n": "name", "p": "pid",
             "s": "state"}
#: (title, width, sort column) in display order; the watcher column's width is computed
COLUMNS: tuple[tuple[str, int, str], ...] = (
    ("WATCHER", 0, "name"), ("WID", 3, "name"), ("PID", 7, "pid"), ("STATE", 8, "state"),
    ("CPU%", 6, "cpu"), ("MEM%", 6, "mem"), ("RSS", 8, "rss"), ("AGE", 7, "age"),
    ("RESTARTS", 9, "restarts"),
)
#: fits 80 columns, as the table does (watcher names are clipped at 18 characters)
HELP = "sort c/m/a/r/n/p/s: cpu mem age restarts name pid state  / filter  q quit"
PALETTE = [
    ("title", "white,bold", "dark blue"),
    ("head", "black", "light gray"),
    ("help", "light gray", ""),
    ("stopped", "yellow", ""),
    ("daemon", "dark cyan", ""),
]


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds)


def _figure(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cells(row: Row) -> list[str]:
    """A row's text per column of :data:`COLUMNS`."""
    return [
        row.watcher, "-" if row.wid is None else str(row.wid),
        "-" if row.pid is None else str(row.pid), row.state, _figure(row.cpu),
        _figure(row.mem, 2), row.rss if row.pid is not None else "-", _age(row.age),
        "-" if row.restarts is None else str(row.restarts),
    ]


def line(texts: list[str], name_width: int) -> str:
    parts = []
    for (_, width, _), text in zip(COLUMNS, texts, strict=True):
        size = width or name_width
        parts.append(text[:size].ljust(size) if width == 0 else text.rjust(size))
    return " ".join(parts)


class TopApp:
    """The screen, its keys and the redraw loop over a :class:`TopModel` fed by :class:`Feeds`."""

    def __init__(self, model: TopModel, feeds_args: dict[str, Any], *, title: str) -> None:
        self.model = model
        self.title = title
        self.sort = "cpu"
        self.reverse = True
        self.filter = ""
        self._dirty = True
        self._feeds_args = feeds_args
        self.feeds: Feeds | None = None
        self.walker: urwid.SimpleFocusListWalker[urwid.Text] = urwid.SimpleFocusListWalker([])
        self.header_text = urwid.Text("")
        self.columns_text = urwid.Text("")
        self.footer_text = urwid.Text(("help", HELP))
        self.edit = urwid.Edit("filter: ")
        header = urwid.Pile([urwid.AttrMap(self.header_text, "title"),
                             urwid.AttrMap(self.columns_text, "head")])
        self.frame: urwid.Frame[Any, Any, Any] = urwid.Frame(
            urwid.ListBox(self.walker), header=header, footer=self.footer_text
        )
        self.loop: urwid.MainLoop | None = None

    # -- input ---------------------------------------------------------------------------------

    def on_key(self, key: str | tuple[Any, ...]) -> bool | None:
        if not isinstance(key, str):
            return None
        if self.frame.focus_position == "footer":  # typing a filter
            if key == "enter":
                self._end_filter(keep=True)
            elif key == "esc":
                self._end_filter(keep=False)
            return True
        if key in ("q", "Q"):
            raise urwid.ExitMainLoop
        if key in SORT_KEYS:
            column = SORT_KEYS[key]
            self.reverse = not self.reverse if column == self.sort else column != "name"
            self.sort = column
        elif key == "/":
            self.edit.set_edit_text(self.filter)
            self.edit.set_edit_pos(len(self.filter))
            self.frame.footer = self.edit
            self.frame.focus_position = "footer"
        elif key == "esc":
            self.filter = ""
        else:
            return None
        self.changed()
        return True

    def _on_filter_text(self, _widget: Any, text: str) -> None:
        self.filter = text  # filters as you type
        self.changed()

    def _end_filter(self, keep: bool) -> None:
        if not keep:
            self.filter = ""
        self.frame.footer = self.footer_text
        self.frame.focus_position = "body"
        self.changed()

    # -- drawing -------------------------------------------------------------------------------

    def changed(self) -> None:
        self._dirty = True

    def render(self) -> None:
        rows = self.model.view(self.sort, self.reverse, self.filter)
        name_width = max([len("WATCHER") + 1, *(len(r.watcher) for r in rows)])  # + sort mark
        name_width = min(name_width, 18)  # the table then fits 80 columns
        heads = []
        for title, _, column in COLUMNS:
            mark = ("v" if self.reverse else "^") if column == self.sort and title != "WID" else ""
            heads.append(title + mark)
        self.columns_text.set_text(line(heads, name_width))
        watchers, procs = self.model.totals()
        status = self.feeds.status if self.feeds is not None else ""
        shown = f"  filter: {self.filter!r}" if self.filter else ""
        self.header_text.set_text(
            f"{self.title}  {watchers} watchers, {procs} processes{shown}"
            + (f"  [{status}]" if status else "")
        )
        widgets = []
        for row in rows:
            text = line(cells(row), name_width)
            style = "daemon" if row.daemon else ("stopped" if row.state != "active" else None)
            widgets.append(urwid.Text((style, text) if style else text, wrap="clip"))
        if not widgets:
            widgets.append(urwid.Text("(no process yet: waiting for the stats stream)"))
        self.walker[:] = widgets

    async def _redraw(self) -> None:
        while True:
            await asyncio.sleep(REFRESH)
            if self._dirty and self.loop is not None:
                self._dirty = False
                self.render()
                self.loop.draw_screen()

    # -- running -------------------------------------------------------------------------------

    def run(self) -> None:
        """Take over the terminal until ``q``, Ctrl-C or SIGTERM."""
        aio = asyncio.new_event_loop()
        asyncio.set_event_loop(aio)
        urwid.connect_signal(self.edit, "change", self._on_filter_text)
        self.loop = urwid.MainLoop(
            self.frame, PALETTE, event_loop=urwid.AsyncioEventLoop(loop=aio),
            unhandled_input=self.on_key, handle_mouse=False,
        )
        stop = self._exit_soon
        aio.add_signal_handler(signal.SIGTERM, stop)
        aio.add_signal_handler(signal.SIGINT, stop)
        tasks: list[asyncio.Task[None]] = []

        def start() -> None:
            self.feeds = Feeds(self.model, self.changed, **self._feeds_args)
            self.feeds.start()
            tasks.append(aio.create_task(self._redraw(), name="top-redraw"))

        aio.call_soon(start)
        self.render()
        try:
            self.loop.run()
        finally:
            for task in tasks:
                task.cancel()
            if self.feeds is not None:
                aio.run_until_complete(self.feeds.stop())
            with contextlib.suppress(Exception):
                aio.run_until_complete(aio.shutdown_asyncgens())
            aio.close()

    def _exit_soon(self) -> None:
        """Signals end the screen the way ``q`` does (the terminal is restored)."""
        if self.loop is not None:
            self.loop.set_alarm_in(0, _raise_exit)


def _raise_exit(*_: Any) -> None:
    raise urwid.ExitMainLoop
