"""circus-top's model: merging the stats stream, snapshots and events; sorting and filtering.
(The screen itself is tested in tmux: tests/test_circus_top.py.)"""

from __future__ import annotations

from circus.top.app import cells, line
from circus.top.model import TopModel

SNAPSHOT = {"watchers": [
    {"name": "Web", "state": "active", "restarts": 2, "processes": [
        {"pid": 11, "wid": 1, "uptime": 5.0, "restarts": 2, "cpu": 1.0, "mem": 0.5, "rss": "1M"},
        {"pid": 12, "wid": 2, "uptime": 9.0, "restarts": 0, "cpu": 3.0, "mem": 0.1, "rss": "2M"},
    ]},
    {"name": "idle", "state": "stopped", "restarts": 0, "processes": []},
]}


def stat(cpu: float, mem: float, age: float = 1.0) -> dict[str, object]:
    return {"cpu": cpu, "mem": mem, "mem_info1": "3.00M", "age": age, "name": None}


def test_snapshot_then_stats_then_events() -> None:
    model = TopModel()
    model.on_processes(SNAPSHOT, now=100.0)
    model.on_stat("stat.web.11", stat(50.0, 0.7), now=101.0)
    model.on_stat("stat.web", {"pid": [11, 12], "cpu": 9.0}, now=101.0)  # aggregate: ignored
    model.on_stat("stat.web.99", stat(1.0, 1.0), now=101.0)  # not in the snapshot: ignored
    model.on_stat("stat.circus.7", {**stat(2.0, 0.2), "name": "circusd"}, now=101.0)
    rows = model.view("cpu")
    assert [(r.watcher, r.pid) for r in rows] == [
        ("Web", 11), ("Web", 12), ("circusd", 7), ("idle", None)]
    assert (rows[0].cpu, rows[0].restarts, rows[0].wid, rows[0].rss) == (50.0, 2, 1, "3.00M")
    assert model.totals() == (2, 2)
    # a snapshot does not override fresh stream figures, but replaces stale ones
    model.on_processes(SNAPSHOT, now=102.0)
    assert (model.rows[11].cpu, model.rows[12].cpu) == (50.0, 3.0)
    model.on_processes(SNAPSHOT, now=110.0)
    assert model.rows[11].cpu == 1.0

    model.on_event("watcher.web.reap", {"process_pid": 11})
    model.on_event("watcher.idle.start", {})
    assert [r.pid for r in model.view("pid", reverse=False)] == [None, 7, 12]
    assert {r.watcher: r.state for r in model.view()}["idle"] == "active"
    model.on_event("watcher.web.stop", {})
    assert model.rows[12].state == "stopped"


def test_sort_and_filter() -> None:
    model = TopModel()
    model.on_processes(SNAPSHOT, now=100.0)
    assert [r.pid for r in model.view("cpu")] == [12, 11, None]
    assert [r.pid for r in model.view("cpu", reverse=False)] == [None, 11, 12]
    assert [r.pid for r in model.view("age")] == [12, 11, None]
    assert [r.watcher for r in model.view("name", reverse=False)] == ["idle", "Web", "Web"]
    assert [r.pid for r in model.view(text="WEB")] == [12, 11]
    assert [r.pid for r in model.view(text="stopp")] == [None]
    assert [r.pid for r in model.view(text="12")] == [12]


def test_without_snapshots_rows_come_from_stats_and_expire() -> None:
    model = TopModel(process_timeout=3.0)
    model.on_stat("stat.web.11", stat(1.0, 0.1), now=10.0)
    model.on_stat("stat.web.12", stat(1.0, 0.1), now=12.0)
    model.on_statuses({"web": "active"})
    model.expire(now=14.0)
    assert list(model.rows) == [12]
    assert model.rows[12].state == "active"


def test_a_row_as_text() -> None:
    model = TopModel()
    model.on_processes(SNAPSHOT, now=100.0)
    text = line(cells(model.rows[11]), name_width=8)
    assert text.split() == ["Web", "1", "11", "active", "1.0", "0.50", "1M", "5s", "2"]
    idle = next(r for r in model.view() if r.pid is None)
    assert line(cells(idle), 8).split() == ["idle", "-", "-", "stopped", "-", "-", "-", "-", "0"]
