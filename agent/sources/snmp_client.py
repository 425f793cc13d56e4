"""The agent's SNMP client: GET, GETNEXT and GETBULK with plain-Python answers.

pysnmp reports values as pyasn1 objects and failures in several shapes. ``SnmpClient`` turns them
into ``VarBind`` records of ints and bytes, and every failure into an ``agent.errors.SourceError``
with a reason a technician can act on, so the rest of the agent (and a pysnmp upgrade) only ever
touches this module and the two sessions behind it: ``snmp_community`` (v1 and v2c, pysnmp's
message layer) and ``snmp_usm`` (v3: the same message layer inside USM security, no engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pyasn1.type import univ
from pysnmp.proto import rfc1155, rfc1902, rfc1905

from agent.config.snmp import SnmpSettings
from agent.errors import DeviceProtocolError, DeviceRefused
from agent.i18n import Text, text

Oid = tuple[int, ...]
PlainValue = int | bytes | Oid | None

# VarBind kinds: what the agent said, independent of pysnmp's classes.
INTEGER = "integer"
COUNTER32 = "counter32"
COUNTER64 = "counter64"
GAUGE = "gauge"
TIMETICKS = "timeticks"
STRING = "string"
IPADDRESS = "ipaddress"
OPAQUE = "opaque"
OBJECT_ID = "oid"
NULL = "null"
NO_SUCH_OBJECT = "no_such_object"
NO_SUCH_INSTANCE = "no_such_instance"
END_OF_MIB = "end_of_mib"
NUMERIC_KINDS = frozenset({INTEGER, COUNTER32, COUNTER64, GAUGE, TIMETICKS})
EXCEPTION_KINDS = frozenset({NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB})

# Request kinds, as the sessions know them.
GET, GETNEXT, GETBULK = "GET", "GETNEXT", "GETBULK"

_ERROR_STATUS_NAMES = {
    1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess",
    16: "authorizationError",
}


@dataclass(frozen=True, slots=True)
class VarBind:
    """One OID and its value as plain Python: int, bytes, an OID tuple, or None for exceptions."""

    oid: Oid
    kind: str
    value: PlainValue = None

    @property
    def is_number(self) -> bool:
        return self.kind in NUMERIC_KINDS

    @property
    def is_exception(self) -> bool:
        return self.kind in EXCEPTION_KINDS


class TooBig(DeviceProtocolError):
    """The agent could not fit the answer into one message; ask for fewer values."""


class NoSuchName(DeviceProtocolError):
    """SNMPv1's end of the MIB (or a missing object) for the request's varbind ``index``."""

    def __init__(self, reason: Text | str, index: int) -> None:
        super().__init__(reason)
        self.index = index


class Answer(NamedTuple):
    """A response PDU: error-status, error-index (1-based, 0 for none) and the varbinds."""

    status: int
    index: int  # type: ignore[assignment]  # shadows tuple.index; the field name is API
    varbinds: list[VarBind]


class Session(Protocol):
    """What ``SnmpClient`` needs of a transport: one request, one answer (or a SourceError)."""

    async def request(self, kind: str, oids: list[Oid], non_repeaters: int = 0,
                      max_repetitions: int = 0) -> Answer: ...

    async def close(self) -> None: ...


class SnmpClient:
    """Sends SNMP requests to one agent over one reused session.

    ``requests`` counts request PDUs sent (retries and v3 engine discovery aside), so callers
    and tests can check how chatty a poll was.
    """

    def __init__(self, settings: SnmpSettings, *, timeout_s: float, device: str) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.device = device
        self.address = f"{settings.host}:{settings.port}"
        self.requests = 0
        self._session: Session | None = None

    @property
    def version(self) -> str:
        return self.settings.version

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        """GET the exact instances ``oids``."""
        return await self._send(GET, list(oids))

    async def get_next(self, oids: Sequence[Oid]) -> list[VarBind]:
        """GETNEXT: the instance following each of ``oids``. Raises ``NoSuchName`` on v1's end."""
        return await self._send(GETNEXT, list(oids))

    async def get_bulk(self, non_repeaters: Sequence[Oid], repeaters: Sequence[Oid],
                       max_repetitions: int) -> list[VarBind]:
        """GETBULK (v2c/v3): one successor of each non-repeater, then up to ``max_repetitions``
        rows of successors of the repeaters, row by row. The agent may return fewer rows."""
        if self.settings.version == "1":
            raise ValueError("GETBULK does not exist in SNMPv1")
        return await self._send(GETBULK, [*non_repeaters, *repeaters], len(non_repeaters),
                                max(1, int(max_repetitions)))

    async def close(self) -> None:
        """Close the socket (and v3 engine). The client can be used again afterwards."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- internals -----------------------------------------------------------------------------

    def _open(self) -> Session:
        if self.settings.version == "3":
            from agent.sources.snmp_usm import UsmSession
            return UsmSession(self.settings, timeout_s=self.timeout_s, address=self.address,
                              device=self.device)
        from agent.sources.snmp_community import CommunitySession
        return CommunitySession(self.settings, timeout_s=self.timeout_s, address=self.address)

    async def _send(self, kind: str, oids: list[Oid], non_repeaters: int = 0,
                    max_repetitions: int = 0) -> list[VarBind]:
        if self._session is None:
            self._session = self._open()
        self.requests += 1
        status, index, varbinds = await self._session.request(kind, oids, non_repeaters,
                                                              max_repetitions)
        if status:
            raise self._translate_status(kind, status, index, oids)
        return varbinds

    def _translate_status(
        self, name: str, status: int, index: int, oids: Sequence[Oid]
    ) -> Exception:
        status_name = _ERROR_STATUS_NAMES.get(status, f"error-status {status}")
        at: Text | str = ""
        if 1 <= index <= len(oids):
            at = text("src.snmp.at", oid=".".join(map(str, oids[index - 1])))
        where = self.address
        if status == 1:
            return TooBig(text("src.snmp.too_big", where=where, request=name))
        if status == 2:
            return NoSuchName(text("src.snmp.no_such_name", where=where, at=at), index - 1)
        if status in (6, 16):
            return DeviceRefused(text("src.snmp.denied", where=where, request=name, at=at,
                                      status=status_name))
        return DeviceProtocolError(text("src.snmp.error_status", where=where, status=status_name,
                                        at=at, request=name))


def timeout_reason(version: str, address: str) -> Text:
    """What a technician should check when the router does not answer at all."""
    return text("src.snmp.timeout_v3" if version == "3" else "src.snmp.timeout", where=address)


# Value classes of both SNMPv1 (RFC 1155) and SNMPv2 (RFC 1902/1905) to VarBind kinds.
# Order matters: the SNMP application types subclass pyasn1's Integer/OctetString/Null.
_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (rfc1905.EndOfMibView, END_OF_MIB), (rfc1905.NoSuchInstance, NO_SUCH_INSTANCE),
    (rfc1905.NoSuchObject, NO_SUCH_OBJECT), (univ.Null, NULL),
    (rfc1902.Counter64, COUNTER64), ((rfc1902.Counter32, rfc1155.Counter), COUNTER32),
    ((rfc1902.Gauge32, rfc1902.Unsigned32, rfc1155.Gauge), GAUGE),
    ((rfc1902.TimeTicks, rfc1155.TimeTicks), TIMETICKS), (univ.Integer, INTEGER),
    ((rfc1902.IpAddress, rfc1155.IpAddress), IPADDRESS), ((rfc1902.Opaque, rfc1155.Opaque), OPAQUE),
    (univ.OctetString, STRING), (univ.ObjectIdentifier, OBJECT_ID),
)


def to_varbind(oid: object, value: object) -> VarBind:
    """Convert one pysnmp (name, value) pair into a ``VarBind``."""
    key: Oid = tuple(int(x) for x in oid)  # type: ignore[attr-defined]
    kind = next((k for cls, k in _KINDS if isinstance(value, cls)), NULL)
    if kind in NUMERIC_KINDS:
        return VarBind(key, kind, int(value))  # type: ignore[call-overload]
    if kind in (STRING, IPADDRESS, OPAQUE):
        return VarBind(key, kind, bytes(value.asOctets()))  # type: ignore[attr-defined]
    if kind == OBJECT_ID:
        return VarBind(key, kind, tuple(int(x) for x in value))  # type: ignore[attr-defined]
    return VarBind(key, kind)
