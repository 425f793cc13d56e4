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
]
