"""SNMPv3 (USM) requests through pysnmp's engine and asyncio high-level API.

v3 needs what the engine keeps: the router's engine ID and clock, and localized keys for
authentication and privacy. Imported only when a device uses v3, because the engine brings its
MIB modules and ``cryptography`` with it (``snmp_community`` serves v1 and v2c without them).
"""

from __future__ import annotations

import asyncio
import logging

from pyasn1.type import univ
from pysnmp.entity.engine import SnmpEngine
from pysnmp.hlapi.v3arch.asyncio import auth as hlauth
from pysnmp.hlapi.v3arch.asyncio import cmdgen
from pysnmp.hlapi.v3arch.asyncio.auth import UsmUserData
from pysnmp.hlapi.v3arch.asyncio.context import ContextData
from pysnmp.hlapi.v3arch.asyncio.transport import UdpTransportTarget
from pysnmp.proto import errind, rfc1902

from agent.config.snmp import SnmpSettings
from agent.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout
from agent.sources.snmp_client import (
    AUTH_FAILED,
    GET,
    GETBULK,
    GETNEXT,
    Answer,
    Oid,
    timeout_reason,
    to_varbind,
)
from agent.sources.snmp_ids import use_system_ids_in_pysnmp

log = logging.getLogger(__name__)

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

_COMMANDS = {GET: cmdgen.get_cmd, GETNEXT: cmdgen.next_cmd, GETBULK: cmdgen.bulk_cmd}


class UsmSession:
    """One pysnmp engine per router, reused across polls; rediscovers a replaced router."""

    def __init__(self, settings: SnmpSettings, *, timeout_s: float, address: str,
                 device: str) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.address = address
        self.device = device
        self._auth = _user_data(settings)
        self._context = ContextData()
        self._engine: SnmpEngine | None = None
        self._target: UdpTransportTarget | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._answered = False

    async def request(self, kind: str, oids: list[Oid], non_repeaters: int = 0,
                      max_repetitions: int = 0) -> Answer:
        bulk = (non_repeaters, max_repetitions) if kind == GETBULK else ()
        try:
            answer = await self._send(kind, oids, *bulk)
        except DeviceTimeout:
            if not self._answered:
                raise
            # A v3 engine caches the router's engine ID and clock. A replaced or reset router
            # has a new engine ID and ignores us until we forget the old one.
            log.info("%s: %s stopped answering v3; retrying with a fresh engine discovery",
                     self.device, self.address)
            self._answered = False
            await self.close()
            answer = await self._send(kind, oids, *bulk)
        self._answered = True
        return answer

    async def close(self) -> None:
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
            use_system_ids_in_pysnmp()     # request-ids and msgIDs nobody can predict
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

    async def _send(self, kind: str, oids: list[Oid], *bulk: int) -> Answer:
        engine, target = await self._ready()
        varbinds = [(rfc1902.ObjectName(oid), univ.Null("")) for oid in oids]
        # pysnmp's own timer ends the request; this outer bound only guards against a stuck engine.
        deadline = self.timeout_s * (self.settings.retries + 1) + 2.0
        try:
            error_indication, error_status, error_index, answer = await asyncio.wait_for(
                _COMMANDS[kind](engine, self._auth, target, self._context, *bulk, *varbinds,
                                lookupMib=False), deadline)
        except TimeoutError as exc:
            raise DeviceTimeout(timeout_reason("3", self.address)) from exc
        except Exception as exc:  # noqa: BLE001 - translate every library failure at the edge
            raise DeviceProtocolError(f"SNMP {kind} to {self.address} failed: "
                                      f"{exc.__class__.__name__}: {exc}") from exc
        if error_indication:
            raise self._translate_indication(error_indication)
        return Answer(int(error_status or 0), int(error_index or 0),
                      [to_varbind(oid, value) for oid, value in answer])

    def _translate_indication(self, indication: object) -> Exception:
        if isinstance(indication, errind.RequestTimedOut):
            return DeviceTimeout(timeout_reason("3", self.address))
        for kind, why in _AUTH_ERRORS.items():
            if isinstance(indication, kind):
                return DeviceRefused(f"{AUTH_FAILED} ({why})")
        if isinstance(indication, errind.NotInTimeWindow):
            return DeviceProtocolError(f"the router at {self.address} reports our v3 time "
                                       "window is stale; it usually resynchronises next poll")
        return DeviceProtocolError(f"SNMP error talking to {self.address}: {indication}")


def _user_data(settings: SnmpSettings) -> UsmUserData:
    auth_on = settings.auth_key is not None and settings.auth_protocol != "none"
    priv_on = settings.priv_key is not None and settings.priv_protocol != "none"
    return UsmUserData(
        settings.user or "",
        authKey=settings.auth_key.reveal() if auth_on and settings.auth_key else None,
        privKey=settings.priv_key.reveal() if priv_on and settings.priv_key else None,
        authProtocol=_AUTH_PROTOCOLS[settings.auth_protocol],
        privProtocol=_PRIV_PROTOCOLS[settings.priv_protocol])
