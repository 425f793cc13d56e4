"""Fixtures start real peers (Mosquitto, snmpd, a pymodbus server) on free loopback ports."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = [
    "fixtures.mosquitto",
    "fixtures.snmp",
    "fixtures.modbus",
    "fixtures.agent_proc",
    "fixtures.secure_broker",
    "fixtures.proxy",
    "fixtures.central",
    "fixtures.alertmanager",
]

# -- two runs: `pytest -m unit` (no peers, seconds) and the whole suite (what CI runs) ----------

import pytest  # noqa: E402

# Fixtures that start a real peer process (broker, snmpd, simulators, the agent itself, stores).
PEER_FIXTURES = {"agent_process", "central", "modbus_server_factory", "modbus_server",
                 "serial_pair", "modbus_rtu_server", "broker", "recorder", "wan_proxy",
                 "secure_broker", "operator_recorder", "snmpd", "snmpsim",
                 "alertmanager", "webhook"}
# A module that starts peers or programs by itself (without a fixture) is a peers module.
_PEER_MARKS = ("require_binary(", "subprocess", "Popen", "agent_proc", "ModbusTestServer",
               "start_server", "socat")
_module_has_peers: dict[str, bool] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "peers: starts real peers (brokers, devices, stores, "
                                       "the agent as a process)")
    config.addinivalue_line("markers", "unit: needs no peer and no subprocess (the fast run)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if path not in _module_has_peers:
            text = Path(path).read_text(encoding="utf-8")
            _module_has_peers[path] = any(mark in text for mark in _PEER_MARKS)
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & PEER_FIXTURES or _module_has_peers[path] or "/central/" in path:
            item.add_marker(pytest.mark.peers)
        else:
            item.add_marker(pytest.mark.unit)
