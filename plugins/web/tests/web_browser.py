"""Real parts for the dashboard's tests and benchmark: circusd running the web plugin, and
Debian's Chromium driven through chromedriver (selenium; never a downloaded browser).

Chromium and chromedriver come from Debian (``apt-get install chromium chromium-driver``; dev.py
installs them); without them the browser tests skip, or fail under ``CIRCUS_REQUIRE_PARTS``.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from support import kill_tree

from circus.testing import CircusdProcess, free_port, missing_part, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: the flags the brief asks for: headless, nothing reaching out, a fresh profile per run
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,900",
)


class Dashboard:
    """circusd with ``[plugin:web]`` on a free 127.0.0.1 port and the given watchers."""

    def __init__(self, watchers: str, tmp_path: Path, *, circus: str = "",
                 **options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        plugin = "".join(f"{key} = {value}\n" for key, value in options.items())
        text = (f"[circus]\n{circus}\n{watchers}\n\n[plugin:web]\nuse = web\n"
                f"port = {self.port}\n{plugin}")
        self.daemon = CircusdProcess(text, tmp_path)

    def start(self) -> Dashboard:
        self.daemon.start()
        wait_until(lambda: self.state() is not None, "the dashboard answering",
                   daemon=self.daemon)
        return self

    def stop(self) -> None:
        self.daemon.stop()

    def state(self) -> dict[str, Any] | None:
        """``GET /api/state``, or ``None`` while nothing answers."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/state", timeout=5) as reply:
                result: dict[str, Any] = json.load(reply)
                return result
        except (urllib.error.URLError, ConnectionError):
            return None

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, Any]]:
        """A POST as the page sends it (``headers`` replace the page's); status and JSON."""
        sent = {"Content-Type": "application/json", "X-Circus-Web": "1"}
        sent.update(headers or {})
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                         headers={k: v for k, v in sent.items() if v},
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.load(reply)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)


class Browser:
    """One headless Chromium session (selenium + chromedriver from Debian)."""

    def __init__(self, profile: Path) -> None:
        if not (os.path.exists(CHROMIUM) and shutil.which(CHROMEDRIVER)):
            missing_part("Chromium is not installed (Debian: apt-get install chromium "
                         "chromium-driver)")
        os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium-manager never runs anyway
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        self.service = Service(CHROMEDRIVER)
        self.driver = webdriver.Chrome(service=self.service, options=options)
        self.driver.set_page_load_timeout(30)
        self.driver.set_script_timeout(30)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pid = self.service.process.pid if self.service.process else None
        try:
            self.driver.quit()
        finally:
            if pid is not None:
                kill_tree(pid)  # chromedriver and any Chromium it left

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def open(self, url: str) -> None:
        """Load the page and wait until its first snapshot is on screen."""
        self.driver.get(url)
        self.wait(lambda: self.js("return window.circusCounters && "
                                  "window.circusCounters.snapshots > 0 && "
                                  "window.circusCounters.renders > 0"), "the first snapshot")

    def wait(self, condition: Any, what: str, timeout: float = 20.0) -> None:
        wait_until(lambda: bool(condition()), what, timeout)

    def row(self, watcher: str) -> dict[str, Any]:
        """What the page shows for ``watcher`` (``{}`` when it shows no such row)."""
        result: dict[str, Any] = self.js("""
            const row = document.querySelector(`tr[data-watcher="${arguments[0]}"]`);
            if (!row) return {};
            return {state: row.dataset.state,
                    count: Number(row.querySelector('.count').dataset.count),
                    restarts: Number(row.querySelector('.restarts').textContent)};
        """, watcher)
        return result

    def pids(self) -> list[int]:
        """The pids listed in the open watcher's detail."""
        return [int(pid) for pid in self.js(
            "return [...document.querySelectorAll('.procs tr[data-pid]')]"
            ".map((r) => r.dataset.pid)")]

    def click(self, selector: str) -> None:
        """A real mouse click (scrolled into view), as a person would, once the element is
        there (the page renders on its next animation frame)."""
        from selenium.webdriver.common.by import By

        self.wait(lambda: self.js("return document.querySelector(arguments[0]) !== null",
                                  selector), f"{selector} on the page")
        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def type(self, selector: str, text: str) -> None:
        from selenium.webdriver.common.by import By

        field = self.driver.find_element(By.CSS_SELECTOR, selector)
        field.clear()
        field.send_keys(text)

    def notice(self) -> tuple[str, str]:
        """The command result the page shows: (``ok``/``error``/``""``, its text)."""
        found = self.js("const n = document.getElementById('notice');"
                        "return [n.dataset.result || '', n.textContent];")
        return str(found[0]), str(found[1])

    def screenshot(self, path: Path) -> None:
        self.driver.save_screenshot(str(path))
