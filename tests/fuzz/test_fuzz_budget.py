"""Fuzz: messages on the budget topics. Any bytes are a budget, a clear, or a typed rejection
with a catalogue code, within time and memory; a rejection never changes the budget in force,
and whatever is accepted is a limit within the documented bounds."""

from __future__ import annotations

import json

from fuzz_budget import bounded, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from agent.i18n import MESSAGES
from agent.publish.budget import MAX_KBPS, MIN_KBPS, DrainBudget

json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)
numbers = (st.integers() | st.floats() | st.booleans() | st.none() | st.text(max_size=10)
           | st.integers(1, 400).map(lambda n: int("9" * n)))

payloads = st.one_of(
    st.binary(max_size=600),
    json_docs.map(lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries({"kbps": numbers}, optional={"v": numbers, "x": json_docs}).map(
        lambda d: json.dumps(d).encode()),
    st.tuples(st.integers(1, 4000), st.sampled_from([b"[", b'{"kbps":'])).map(
        lambda t: t[1] * t[0]),
)


@fuzz_settings(400)
@given(payloads)
def test_any_message_is_a_budget_or_a_typed_rejection(payload):
    budget = DrainBudget()
    budget.receive(b'{"v":1,"kbps":100}', "clinics/S/budget", site_topic=True)
    with bounded("budget message"):
        problem = budget.receive(payload, "clinics/S/budget", site_topic=True)
    if problem is not None:
        assert problem.id in MESSAGES and problem.id.startswith("budget.")
        assert budget.kbps(0) == 100, "a rejection keeps the budget in force"
        assert len(str(problem)) < 300
    elif budget.site is not None:
        assert MIN_KBPS <= budget.kbps(0) <= MAX_KBPS
    else:
        assert payload == b"", "only an empty message clears"
