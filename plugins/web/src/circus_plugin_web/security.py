"""Who may send commands through the dashboard, and from which page.

* **Token**: with ``token`` set, every command (and output request) needs it in the
  ``X-Circus-Token`` header, compared in constant time. Listening beyond loopback without one
  is refused at configuration time (settings.py).
* **CSRF**: a command is a ``POST`` with a JSON body and the custom header ``X-Circus-Web``.
  A page of another site cannot send a custom header without a CORS preflight, which this
  server never approves, and a form cannot send JSON; an ``Origin`` header, when the browser
  sends one, must name this very server. Nothing changes state on ``GET``.
* **DNS rebinding**: on loopback the ``Host`` header must be a loopback name, so a hostile name
  that resolves to 127.0.0.1 cannot reach the dashboard from a browser.
* **Least privilege**: the commands reach circusd as the plugin (its own identity), so
  ``[plugin:web] allow = ...`` limits what any browser can do.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

TOKEN_HEADER = "x-circus-token"
CSRF_HEADER = "x-circus-web"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
#: headers of every response: no framing (clickjacking), scripts and styles from here only
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Refused(Exception):
    """A request the dashboard does not serve: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_command_request(request: Request, token: str | None) -> None:
    """Raise :class:`Refused` unless ``request`` may change something."""
    if request.headers.get(CSRF_HEADER) != "1":
        raise Refused(403, f"missing the {CSRF_HEADER} header (cross-site requests are refused)")
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Refused(415, "commands are sent as application/json")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        raise Refused(403, f"origin {origin} is not this dashboard")
    if token is not None:
        given = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Refused(401, "wrong or missing access token" if given else
                          "this dashboard needs its access token for commands")
