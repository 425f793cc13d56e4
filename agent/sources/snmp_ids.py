"""SNMP request-ids and v3 msgIDs drawn from the system's random source.

pysnmp numbers requests with ``pysnmp.nextid.Integer``: a start from Python's non-cryptographic
``random``, then +1 per request, so one answer observed predicts the next id and an off-path
sender can forge the answer to it. The ids here come from ``secrets`` (the OS's CSPRNG), one
independent draw per request. ``snmp_community`` sets its own ids; ``use_system_ids_in_pysnmp``
swaps pysnmp's counters for these in the one place the v3 engine (``snmp_usm``) asks for them.
"""

from __future__ import annotations

import secrets

# Both request-id (Integer32) and msgID (0..2147483647) allow 1..2**31-1; 0 is avoided as the
# value a careless peer might use for "no id".
_TOP = 2**31 - 1


def new_id() -> int:
    """A fresh request-id or msgID, 1..2**31-1, from the system's random source."""
    return 1 + secrets.randbelow(_TOP)


class _SystemIds:
    """Callable like ``pysnmp.nextid.Integer``: each call a new id from ``new_id``."""

    def __call__(self) -> int:
        return new_id()

    def __repr__(self) -> str:
        return "SystemIds()"


def use_system_ids_in_pysnmp() -> None:
    """Make pysnmp's request-ids (v1/v2c PDUs, also used inside v3) and v3 msgIDs come from
    ``new_id``. pysnmp 7.1 reads them from module globals and a class attribute; checked by
    tests/test_snmp_ids.py so a pysnmp upgrade that moves them fails loudly, not silently."""
    from pysnmp.proto.api import v1, v2c
    from pysnmp.proto.mpmod import cache

    ids = _SystemIds()
    v1.getNextRequestID = ids
    v2c.getNextRequestID = ids
    cache.Cache._Cache__message_id = ids
