"""The only module that talks to pysnmp: GET, GETNEXT and GETBULK with plain-Python answers.

pysnmp 7 reports failures as ``(errorIndication, errorStatus, errorIndex, varBinds)`` tuples of
pyasn1 objects. ``SnmpClient`` turns those into ``VarBind`` records of ints and bytes, and every
failure into an ``agent.errors.SourceError`` with a reason a technician can act on, so the rest
of the agent (and a pysnmp upgrade) only ever touches this file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Sequence, Union

from pysnmp.entity.engine import SnmpEngine
from pysnmp.hlapi.v3arch.asyncio import auth as hlauth
from pysnmp.hlapi.v3arch.asyncio import cmdgen
from pysnmp.hlapi.v3arch.asyncio.auth import CommunityData, UsmUserData
from pysnmp.hlapi.v3arch.asyncio.context import ContextData
from pysnmp.hlapi.v3arch.asyncio.transport import UdpTransportTarget
from pysnmp.proto import errind, rfc1902, rfc1905
from pyasn1.type import univ

from ..config.snmp import SnmpSettings
from ..errors import DeviceProtocolError, DeviceRefused, DeviceTimeout

log = logging.getLogger(__name__)

Oid = tuple[int, ...]
PlainValue = Union[int, bytes, Oid, None]

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

AUTH_FAILED = "authentication failed: check the v3 user and keys"

_AUTH_PROTOCOLS = {
    "none": hlauth.USM_AUTH_NONE,
    "md5": hlauth.USM_AUTH_HMAC96_MD5,
    "sha": hlauth.USM_AUTH_HMAC96_SHA,
    "sha224": hlauth.USM_AUTH_HMAC128_SHA224,
    "sha256": hlauth.USM_AUTH_HMAC192_SHA256,
    "sha384": hlauth.USM_AUTH_HMAC256_SHA384,
    "sha512": hlauth.USM_AUTH_HMAC384_SHA512,
}
_PRIV_PROTOCOLS = {
    "none": hlauth.USM_PRIV_NONE,
    "des": hlauth.USM_PRIV_CBC56_DES,
    "aes128": hlauth.USM_PRIV_CFB128_AES,
    # net-snmp's AES-192/256 are the Blumenthal key extension; pysnmp's plain names are Cisco's.
    "aes192": hlauth.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256": hlauth.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "aes192c": hlauth.USM_PRIV_CFB192_AES,
    "aes256c": hlauth.USM_PRIV_CFB256_AES,
}

# Report PDUs and local USM failures that all mean "these credentials do not work here".
_AUTH_ERRORS: dict[type, str] = {
    errind.UnknownUserName: "the router does not know this user",
    errind.UnknownSecurityName: "the router does not know this user",
    errind.WrongDigest: "wrong auth_key or auth_protocol",
    errind.AuthenticationFailure: "wrong auth_key or auth_protocol",
    errind.AuthenticationError: "wrong auth_key or auth_protocol",
    errind.DecryptionError: "wrong priv_key or priv_protocol",
    errind.UnsupportedSecurityLevel: "the user is not allowed this security level",
    errind.UnsupportedAuthProtocol: "the auth_protocol is not supported",
    errind.UnsupportedPrivProtocol: "the priv_protocol is not supported",
}

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

    def __init__(self, reason: str, index: int) -> None:
        super().__init__(reason)
        self.index = index


class SnmpClient:
    """Sends SNMP requests to one agent over one reused pysnmp engine.

    ``requests`` counts request PDUs sent (pysnmp's retries and v3 engine discovery aside), so
    callers and tests can check how chatty a poll was.
    """

    def __init__(self, settings: SnmpSettings, *, timeout_s: float, device: str) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.device = device
        self.address = f"{settings.host}:{settings.port}"
        self.requests = 0
        self._auth = _auth_data(settings)
        self._context = ContextData()
        self._engine: SnmpEngine | None = None
        self._target: UdpTransportTarget | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._answered = False

    @property
    def version(self) -> str:
        return self.settings.version

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        """GET the exact instances ``oids``."""
        return await self._request(cmdgen.get_cmd, "GET", oids)

    async def get_next(self, oids: Sequence[Oid]) -> list[VarBind]:
        """GETNEXT: the instance following each of ``oids``. Raises ``NoSuchName`` on v1's end."""
        return await self._request(cmdgen.next_cmd, "GETNEXT", oids)

    async def get_bulk(self, non_repeaters: Sequence[Oid], repeaters: Sequence[Oid],
                       max_repetitions: int) -> list[VarBind]:
        """GETBULK (v2c/v3): one successor of each non-repeater, then up to ``max_repetitions``
        rows of successors of the repeaters, row by row. The agent may return fewer rows."""
        if self.settings.version == "1":
            raise ValueError("GETBULK does not exist in SNMPv1")
        return await self._request(cmdgen.bulk_cmd, "GETBULK", [*non_repeaters, *repeaters],
                                   len(non_repeaters), max(1, int(max_repetitions)))

    async def close(self) -> None:
        """Close the engine's socket. The client can be used again afterwards (it reopens)."""
        engine, self._engine, self._target, self._loop = self._engine, None, None, None
        if engine is not None:
            try:
                engine.close_dispatcher()
            except Exception:  # noqa: BLE001 - closing must never fail the caller
                log.debug("%s: closing the SNMP engine failed", self.device, exc_info=True)

    # -- internals -----------------------------------------------------------------------------

    async def _ready(self) -> tuple[SnmpEngine, UdpTransportTarget]:
        loop = asyncio.get_running_loop()
        if self._engine is not None and self._loop is not loop:
            # pysnmp binds its socket to the loop that opened it; a new loop needs a new engine.
            await self.close()
        if self._engine is None:
            self._engine = SnmpEngine()
            self._loop = loop
        if self._target is None:
            try:
                self._target = await UdpTransportTarget.create(
                    (self.settings.host, self.settings.port), timeout=self.timeout_s,
                    retries=self.settings.retries)
            except Exception as exc:  # noqa: BLE001 - pysnmp wraps resolver errors variously
                raise DeviceTimeout(f"cannot resolve {self.settings.host!r}: check the router's "
                                    "address in the config") from exc
        return self._engine, self._target

    async def _request(self, command, name: str, oids: Sequence[Oid], *bulk: int) -> list[VarBind]:
        try:
            answer = await self._send(command, name, oids, *bulk)
        except DeviceTimeout:
            if self.settings.version != "3" or not self._answered:
                raise
            # A v3 engine caches the router's engine ID and clock. A replaced or reset router
            # has a new engine ID and ignores us until we forget the old one.
            log.info("%s: %s stopped answering v3; retrying with a fresh engine discovery",
                     self.device, self.address)
            self._answered = False
            await self.close()
            answer = await self._send(command, name, oids, *bulk)
        self._answered = True
        return answer

    async def _send(self, command, name: str, oids: Sequence[Oid], *bulk: int) -> list[VarBind]:
        engine, target = await self._ready()
        varbinds = [(rfc1902.ObjectName(oid), univ.Null("")) for oid in oids]
        self.requests += 1
        # pysnmp's own timer ends the request; this outer bound only guards against a stuck engine.
        deadline = self.timeout_s * (self.settings.retries + 1) + 2.0
        try:
            error_indication, error_status, error_index, answer = await asyncio.wait_for(
                command(engine, self._auth, target, self._context, *bulk, *varbinds,
                        lookupMib=False), deadline)
        except asyncio.TimeoutError as exc:
            raise DeviceTimeout(self._timeout_reason()) from exc
        except Exception as exc:  # noqa: BLE001 - translate every library failure at the edge
            raise DeviceProtocolError(f"SNMP {name} to {self.address} failed: "
                                      f"{exc.__class__.__name__}: {exc}") from exc
        if error_indication:
            raise self._translate_indication(error_indication)
        status = int(error_status or 0)
        if status:
            raise self._translate_status(name, status, int(error_index or 0), oids)
        return [to_varbind(oid, value) for oid, value in answer]

    def _timeout_reason(self) -> str:
        base = (f"timeout: no SNMP answer from {self.address}; is SNMP enabled on the LAN side "
                "and the address right?")
        if self.settings.version == "3":
            return base + " (a wrong v3 priv_key also looks like this)"
        return base + " (or the community is wrong: the router ignores unknown communities)"

    def _translate_indication(self, indication: object) -> Exception:
        if isinstance(indication, errind.RequestTimedOut):
            return DeviceTimeout(self._timeout_reason())
        for kind, why in _AUTH_ERRORS.items():
            if isinstance(indication, kind):
                return DeviceRefused(f"{AUTH_FAILED} ({why})")
        if isinstance(indication, errind.NotInTimeWindow):
            return DeviceProtocolError(f"the router at {self.address} reports our v3 time "
                                       "window is stale; it usually resynchronises next poll")
        return DeviceProtocolError(f"SNMP error talking to {self.address}: {indication}")

    def _translate_status(self, name: str, status: int, index: int, oids: Sequence[Oid]) -> Exception:
        status_name = _ERROR_STATUS_NAMES.get(status, f"error-status {status}")
        where = ""
        if 1 <= index <= len(oids):
            where = " at " + ".".join(map(str, oids[index - 1]))
        if status == 1:
            return TooBig(f"the router at {self.address} answered tooBig to {name}")
        if status == 2:
            return NoSuchName(f"the router at {self.address} answered noSuchName{where}", index - 1)
        if status in (6, 16):
            return DeviceRefused(f"access denied: the router at {self.address} refused {name}{where} "
                                 f"({status_name}); check the view allowed to this community/user")
        return DeviceProtocolError(f"the router at {self.address} answered {status_name}{where} "
                                   f"to {name}")


def to_varbind(oid: object, value: object) -> VarBind:
    """Convert one pysnmp (name, value) pair into a ``VarBind``."""
    key: Oid = tuple(int(x) for x in oid)  # type: ignore[attr-defined]
    # Order matters: the SNMP application types subclass pyasn1's Integer/OctetString/Null.
    if isinstance(value, rfc1905.EndOfMibView):
        return VarBind(key, END_OF_MIB)
    if isinstance(value, rfc1905.NoSuchInstance):
        return VarBind(key, NO_SUCH_INSTANCE)
    if isinstance(value, rfc1905.NoSuchObject):
        return VarBind(key, NO_SUCH_OBJECT)
    if isinstance(value, univ.Null):
        return VarBind(key, NULL)
    if isinstance(value, rfc1902.Counter64):
        return VarBind(key, COUNTER64, int(value))
    if isinstance(value, rfc1902.Counter32):
        return VarBind(key, COUNTER32, int(value))
    if isinstance(value, (rfc1902.Gauge32, rfc1902.Unsigned32)):
        return VarBind(key, GAUGE, int(value))
    if isinstance(value, rfc1902.TimeTicks):
        return VarBind(key, TIMETICKS, int(value))
    if isinstance(value, univ.Integer):
        return VarBind(key, INTEGER, int(value))
    if isinstance(value, rfc1902.IpAddress):
        return VarBind(key, IPADDRESS, bytes(value.asOctets()))
    if isinstance(value, rfc1902.Opaque):
        return VarBind(key, OPAQUE, bytes(value.asOctets()))
    if isinstance(value, univ.OctetString):
        return VarBind(key, STRING, bytes(value.asOctets()))
    if isinstance(value, univ.ObjectIdentifier):
        return VarBind(key, OBJECT_ID, tuple(int(x) for x in value))
    return VarBind(key, NULL)


def _auth_data(settings: SnmpSettings) -> CommunityData | UsmUserData:
    if settings.version in ("1", "2c"):
        community = settings.community.reveal() if settings.community is not None else ""
        return CommunityData(community, mpModel=0 if settings.version == "1" else 1)
    auth_protocol = _AUTH_PROTOCOLS[settings.auth_protocol]
    priv_protocol = _PRIV_PROTOCOLS[settings.priv_protocol]
    return UsmUserData(
        settings.user or "",
        authKey=settings.auth_key.reveal() if settings.auth_key and settings.auth_protocol != "none" else None,
        privKey=settings.priv_key.reveal() if settings.priv_key and settings.priv_protocol != "none" else None,
        authProtocol=auth_protocol, privProtocol=priv_protocol)
