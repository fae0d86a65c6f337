"""The dashboard as a person uses it: Debian's headless Chromium against a real circusd.

The page lists the watchers; a process killed with ``kill -9`` shows its replacement within a
second; "stop" stops the watcher and the page shows it; a wrong token is refused and changes
nothing. The page is saved as a screenshot in the test's directory (or in
``$CIRCUS_WEB_SCREENSHOTS``); docs/web-dashboard.png comes from ``screenshots.py`` (the demo).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from web_browser import Browser, Dashboard

from circus.testing import free_port, wait_until

WATCHERS = (
    "[watcher:api]\ncmd = sleep 300\nnumprocesses = 3\n\n"
    "[watcher:worker]\ncmd = sh -c 'while true; do echo job done $$; sleep 0.3; done'\n"
    "numprocesses = 2\n"
)


def test_the_page_lists_every_watcher_and_plugin(dashboard: Callable[..., Dashboard],
                                                 browser: Browser) -> None:
    board = dashboard(WATCHERS)
    browser.open(board.url)
    browser.wait(lambda: browser.row("api") == {"state": "active", "count": 3, "restarts": 0},
                 "api's 3 processes")
    browser.wait(lambda: browser.row("worker") == {"state": "active", "count": 2,
                                                   "restarts": 0}, "worker's 2 processes")
    # the plugin's own watcher may still be starting when the page opens
    browser.wait(lambda: browser.row("plugin:web").get("state") == "active", "the plugin row")
    assert browser.js("return document.getElementById('tokenform').hidden") is True


def test_a_killed_process_shows_its_restart_within_a_second(
        dashboard: Callable[..., Dashboard], browser: Browser) -> None:
    board = dashboard(WATCHERS)
    browser.open(board.url)
    browser.click('button[data-toggle="api"]')
    browser.wait(lambda: len(browser.pids()) == 3, "api's processes in the detail")
    before = browser.pids()
    victim = before[1]
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        pids = browser.pids()
        return victim not in pids and len(pids) == 3

    browser.wait(replaced, "the killed process replaced on the page", timeout=10)
    shown = time.monotonic() - killed
    print(f"kill -9 -> replacement on the page: {shown * 1000:.0f} ms")
    assert shown < 1.0, f"the restart took {shown:.2f} s to show"
    browser.wait(lambda: browser.row("api")["restarts"] == 1, "the restart counted")
    events = browser.js("return document.getElementById('events').textContent")
    assert f"api reap {victim} (exit -9)" in events


def test_stop_button_stops_the_watcher(dashboard: Callable[..., Dashboard],
                                       browser: Browser) -> None:
    board = dashboard(WATCHERS)
    browser.open(board.url)
    browser.wait(lambda: browser.row("worker").get("count") == 2, "worker running")
    browser.click('tr[data-watcher="worker"] button[data-cmd="stop"]')
    browser.wait(lambda: browser.notice()[0] == "ok", "the command's reply")
    assert browser.notice()[1].startswith("stop worker: ok")
    browser.wait(lambda: browser.row("worker") == {"state": "stopped", "count": 0,
                                                   "restarts": 0}, "worker stopped")
    assert board.daemon.call("status", name="worker")["status"] == "stopped"
    browser.click('tr[data-watcher="worker"] button[data-cmd="start"]')
    browser.wait(lambda: browser.row("worker").get("count") == 2, "worker started again")


def test_a_wrong_token_is_refused(dashboard: Callable[..., Dashboard],
                                  browser: Browser) -> None:
    board = dashboard(WATCHERS, token="right-token-1234")
    browser.open(board.url)
    browser.wait(lambda: browser.row("api").get("count") == 3, "api running")
    assert browser.js("return document.getElementById('tokenform').hidden") is False
    browser.type("#token", "wrong-token-9999")
    browser.click('tr[data-watcher="api"] button[data-cmd="stop"]')
    browser.wait(lambda: browser.notice()[0] == "error", "the refusal")
    assert "wrong or missing access token" in browser.notice()[1]
    assert board.daemon.call("status", name="api")["status"] == "active"
    browser.type("#token", "right-token-1234")
    browser.click('tr[data-watcher="api"] button[data-cmd="decr"]')
    browser.wait(lambda: browser.row("api").get("count") == 2, "decr applied")
    assert browser.notice()[0] == "ok"


def test_output_chart_and_screenshot(dashboard: Callable[..., Dashboard],
                                     browser: Browser, tmp_path: Path) -> None:
    stats = f"statsd = true\nstats_endpoint = tcp://127.0.0.1:{free_port()}"
    board = dashboard(WATCHERS, circus=stats)  # cpu and memory from the stats stream
    browser.open(board.url)
    browser.wait(lambda: browser.row("worker").get("count") == 2, "worker running")
    browser.click('button[data-toggle="worker"]')
    browser.wait(lambda: "job done" in browser.js(
        "return document.querySelector('pre.output')?.textContent ?? ''"), "worker's output")
    count = browser.js("return document.querySelectorAll('pre.output span').length")
    wait_until(lambda: browser.js("return document.querySelectorAll('pre.output span')"
                                  ".length") > count + 2, "new output lines, live")
    browser.wait(lambda: browser.js("return document.querySelector('.chart.cpu polyline')"
                                    ".getAttribute('points').length") > 0,
                 "the chart drawn", timeout=30)
    folder = Path(os.environ.get("CIRCUS_WEB_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    browser.screenshot(folder / "web-dashboard-test.png")
    assert (folder / "web-dashboard-test.png").stat().st_size > 10_000
