"""The rollout's pure parts: reading a site's outcome from its config state, choosing a canary."""

from __future__ import annotations

from central.rollout import Plan, RolloutError, canary_of, outcome

import pytest


def state(event: dict | None = None, *, version: int | None = None, kind: str = "applied") -> dict:
    return {"v": 1, "state": kind, "config": {"source": "push", "version": version} if version
            else {"source": "local"}, "event": event}


@pytest.mark.parametrize("doc, expected", [
    (state({"type": "applying", "version": 7}, version=7, kind="confirming"), None),
    (state({"type": "applied", "version": 7}, version=7), ("applied", None, None)),
    (state({"type": "rejected", "version": 7, "reason": "invalid_config", "detail": "1 problem(s)",
            "problems": ["devices[1].kind: is required"]}),
     ("rejected", "invalid_config", "1 problem(s): devices[1].kind: is required")),
    (state({"type": "rolled_back", "version": 7, "reason": "broker_unreachable", "detail": "x"}),
     ("rolled_back", "broker_unreachable", "x")),
    (state({"type": "rejected", "version": 6, "reason": "replay"}), None),     # another push
    (state({"type": "set_aside", "version": 9}, version=7), ("applied", None, None)),
    ("not a document", None),
    (state(None), None),
])
def test_a_sites_outcome_is_read_from_its_retained_config_state(doc, expected):
    assert outcome(doc, 7) == expected


def test_a_revert_outcome_is_told_apart_from_the_push():
    reverted = state({"type": "reverted", "version": 8, "reverted": 7})
    assert outcome(reverted, 8, revert=True) == ("reverted", None, None)
    assert outcome(reverted, 7) is None
    refused = state({"type": "rejected", "version": 8, "reason": "not_in_effect", "detail": "d"})
    assert outcome(refused, 8, revert=True) == ("revert_refused", "not_in_effect", "d")


def test_the_canary_is_a_share_of_at_least_one_site_spread_by_the_envelope():
    sites = [f"S{i:04d}" for i in range(200)]
    a = canary_of(sites, 0.05, "envelope-a")
    assert len(a) == 10 and a == canary_of(list(reversed(sites)), 0.05, "envelope-a")
    assert a != canary_of(sites, 0.05, "envelope-b"), "another push, other canaries"
    assert sorted(a) != sites[:10], "not simply the first sites"
    assert len(canary_of(sites[:3], 0.01, "x")) == 1


@pytest.mark.parametrize("plan", [Plan(canary_share=0), Plan(canary_share=1.5),
                                  Plan(max_failure_share=1), Plan(stage_timeout_s=0)])
def test_a_plan_out_of_range_is_refused(plan):
    with pytest.raises(RolloutError):
        plan.check()
