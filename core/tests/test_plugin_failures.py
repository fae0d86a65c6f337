"""The observers' failure policy (circus.plugins.failures), with plain numbers."""

from __future__ import annotations

import pytest

from circus.plugins.failures import FailurePolicy, FailureRule, Verdict


def feed(policy: FailurePolicy, results: list[tuple[bool, float]]) -> list[Verdict]:
    return [policy.record(ok, now) for ok, now in results]


def test_acts_after_consecutive_failures_only() -> None:
    policy = FailurePolicy(FailureRule(max_failures=3, cooldown=0))
    verdicts = feed(policy, [(False, 0), (False, 1), (True, 2), (False, 3), (False, 4),
                             (False, 5)])
    assert verdicts == [Verdict.FAILING, Verdict.FAILING, Verdict.RECOVERED,
                        Verdict.FAILING, Verdict.FAILING, Verdict.ACT]


def test_default_acts_on_the_first_failure_as_0_19() -> None:
    assert FailurePolicy(FailureRule()).record(False, 0) is Verdict.ACT


def test_failures_in_the_cooldown_are_not_counted_and_it_backs_off() -> None:
    policy = FailurePolicy(FailureRule(max_failures=1, cooldown=10, max_cooldown=25))
    assert policy.record(False, 0) is Verdict.ACT  # quiet until 10, next cooldown 20
    assert policy.record(False, 9.9) is Verdict.COOLING
    assert policy.record(False, 10) is Verdict.ACT  # quiet until 30, next 25 (capped)
    assert policy.quiet_until == 30
    assert policy.record(False, 29) is Verdict.COOLING
    assert policy.record(False, 30) is Verdict.ACT
    assert policy.quiet_until == 55
    assert policy.actions == 3


def test_success_resets_the_backoff() -> None:
    policy = FailurePolicy(FailureRule(max_failures=1, cooldown=10))
    feed(policy, [(False, 0), (False, 10)])  # two actions: the next cooldown would be 40
    assert policy.record(True, 31) is Verdict.RECOVERED
    assert policy.record(True, 32) is Verdict.HEALTHY
    assert policy.record(False, 33) is Verdict.ACT
    assert policy.quiet_until == 43


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_failures": 0}, "max_failures"), ({"cooldown": -1}, "cooldown"),
     ({"cooldown": 10, "max_cooldown": 5}, "max_cooldown")],
)
def test_rule_refuses_bad_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FailureRule(**kwargs)  # type: ignore[arg-type]
