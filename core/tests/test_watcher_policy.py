"""The watcher policy with synthetic events: no processes, no clock, no loop."""

from __future__ import annotations

from typing import Any

from circus.config import WatcherConfig
from circus.watcher.policy import Action, CancelWake, Policy, Retire, Spawn, Wake
from circus.watcher.state import State, Transition, announcements


def make(**options: Any) -> Policy:
    return Policy(WatcherConfig(name="w", cmd="x", **options), uniform=lambda a, b: b)


class Sim:
    """Plays the runtime: spawns get increasing pids, actions are recorded."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.next_pid = 100
        self.now = 1000.0
        self.log: list[Action] = []
        self.fail_spawns = 0

    def run(self, actions: list[Action]) -> list[Action]:
        self.log += actions
        for action in actions:
            if isinstance(action, Spawn):
                for _ in range(action.count):
                    if self.fail_spawns:
                        self.fail_spawns -= 1
                        self.run(self.policy.spawn_failed(self.now, "ENOENT"))
                        break
                    self.next_pid += 1
                    self.policy.spawned(self.next_pid, self.now)
        return actions

    def start(self) -> None:
        self.run(self.policy.starting(self.now))
        self.run([Spawn(self.policy.missing)])
        self.run(self.policy.started(self.now))

    def crash(self, pid: int, ran_for: float, expected: bool = False) -> list[Action]:
        self.now += ran_for
        return self.run(self.policy.exited(pid, self.now, ran_for, expected))

    def wake(self, delay: float) -> list[Action]:
        self.now += delay
        return self.run(self.policy.timer(self.now))

    def states(self) -> list[State]:
        return [a.new for a in self.log if isinstance(a, Transition)]


def events(actions: list[Action]) -> list[str]:
    return [e for a in actions if isinstance(a, Transition) for e in announcements(a)]


def test_start_then_a_healthy_exit_is_respawned_at_once() -> None:
    sim = Sim(make(numprocesses=2))
    sim.start()
    assert sim.states() == [State.STARTING, State.ACTIVE]
    assert list(sim.policy.running) == [101, 102]
    assert sim.crash(101, ran_for=5.0) == [Spawn(1)]
    assert list(sim.policy.running) == [102, 103]
    # an exit circusd caused (kill command) is replaced at once whatever the uptime
    assert sim.crash(102, ran_for=0.01, expected=True) == [Spawn(1)]


def test_quick_failures_back_off_exponentially_up_to_the_cap_and_announce_it() -> None:
    sim = Sim(make(backoff_start=0.5, backoff_max=3.0))
    sim.start()
    delays = []
    for _ in range(5):
        pid = next(iter(sim.policy.running))
        actions = sim.crash(pid, ran_for=0.1)
        wake = next(a for a in actions if isinstance(a, Wake))
        delays.append(wake.delay)
        assert sim.policy.state is State.BACKOFF
        (transition,) = [a for a in actions if isinstance(a, Transition)]
        assert announcements(transition) == ["backoff"]
        assert transition.payload["retry_at"] == sim.now + wake.delay
        assert transition.payload["failures"] == sim.policy.failures
        assert "min_uptime" in transition.payload["reason"]
        assert sim.policy.missing == 1  # held back, nothing spawned
        assert events(sim.wake(wake.delay)) == []  # the retry's spawn events show it
        assert sim.policy.state is State.ACTIVE
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_process_that_stayed_up_resets_the_backoff() -> None:
    sim = Sim(make(backoff_start=0.5))
    sim.start()
    for _ in range(3):
        sim.crash(next(iter(sim.policy.running)), ran_for=0.1)
        sim.wake(sim.policy.delay)
    assert sim.policy.failures == 3
    assert sim.crash(next(iter(sim.policy.running)), ran_for=2.0) == [Spawn(1)]
    assert (sim.policy.failures, sim.policy.delay) == (0, 0.0)
    actions = sim.crash(next(iter(sim.policy.running)), ran_for=0.1)
    assert Wake(0.5) in actions


def test_failures_while_waiting_join_the_same_retry() -> None:
    sim = Sim(make(numprocesses=3, backoff_start=1.0))
    sim.start()
    pids = list(sim.policy.running)
    assert Wake(1.0) in sim.crash(pids[0], ran_for=0.1)
    assert sim.crash(pids[1], ran_for=0.0) == []
    assert sim.policy.delay == 1.0  # grows once per round, not per process
    assert sim.wake(1.0)[-1] == Spawn(2)


def test_healthy_exit_during_backoff_ends_it_for_every_missing_process() -> None:
    sim = Sim(make(numprocesses=2, backoff_start=5.0))
    sim.start()
    first, second = sim.policy.running
    sim.crash(first, ran_for=0.1)
    actions = sim.crash(second, ran_for=10.0)
    assert actions[0] == CancelWake()
    assert actions[-1] == Spawn(2)
    assert sim.policy.state is State.ACTIVE


def test_give_up_after_n_quick_failures_is_fatal_until_start() -> None:
    sim = Sim(make(give_up_after=3, backoff_start=0.1))
    sim.start()
    for _ in range(2):
        sim.crash(next(iter(sim.policy.running)), ran_for=0.1)
        sim.wake(sim.policy.delay)
    actions = sim.crash(next(iter(sim.policy.running)), ran_for=0.1)
    assert events(actions) == ["fatal"]
    assert CancelWake() in actions
    (fatal,) = [a for a in actions if isinstance(a, Transition)]
    assert fatal.payload["failures"] == 3
    assert sim.policy.state is State.FATAL
    assert sim.policy.timer(sim.now) == []
    assert sim.policy.tick(sim.now) == []  # nothing respawned behind the user's back
    sim.start()  # a fresh start clears the count
    assert sim.policy.state is State.ACTIVE
    assert sim.policy.failures == 0


def test_max_retry_stops_a_watcher_whose_spawns_all_fail() -> None:
    sim = Sim(make(max_retry=2, backoff_start=0.1))
    sim.fail_spawns = 10
    sim.start()
    assert sim.states()[-1] is State.BACKOFF
    sim.wake(sim.policy.delay)
    sim.wake(sim.policy.delay)
    assert sim.policy.spawn_failures == 3
    assert sim.policy.state is State.STOPPED
    stop = sim.log[-1]
    assert isinstance(stop, Transition)
    assert stop.payload["expected"] is False


def test_failed_spawns_never_stop_running_processes() -> None:
    sim = Sim(make(numprocesses=2, max_retry=0, backoff_start=0.1))
    sim.start()
    sim.policy.config.numprocesses = 4
    sim.fail_spawns = 5
    actions = sim.run(sim.policy.count_changed(sim.now))
    assert actions == [Spawn(2)]
    assert sim.policy.state is State.BACKOFF  # not stopped: two processes run
    assert len(sim.policy.running) == 2
    assert not any(isinstance(a, Retire) for a in sim.log)


def test_max_age_spawns_replacements_first_then_retires() -> None:
    sim = Sim(make(numprocesses=2, max_age=10, max_age_variance=5))
    sim.start()
    old = list(sim.policy.running)
    assert sim.policy.tick(sim.now + 14) == []  # due at 10 + 5 (the variance drawn)
    sim.now += 16
    actions = sim.run(sim.policy.tick(sim.now))
    assert actions == [Spawn(2), Retire(tuple(old), "max_age")]
    assert sorted(sim.policy.running) == [103, 104]


def test_stop_while_backing_off_cancels_the_retry() -> None:
    sim = Sim(make(backoff_start=1.0))
    sim.start()
    sim.crash(next(iter(sim.policy.running)), ran_for=0.1)
    actions = sim.run(sim.policy.stopping(sim.now))
    assert actions[0] == CancelWake()
    assert sim.policy.timer(sim.now + 1) == []  # a late timer does nothing
    assert events(sim.policy.stopped(sim.now)) == ["stop"]
    assert sim.policy.state is State.STOPPED


def test_incr_and_decr_during_backoff() -> None:
    sim = Sim(make(numprocesses=3, backoff_start=1.0))
    sim.start()
    sim.crash(next(iter(sim.policy.running)), ran_for=0.1)
    sim.policy.config.numprocesses = 5  # incr 2: the retry spawns them all
    assert sim.policy.count_changed(sim.now) == []
    assert sim.wake(1.0)[-1] == Spawn(3)
    sim.crash(next(iter(sim.policy.running)), ran_for=0.1)
    assert sim.policy.state is State.BACKOFF
    sim.policy.config.numprocesses = 2  # decr 3: the oldest surplus goes, the backoff ends
    actions = sim.policy.count_changed(sim.now)
    assert actions[0] == CancelWake()
    assert isinstance(actions[-1], Retire)
    assert len(actions[-1].pids) == 2
    assert sim.policy.state is State.ACTIVE


def test_respawn_false_stops_when_the_last_process_is_gone() -> None:
    sim = Sim(make(numprocesses=2, respawn=False))
    sim.start()
    first, second = sim.policy.running
    assert sim.crash(first, ran_for=3.0) == []
    assert events(sim.crash(second, ran_for=3.0)) == ["stop"]


def test_protection_can_be_turned_off() -> None:
    sim = Sim(make(min_uptime=0))
    sim.start()
    assert sim.crash(next(iter(sim.policy.running)), ran_for=0.0) == [Spawn(1)]
    sim = Sim(make(backoff_start=0))
    sim.start()
    assert sim.crash(next(iter(sim.policy.running)), ran_for=0.0) == [Spawn(1)]


def test_a_start_held_back_announces_start_then_backoff() -> None:
    sim = Sim(make(backoff_start=0.1))
    sim.fail_spawns = 1
    sim.start()
    starts = [a for a in sim.log if isinstance(a, Transition)]
    assert [announcements(t) for t in starts] == [[], ["start", "backoff"]]
