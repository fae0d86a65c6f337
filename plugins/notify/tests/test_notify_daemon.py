"""notify under a real circusd: real crash loops, alerts received by a real HTTP server and a
real SMTP server. Every count is checked after a quiet window, so a repeated alert would show."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import structlog
from receivers import MailReceiver, WebhookReceiver

from circus.testing import CircusdProcess, EventCollector, free_port
from circus_plugin_notify.alert import Alert
from circus_plugin_notify.channels import EmailChannel, deliver
from circus_plugin_notify.settings import EmailSettings

TIMEOUT = 30.0


def crasher(tmp_path: Path) -> str:
    """Crashes 0.1 s after each start until ``fixed`` exists in ``tmp_path``."""
    script = tmp_path / "crasher.sh"
    script.write_text(f'if [ -e "{tmp_path}/fixed" ]; then exec sleep 120; fi\n'
                      "sleep 0.1\nexit 3\n")
    return f"sh {script}"


def quiet(seconds: float) -> None:
    """The bounded "nothing more arrives" window after the last expected alert."""
    time.sleep(seconds)


def start_alerted(daemon: CircusdProcess, webhook: WebhookReceiver, kind: str,
                  ready: str = "notifying ") -> dict[str, Any]:
    """Start ``web`` once ``ready`` is in the log (by default notify's ``handle_init`` line:
    its SUB socket is connected by then, subscribed within the round trip of its first
    command, so the first crashes are not missed); its one alert, of ``kind``."""
    deadline = time.monotonic() + TIMEOUT
    while not all(text in daemon.log_text() for text in ("notifying ", ready)):
        assert time.monotonic() < deadline, daemon.log_text()
        time.sleep(0.05)
    daemon.call("start", name="web")
    (alert,) = webhook.wait(1)
    assert alert["kind"] == kind
    assert alert["watcher"] == "web"
    return alert


def kinds(bodies: list[dict[str, object]]) -> list[object]:
    return [b["kind"] for b in bodies]


def test_crash_loop_sends_one_alert_and_one_recovery(
    tmp_path: Path, webhook: WebhookReceiver, mail: MailReceiver
) -> None:
    config = (
        "[circus]\ndebug = true\n\n"
        f"[watcher:web]\ncmd = {crasher(tmp_path)}\nautostart = false\nbackoff_max = 0.2\n\n"
        "[plugin:notify]\nuse = notify\n"
        f"webhook_url = {webhook.url}\n"
        f"email_to = ops@example.com, oncall@example.com\nemail_from = circus@example.com\n"
        f"smtp_host = 127.0.0.1\nsmtp_port = {mail.port}\n"
        "crashes = 3\ncrash_window = 10\nrecovery_time = 3\nmin_interval = 0\n"
    )
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        alert = start_alerted(daemon, webhook, "crashing")
        assert alert["text"].startswith("web: crashing: 3 unexpected exits within 10s")
        assert alert["details"]["exit_codes"][-1] == 3
        (message,) = mail.wait(1)
        assert message["Subject"] == "[circus] web: crashing"
        assert message["From"] == "circus@example.com"
        assert mail.recipients == [["ops@example.com", "oncall@example.com"]]
        # let the loop go on: many more crashes, still one alert
        ev.wait_count(lambda t, p: t == "watcher.web.reap", 15, timeout=TIMEOUT)
        (tmp_path / "fixed").touch()
        bodies = webhook.wait(2)
        assert kinds(bodies) == ["crashing", "recovered"]
        mail.wait(2)
        # the operator stops the healthy watcher: nothing to report
        daemon.call("stop", name="web")
        ev.wait_for(lambda t, p: t == "watcher.web.stop", timeout=TIMEOUT)
        quiet(2.5)
        assert kinds(webhook.bodies) == ["crashing", "recovered"]
        assert [m["Subject"] for m in mail.messages] == [
            "[circus] web: crashing", "[circus] web: recovered"]
        assert all(p == "/hooks/circus" for p in webhook.paths)


def test_a_crash_loop_held_back_by_backoff_has_no_false_recovery(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    """circusd's backoff spaces the crashes 1 s apart: never 3 within crash_window (1 s), and
    each wait is longer than recovery_time (0.8 s). The failures in a row (``backoff`` events)
    open the incident; the waits are no recovery; the fix is."""
    config = (
        "[circus]\ndebug = true\n\n"
        f"[watcher:web]\ncmd = {crasher(tmp_path)}\nautostart = false\n"
        "backoff_start = 1\nbackoff_max = 1\n\n"
        "[plugin:notify]\nuse = notify\n"
        f"webhook_url = {webhook.url}\n"
        "crashes = 3\ncrash_window = 1\nrecovery_time = 0.8\nmin_interval = 0\n"
    )
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        alert = start_alerted(daemon, webhook, "crashing")
        assert alert["text"].startswith("web: crashing: 3 quick failures in a row; circusd "
                                        "retries in ")
        ev.wait_count(lambda t, p: t == "watcher.web.backoff", 6, timeout=TIMEOUT)
        assert kinds(webhook.bodies) == ["crashing"]  # three more waits, no recovery
        (tmp_path / "fixed").touch()
        assert kinds(webhook.wait(2)) == ["crashing", "recovered"]
        quiet(1.5)
        assert kinds(webhook.bodies) == ["crashing", "recovered"]


def test_flapping_plugin_stop_is_one_flapping_alert(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    config = (
        "[circus]\ndebug = true\n\n"
        f"[watcher:web]\ncmd = {crasher(tmp_path)}\nautostart = false\nbackoff_max = 0.2\n\n"
        "[plugin:flapping]\nuse = flapping\nattempts = 2\nwindow = 5\nretry_in = 1\n"
        "max_retry = 2\n\n"
        "[plugin:notify]\nuse = notify\n"
        f"webhook_url = {webhook.url}\ncrashes = 50\ncrash_window = 10\nrecovery_time = 5\n"
    )
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        # the flapping plugin reads every watcher's options at start: once it did, it is live
        alert = start_alerted(daemon, webhook, "flapping", ready="web: attempts=2")
        # our circusd names who sent the stop; the text says so
        assert alert["details"]["by"] == "plugin:flapping"
        assert alert["text"].startswith("web: stopped by plugin:flapping after ")
        # the flapping plugin retries twice (start, crashes, stop), then gives up: same incident
        ev.wait_count(lambda t, p: t == "watcher.web.stop", 3, timeout=TIMEOUT)
        quiet(2.0)
        assert kinds(webhook.bodies) == ["flapping"]
        assert daemon.call("status", name="web")["status"] == "stopped"


def test_a_dead_smtp_server_is_retried_then_reported_lost() -> None:
    """A real refused connection (nothing listens on the port): bounded retries, then False."""
    settings = EmailSettings(to=("ops@example.com",), sender="c@example.com", host="127.0.0.1",
                             port=free_port(), user=None, password=None, tls="none",
                             timeout=2.0, subject_prefix="[circus]")
    alert = Alert("crashing", "web", time.time(), "web: crashing")
    started = time.monotonic()
    ok = asyncio.run(deliver(EmailChannel(settings), alert, 1, structlog.get_logger()))
    assert ok is False
    assert time.monotonic() - started >= 1.0  # one retry after RETRY_DELAY


def start_until_alerted(daemon: CircusdProcess, ev: EventCollector, webhook: WebhookReceiver,
                        watcher: str, end: str) -> dict[str, object]:
    """Start ``watcher`` until its run (which ends with the ``end`` event) brings an alert.

    The plugin subscribes while circusd runs (ZeroMQ slow joiner): a first run may go unseen.
    """
    deadline = time.monotonic() + TIMEOUT
    while not webhook.bodies:
        assert time.monotonic() < deadline, daemon.log_text()
        mark = len(ev.events)
        daemon.call("start", name=watcher)
        ev.wait_for(lambda t, p: t == f"watcher.{watcher}.{end}", timeout=TIMEOUT, start=mark)
        with contextlib.suppress(AssertionError):
            webhook.wait(1, timeout=2.0)
    quiet(1.0)
    (alert,) = webhook.bodies
    return alert


def test_watcher_stopped_by_circusd_itself(tmp_path: Path, webhook: WebhookReceiver) -> None:
    """``respawn = false`` and the process exits: circusd stops the watcher on its own."""
    config = (
        "[circus]\ndebug = true\n\n"
        '[watcher:once]\ncmd = sh -c "sleep 0.3; exit 0"\nrespawn = false\nautostart = false\n\n'
        "[plugin:notify]\nuse = notify\n"
        f"webhook_url = {webhook.url}\nmin_interval = 0\n"
    )
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        alert = start_until_alerted(daemon, ev, webhook, "once", "stop")
        assert alert["kind"] == "stopped"
        assert str(alert["text"]).startswith("once: stopped by circusd itself")


def test_circusd_giving_up_is_a_stopped_alert(tmp_path: Path, webhook: WebhookReceiver) -> None:
    """``give_up_after``: after quick failures in a row circusd gives up (``fatal`` event)."""
    config = (
        "[circus]\ndebug = true\n\n"
        '[watcher:doomed]\ncmd = sh -c "exit 3"\nautostart = false\ngive_up_after = 3\n'
        "backoff_start = 0.05\nbackoff_max = 0.1\n\n"
        "[plugin:notify]\nuse = notify\n"
        f"webhook_url = {webhook.url}\nmin_interval = 0\ncrashes = 50\n"
    )
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        alert = start_until_alerted(daemon, ev, webhook, "doomed", "fatal")
        assert alert["kind"] == "stopped"
        assert str(alert["text"]).startswith(
            "doomed: circusd gave up on it (state fatal) after 3 quick failures in a row")
        assert daemon.call("status", name="doomed")["status"] == "fatal"
