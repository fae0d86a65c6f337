"""The dashboard's HTTP side: a Starlette application over a :class:`Backend` (the plugin).

``GET /`` the page (plain HTML, CSS and a small script shipped in ``static/``, no build step),
``GET /api/stream`` server-sent events (a snapshot, then batches of changes), ``GET /api/state``
the snapshot as JSON, ``POST /api/command`` a command (security.py says who may),
``POST /api/output`` a watcher's recent output lines (and its live lines on the stream).
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from circus.errors import CallError
from circus_plugin_web.security import (
    HEADERS,
    LOOPBACK_HOSTS,
    Refused,
    check_command_request,
)
from circus_plugin_web.settings import WebSettings

#: the buttons of the page and the commands they send
COMMANDS = ("start", "stop", "restart", "reload", "incr", "decr", "signal")
#: seconds a command may take before the page is told circusd did not answer
COMMAND_TIMEOUT = 30.0
#: output lines a page asks for at most
MAX_LINES = 1000


class Backend(Protocol):
    """What the application needs from the plugin."""

    def view(self) -> dict[str, Any]: ...

    def page_stream(self) -> AsyncIterator[str]: ...

    async def command(self, command: str, timeout: float, **props: Any) -> dict[str, Any]: ...

    async def output(self, watcher: str, lines: int) -> dict[str, Any]: ...


def _props(command: str, body: dict[str, Any]) -> dict[str, Any]:
    """The circusd properties of a page's command; ``Refused`` for a malformed one."""
    if command not in COMMANDS:
        raise Refused(400, f"unknown command {command!r}; the dashboard sends "
                           f"{', '.join(COMMANDS)}")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise Refused(400, "'name' (a watcher name) is required")
    props: dict[str, Any] = {"name": name}
    if command in ("incr", "decr"):
        nb = body.get("nb", 1)
        if not isinstance(nb, int) or isinstance(nb, bool) or not 1 <= nb <= 1000:
            raise Refused(400, "'nb' must be a whole number from 1 to 1000")
        props["nb"] = nb
    if command == "signal":
        props["signum"] = _signal(body.get("signum"))
        pid = body.get("pid")
        if pid is not None:
            if not isinstance(pid, int) or isinstance(pid, bool):
                raise Refused(400, "'pid' must be a process id")
            props["pid"] = pid
    return props


def _signal(value: Any) -> str:
    text = str(value or "").strip().upper()
    name = text if text.startswith("SIG") else f"SIG{text}"
    if text.isdigit():
        try:
            return signal.Signals(int(text)).name
        except ValueError:
            pass
    elif name in signal.Signals.__members__:
        return name
    raise Refused(400, f"unknown signal {value!r}")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    return body


def create_app(settings: WebSettings, backend: Backend) -> Starlette:
    """The application; ``backend`` answers on the loop the server runs on."""
    static = resources.files("circus_plugin_web") / "static"

    def guarded(handler: Callable[[Request], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                check_command_request(request, settings.token)
                return await handler(request)
            except Refused as refused:
                return JSONResponse({"status": "error", "reason": refused.reason},
                                    status_code=refused.status)
        return endpoint

    async def index(request: Request) -> Response:
        return FileResponse(str(static / "index.html"), headers=HEADERS)

    async def state(request: Request) -> Response:
        return JSONResponse(backend.view(), headers=HEADERS)

    async def stream(request: Request) -> Response:
        return StreamingResponse(backend.page_stream(), media_type="text/event-stream",
                                 headers={**HEADERS, "Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    async def command(request: Request) -> Response:
        body = await _json_body(request)
        name = str(body.get("command", ""))
        props = _props(name, body)
        try:
            reply = await backend.command(name, COMMAND_TIMEOUT, **props)
        except CallError as exc:
            return JSONResponse({"status": "error", "reason": f"circusd: {exc}"},
                                status_code=502)
        return JSONResponse(reply)

    async def output(request: Request) -> Response:
        body = await _json_body(request)
        watcher = body.get("name")
        lines = body.get("lines", 100)
        if not isinstance(watcher, str) or not watcher:
            raise Refused(400, "'name' (a watcher name) is required")
        if not isinstance(lines, int) or isinstance(lines, bool) or not 0 <= lines <= MAX_LINES:
            raise Refused(400, f"'lines' must be a whole number from 0 to {MAX_LINES}")
        try:
            reply = await backend.output(watcher, lines)
        except CallError as exc:
            return JSONResponse({"status": "error", "reason": f"circusd: {exc}"},
                                status_code=502)
        return JSONResponse(reply)

    middleware = []
    if settings.loopback:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK_HOSTS)))
    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/state", state),
            Route("/api/stream", stream),
            Route("/api/command", guarded(command), methods=["POST"]),
            Route("/api/output", guarded(output), methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(static)), name="static"),
        ],
        middleware=middleware,
    )
