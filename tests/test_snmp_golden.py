"""Golden files: recorded agent answers in, the exact samples, warnings and request counts out.

Each folder under tests/golden/snmp/ is one device: ``pollN.walk`` (``snmpwalk -On`` output)
answers poll N, ``case.toml`` holds the device settings and the seconds between polls, and
``expected.json`` what the source must report. A device bug report becomes a new folder.
Regenerate with ``SNMP_GOLDEN_UPDATE=1 pytest tests/test_snmp_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from pathlib import Path

import pytest

from agent.config import parse_config
from agent.sources.snmp import SnmpSource
from fixtures.snmp import FakeAgent, FakeClock, load_walk
from helpers import run

GOLDEN = Path(__file__).parent / "golden" / "snmp"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.toml").exists())


def replay(case_dir: Path, caplog) -> dict:
    case = tomllib.loads((case_dir / "case.toml").read_text())
    walks_dir = GOLDEN / case.get("walks_from", case_dir.name)
    table = {"name": "router", "kind": "snmp", "host": "127.0.0.1", "community": "golden-ro",
             **case.get("device", {})}
    config = parse_config({"site_id": "golden", "mqtt": {"host": "127.0.0.1"}, "devices": [table]})
    agent = FakeAgent(version=table.get("version", "2c"))
    clock = FakeClock()
    source = SnmpSource(config.devices[0], client=agent, clock=clock)
    polls = []

    async def polls_of_walks():
        for walk in sorted(walks_dir.glob("poll*.walk"), key=lambda p: int(p.stem[4:])):
            agent.set(load_walk(walk))
            caplog.clear()
            samples = await source.read()
            polls.append({
                "walk": walk.name,
                "requests": source.last_poll_requests,
                "samples": [[s.metric, s.value, s.unit] for s in samples],
                "warnings": [r.getMessage() for r in caplog.records
                             if r.levelno >= logging.WARNING and r.name.startswith("agent.")],
            })
            clock.advance(case["dt_s"])
    with caplog.at_level(logging.DEBUG, logger="agent.sources"):
        run(polls_of_walks())
    return {"polls": polls}


@pytest.mark.parametrize("name", CASES)
def test_golden(name, caplog):
    case_dir = GOLDEN / name
    got = replay(case_dir, caplog)
    expected_path = case_dir / "expected.json"
    if os.environ.get("SNMP_GOLDEN_UPDATE"):
        expected_path.write_text(json.dumps(got, indent=1) + "\n")
    expected = json.loads(expected_path.read_text())
    # Through JSON, so the comparison sees what a reviewer sees in the file.
    assert json.loads(json.dumps(got)) == expected
