"""Settings of an ``modbus`` device (UPS, power meter). Being written."""

from __future__ import annotations

from .fields import Table


def parse(t: Table):
    t.str("host")
    return None
