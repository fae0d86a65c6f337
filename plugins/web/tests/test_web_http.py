"""The dashboard's HTTP side against a real circusd: who may send commands, from which page,
and what the allowlist of the plugin's identity leaves a browser."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from web_browser import Dashboard

from circus.testing import log_count, wait_until

WATCHERS = ("[watcher:api]\ncmd = sh -c 'echo hello from api; exec sleep 300'\n"
            "numprocesses = 2\n")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_commands_need_the_page_header_json_and_the_same_origin(
        dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(WATCHERS)
    stop = {"command": "stop", "name": "api"}
    assert board.post("/api/command", stop, {"X-Circus-Web": ""})[0] == 403  # a plain form
    assert board.post("/api/command", stop, {"Content-Type": "text/plain"})[0] == 415
    status, reply = board.post("/api/command", stop, {"Origin": "http://evil.example"})
    assert status == 403
    assert "not this dashboard" in reply["reason"]
    assert get(f"{board.url}/api/command")[0] == 405  # nothing changes on GET
    # a hostile name resolving to 127.0.0.1 (DNS rebinding) is not served
    assert get(f"{board.url}/", {"Host": "evil.example"})[0] == 400
    assert board.daemon.call("status", name="api")["status"] == "active"

    status, reply = board.post("/api/command", stop, {"Origin": board.url})
    assert (status, reply["status"]) == (200, "ok")
    wait_until(lambda: board.daemon.call("status", name="api")["status"] == "stopped",
               "api stopped", daemon=board.daemon)


def test_bad_commands_are_clear_errors(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(WATCHERS)
    cases = [
        ({"command": "quit", "name": "api"}, 400, "unknown command 'quit'"),
        ({"command": "stop"}, 400, "'name' (a watcher name) is required"),
        ({"command": "incr", "name": "api", "nb": 0}, 400, "'nb' must be"),
        ({"command": "signal", "name": "api", "signum": "NOPE"}, 400, "unknown signal"),
    ]
    for body, code, reason in cases:
        status, reply = board.post("/api/command", body)
        assert (status, reply["status"]) == (code, "error"), body
        assert reason in reply["reason"], reply
    status, reply = board.post("/api/command", {"command": "stop", "name": "nope"})
    assert (status, reply["status"]) == (200, "error")  # circusd's own answer, passed on
    assert "nope" in reply["reason"]


def test_the_token_is_checked(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(WATCHERS, token="right-token-1234")
    body = {"command": "decr", "name": "api"}
    status, reply = board.post("/api/command", body)
    assert (status, reply["reason"]) == (401, "this dashboard needs its access token for "
                                               "commands")
    assert board.post("/api/command", body, {"X-Circus-Token": "wrong-token"})[0] == 401
    assert board.post("/api/output", {"name": "api"}, {"X-Circus-Token": "wrong"})[0] == 401
    assert board.daemon.call("numprocesses", name="api")["numprocesses"] == 2
    status, reply = board.post("/api/command", body, {"X-Circus-Token": "right-token-1234"})
    assert (status, reply["status"]) == (200, "ok")
    assert board.daemon.call("numprocesses", name="api")["numprocesses"] == 1
    state = board.state()
    assert state is not None
    assert state["token_required"] is True


def test_a_read_only_dashboard_is_one_line_of_config(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(WATCHERS, allow="processes, tail")
    status, reply = board.post("/api/command", {"command": "stop", "name": "api"})
    assert (status, reply["status"]) == (200, "error")
    assert "stop" in reply["reason"]
    assert board.daemon.call("status", name="api")["status"] == "active"
    status, reply = board.post("/api/output", {"name": "api", "lines": 10})
    assert (status, reply["status"]) == (200, "ok")
    assert [line["text"] for line in reply["lines"]] == ["hello from api"] * 2


def test_the_page_and_its_headers(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(WATCHERS)
    request = urllib.request.Request(f"{board.url}/")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert "/static/app.js" in reply.read().decode()
    wait_until(lambda: [w["name"] for w in (board.state() or {}).get("watchers", [])]
               == ["api", "plugin:web"], "both watchers in the state")


def test_signal_and_reload_buttons_reach_circusd(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(WATCHERS)
    wait_until(lambda: len(board.daemon.call("list", name="api")["pids"]) == 2, "api running",
               daemon=board.daemon)
    victim, other = board.daemon.call("list", name="api")["pids"]
    status, reply = board.post("/api/command", {"command": "signal", "name": "api",
                                                "signum": "term", "pid": victim})
    assert (status, reply["status"]) == (200, "ok")
    wait_until(lambda: victim not in board.daemon.call("list", name="api")["pids"],
               "the signalled process gone", daemon=board.daemon)
    assert other in board.daemon.call("list", name="api")["pids"]  # only that pid
    status, reply = board.post("/api/command", {"command": "reload", "name": "api"})
    assert (status, reply["status"]) == (200, "ok")
    wait_until(lambda: other not in board.daemon.call("list", name="api")["pids"],
               "the reload replacing the processes", daemon=board.daemon)


def test_a_refused_refresh_is_logged_once(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(WATCHERS, allow="tail")  # no 'processes': the board follows events only
    daemon = board.daemon
    message = "circusd refused 'processes'"
    wait_until(lambda: log_count(daemon, message) >= 1, "the refusal logged", daemon=daemon)
    for _ in range(3):  # every event asks for a refresh again
        daemon.call("incr", name="api", waiting=True)
    wait_until(lambda: sum(len(w["processes"]) for w in (board.state() or {})["watchers"]
                           if w["name"] == "api") == 3, "the 3 spawns shown from events",
               daemon=daemon)
    assert log_count(daemon, message) == 1


def test_backoff_and_fatal_states_reach_the_board(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(WATCHERS + "\n[watcher:broken]\ncmd = sh -c 'exit 3'\n"
                      "backoff_start = 0.5\ngive_up_after = 3\n")

    def state() -> str | None:
        found = [w["state"] for w in (board.state() or {}).get("watchers", [])
                 if w["name"] == "broken"]
        return found[0] if found else None

    seen: set[str | None] = set()
    wait_until(lambda: seen.add(state()) or "fatal" in seen, "broken given up (fatal)",
               daemon=board.daemon)
    assert "backoff" in seen
    assert board.daemon.call("status", name="broken")["status"] == "fatal"
