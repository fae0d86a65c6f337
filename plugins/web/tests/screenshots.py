"""Take docs/web-dashboard.png: the demo (demo/circus.ini, copied to a temporary directory, on
ipc endpoints and free ports) shown in headless Chromium after a minute of running, so the
charts have points, the crasher has gone through backoff and the events column is full.

Usage: ``.venv/bin/python plugins/web/tests/screenshots.py [--wait SECONDS]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from web_browser import Browser

from circus.testing import CircusdProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[3]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wait", type=float, default=60.0, help="seconds of demo before")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web-dashboard.png")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="circus-shots-"))
    demo = work / "demo"
    shutil.copytree(ROOT / "demo", demo, ignore=shutil.ignore_patterns("*.log", "__pycache__"))
    text = (demo / "circus.ini").read_text()
    text = re.sub(r"^(endpoint|pubsub_endpoint) = .*\n", "", text, flags=re.MULTILINE)
    port = free_port()
    text = text.replace("httpd_port = 8080", f"httpd_port = {port}")
    text = text.replace("18080", str(free_port())).replace("18125", str(free_port()))
    text = text.replace("11664", str(free_port()))
    url = f"http://127.0.0.1:{port}/"
    os.chdir(demo)  # the demo's paths are relative to its directory
    with CircusdProcess(text, demo) as daemon, Browser(work / "profile") as browser:
        wait_until(lambda: "dashboard on http://" in daemon.log_text(), "the dashboard",
                   daemon=daemon)
        browser.open(url)
        time.sleep(args.wait)  # a screenshot of a page that has lived a while, not a test
        browser.click('button[data-toggle="worker"]')
        browser.wait(lambda: browser.js("return document.querySelectorAll("
                                        "'pre.output span').length > 0"), "worker's output")
        browser.screenshot(args.out)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
