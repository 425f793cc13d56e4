"""Settings of an ``snmp`` device (the clinic router, or a UPS network card). Being written."""

from __future__ import annotations

from .fields import Table


def parse(t: Table):
    t.str("host")
    return None
