"""The centre's backlog drain budget (agent.publish.budget): the arithmetic of the limit in force,
and a payload that is not a sane budget ignored with a code, the budget in force kept."""

from __future__ import annotations

import pytest

from agent.publish.budget import (
    MAX_KBPS,
    MIN_KBPS,
    Budget,
    BudgetRejected,
    DrainBudget,
    decode_budget,
    effective_kbps,
)
from agent.publish.topics import Topics, fleet_budget_topic

T = "clinics/SITE001/budget"


@pytest.mark.parametrize("own, site, fleet, expected", [
    (0, None, None, 0),          # nothing anywhere: unlimited, as before
    (500, None, None, 500),      # only the agent's own limit: as before
    (0, None, 200, 200),         # the fleet's budget applies to an unlimited agent
    (500, None, 200, 200),       # the smaller wins
    (100, None, 200, 100),       # the agent's own limit always holds
    (0, 50, 200, 50),            # the site's budget overrides the fleet's ...
    (0, 400, 200, 400),          # ... either way (a big site may get more)
    (300, 400, 200, 300),
])
def test_the_limit_in_force_is_the_smaller_of_own_and_site_else_fleet(own, site, fleet, expected):
    got = effective_kbps(own, Budget(site) if site else None, Budget(fleet) if fleet else None)
    assert got == expected


def test_a_budget_round_trips_through_its_wire_form():
    for kbps in (MIN_KBPS, 64, 1.5, MAX_KBPS):
        assert decode_budget(Budget(kbps).encode(), T) == Budget(kbps)
    assert Budget(64).encode() == b'{"v":1,"kbps":64}'
    assert decode_budget(b"", T) is None, "an empty retained message clears the budget"
    assert decode_budget(b'{"kbps": 64, "note": "storm"}', T) == Budget(64), "unknown keys ignored"


@pytest.mark.parametrize("payload, code", [
    (b"not json", "budget.not_json"),
    (b"\xff\xfe", "budget.not_json"),
    (b"[64]", "budget.not_json"),
    (b'"64"', "budget.not_json"),
    (b'{"v": 2, "kbps": 64}', "budget.bad_version"),
    (b'{"v": true, "kbps": 64}', "budget.bad_version"),
    (b'{"kbps": 0}', "budget.bad_kbps"),             # would strand every backlog
    (b'{"kbps": -5}', "budget.bad_kbps"),
    (b'{"kbps": "64"}', "budget.bad_kbps"),
    (b'{"kbps": true}', "budget.bad_kbps"),
    (b'{"kbps": NaN}', "budget.bad_kbps"),
    (b'{"kbps": Infinity}', "budget.bad_kbps"),
    (b'{"kbps": 1e999}', "budget.bad_kbps"),
    (b'{"kbps": ' + b"9" * 200 + b"}", "budget.bad_kbps"),
    (b'{}', "budget.bad_kbps"),
    (b'{"kbps": 64, "pad": "' + b"x" * 300 + b'"}', "budget.too_large"),
    (b"[" * 120 + b"]" * 120, "budget.not_json"),
])
def test_nonsense_is_rejected_with_a_code(payload, code):
    with pytest.raises(BudgetRejected) as caught:
        decode_budget(payload, T)
    assert caught.value.code.id == code
    assert T in str(caught.value), "the English text names the topic"


def test_a_rejected_message_keeps_the_budget_in_force():
    budget = DrainBudget()
    assert budget.receive(b'{"v":1,"kbps":100}', T, site_topic=True) is None
    problem = budget.receive(b'{"kbps":0}', T, site_topic=True)
    assert problem is not None and problem.id == "budget.bad_kbps"
    assert budget.kbps(0) == 100 and budget.rejected == 1
    budget.receive(b'{"v":1,"kbps":300}', "clinics/_fleet/budget", site_topic=False)
    assert budget.kbps(0) == 100, "the site's budget still overrides the fleet's"
    budget.receive(b"", T, site_topic=True)
    assert budget.kbps(0) == 300, "site budget cleared: the fleet's applies"


def test_the_topics_are_defined_once_for_both_sides():
    topics = Topics("clinics", "SITE001")
    assert topics.budget == "clinics/SITE001/budget"
    assert topics.fleet_budget == fleet_budget_topic("clinics") == "clinics/_fleet/budget"


def test_clinic_central_budget_refuses_nonsense_before_connecting(tmp_path, capsys):
    from central.cli import main
    config = tmp_path / "central.toml"
    config.write_text('[mqtt]\nhost = "127.0.0.1"\nport = 9\n[victoriametrics]\n'
                      'url = "http://127.0.0.1:9"\n[postgres]\ndsn = "postgresql://x@127.0.0.1:9/x"\n')
    assert main(["budget", "-c", str(config), "--kbps", "0"]) == 2
    assert "kbps must be from 1 to 1000000" in capsys.readouterr().err
    assert main(["budget", "-c", str(config), "--kbps", "64", "--site", "a/b"]) == 2
    assert "not a site id: a/b" in capsys.readouterr().err
    assert main(["budget", "-c", str(config), "--clear"]) == 1, "nothing listening on port 9"
