"""SNMPv3 requests with the User-based Security Model, without pysnmp's engine.

    discovery (once, and after the router changes):  GET, no user  ->  Report with its engine ID,
                                                                        boots and time
    each request:  pysnmp PDU -> ScopedPDU -> AES-CFB (priv) -> frame (snmp_usm_wire) -> HMAC (auth)
    each answer:   frame -> same msgID -> HMAC checked -> time window -> decrypted -> snmp_ber PDU

What the engine would keep for us is four values per router: its engine ID, boots, time and our
localized keys. The engine itself costs about 14 MiB (its MIB modules, ``cryptography``) and
0.3 s of CPU a minute (a dispatcher that wakes ten times a second): docs/benchmarks.md. The
protocols (MD5, SHA-1, SHA-2; DES, AES-128/192/256) are in ``snmp_usm_keys``.

The rules followed (RFC 3414 3.2): an answer is accepted only with our msgID, our request-id and,
when we authenticate, a valid MAC, our user and engine ID, and a time within 150 s of the
router's clock as we know it (replayed answers are dropped); only a Report may come back less
protected than the request. A router that answers "not in time window" (authenticated) or
"unknown engine ID" (it was replaced) is resynchronised and asked again once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api, rfc1905

from agent.config.snmp import SnmpSettings
from agent.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout
from agent.i18n import Text, text
from agent.sources.snmp_ber import REPORT_PDU, RESPONSE_PDU, BerError, Pdu, decode_pdu
from agent.sources.snmp_client import GET, Answer, Oid, timeout_reason, to_varbind
from agent.sources.snmp_community import Datagrams, DatagramSocket, request_pdu
from agent.sources.snmp_ids import new_id
from agent.sources.snmp_usm_keys import SaltCounter, UserKeys, UsmKeys
from agent.sources.snmp_usm_wire import (
    FLAG_AUTH,
    FLAG_PRIV,
    FLAG_REPORTABLE,
    Incoming,
    Security,
    decode_message,
    decode_scoped_pdu,
    encode_message,
    encode_scoped_pdu,
)

log = logging.getLogger(__name__)

_V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
TIME_WINDOW_S = 150
_MAX_BOOTS = 2**31 - 1
_USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)
_UNSUPPORTED_LEVEL, _NOT_IN_TIME_WINDOW, _UNKNOWN_USER, _UNKNOWN_ENGINE_ID, _WRONG_DIGEST, \
    _DECRYPTION_ERROR = (_USM_STATS + (n, 0) for n in range(1, 7))
# Reports that mean "these credentials do not work here": the poll fails, nothing is retried.
_REFUSALS = {                 # the router's report -> src.snmp.auth.* (the why)
    _UNKNOWN_USER: "unknown_user",
    _WRONG_DIGEST: "wrong_auth",
    _DECRYPTION_ERROR: "wrong_priv",
    _UNSUPPORTED_LEVEL: "level",
}


def _auth_failed(why: str) -> Text:
    return text("src.snmp.auth_failed", why=text(f"src.snmp.auth.{why}"))


class _Again(Exception):
    """The router asked us to resynchronise (time window, engine ID); send the request again."""


class _Garbage:
    """A datagram that is not a usable answer to this request."""


_GARBAGE, _STALE = _Garbage(), _Garbage()


class UsmSession(DatagramSocket):
    """One UDP socket and the USM state of one router; requests are sent one at a time."""

    def __init__(self, settings: SnmpSettings, *, timeout_s: float, address: str,
                 device: str) -> None:
        super().__init__(settings, address)
        self.timeout_s = timeout_s
        self.device = device
        self._user = (settings.user or "").encode()
        auth = settings.auth_key.reveal().encode() if settings.auth_key else None
        priv = settings.priv_key.reveal().encode() if settings.priv_key else None
        self._user_keys = UserKeys(settings.auth_protocol, auth, settings.priv_protocol, priv)
        self._keys: UsmKeys | None = None
        self._engine_id: bytes | None = None
        self._boots = self._time = self._latest_time = 0
        self._time_at = 0.0                   # monotonic time when _time was learned
        self._salts = SaltCounter()
        self._answered = False

    async def request(self, kind: str, oids: list[Oid], non_repeaters: int = 0,
                      max_repetitions: int = 0) -> Answer:
        datagrams = await self._open()
        assert self._lock is not None
        async with self._lock:
            pdu = request_pdu(_V2C, kind, oids, non_repeaters, max_repetitions)
            request_id = int(_V2C.apiPDU.get_request_id(pdu))
            pdu_bytes = encoder.encode(pdu)
            try:
                answer = await self._request(datagrams, pdu_bytes, request_id)
            except DeviceTimeout:
                if not self._answered:
                    raise
                # A router replaced or reset to a new engine ID may just drop our messages.
                log.info("%s: %s stopped answering v3; retrying with a fresh engine discovery",
                         self.device, self.address)
                self._answered = False
                self._forget_engine()
                answer = await self._request(datagrams, pdu_bytes, request_id)
            self._answered = True
            return answer

    # -- the exchanges -------------------------------------------------------------------------

    async def _request(self, datagrams: Datagrams, pdu: bytes, request_id: int) -> Answer:
        for _round in range(3):     # discovery, then a resynchronisation, then the answer
            if self._engine_id is None:
                await self._discover(datagrams)
            try:
                return await self._exchange(datagrams, self._message(pdu), request_id)
            except _Again:
                continue
        raise DeviceProtocolError(text("src.snmp.resync_loop", where=self.address))

    async def _discover(self, datagrams: Datagrams) -> None:
        """Learn the router's engine ID, boots and time from its Report to an empty request."""
        pdu = encoder.encode(request_pdu(_V2C, GET, []))
        msg_id = self._next_msg_id()
        message, _ = encode_message(msg_id, FLAG_REPORTABLE, Security(b"", 0, 0, b"", b"", b""),
                                    encode_scoped_pdu(b"", b"", pdu))
        incoming: Incoming | None = None

        def accept(data: bytes) -> Any:
            nonlocal incoming
            try:
                got = decode_message(data)
            except BerError:
                return _GARBAGE
            if got.msg_id != msg_id:
                return _STALE
            if got.flags & FLAG_PRIV or not got.security.engine_id:
                return _GARBAGE
            try:
                if _decode_pdu(got.scoped).tag != REPORT_PDU:
                    return _GARBAGE
            except BerError:
                return _GARBAGE
            incoming = got
            return got
        await self._send(datagrams, message, accept)
        assert incoming is not None
        engine_id = incoming.security.engine_id
        self._keys = self._user_keys.for_engine(engine_id)
        self._engine_id = engine_id
        self._set_clock(incoming.security.boots, incoming.security.time)

    async def _exchange(self, datagrams: Datagrams, message: tuple[bytes, int],
                        request_id: int) -> Answer:
        data, msg_id = message
        answer = await self._send(datagrams, data,
                                  lambda got: self._accept(got, msg_id, request_id))
        assert isinstance(answer, Answer)
        return answer

    async def _send(self, datagrams: Datagrams, message: bytes,
                    accept: Callable[[bytes], object]) -> object:
        """Send ``message`` (with retries) until ``accept`` takes an answer; see
        CommunitySession."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        garbage = 0
        datagrams.inbox.clear()
        datagrams.refused = None
        for _attempt in range(self.settings.retries + 1):
            self._transport.sendto(message)
            deadline = loop.time() + self.timeout_s
            while (left := deadline - loop.time()) > 0 and await datagrams.arrival(left):
                if datagrams.refused is not None:
                    datagrams.refused = None
                    raise DeviceRefused(text("src.snmp.port_unreachable", where=self.address))
                while datagrams.inbox:
                    outcome = accept(datagrams.inbox.popleft())
                    if outcome is _GARBAGE:
                        garbage += 1
                    elif outcome is not _STALE:
                        return outcome
        if garbage:
            raise DeviceProtocolError(text("src.snmp.not_a_response", where=self.address))
        raise DeviceTimeout(timeout_reason("3", self.address))

    # -- one message out, one message in ---------------------------------------------------------

    def _message(self, pdu: bytes) -> tuple[bytes, int]:
        keys, engine_id = self._keys, self._engine_id
        assert keys is not None and engine_id is not None
        boots, engine_time = self._clock()
        scoped = encode_scoped_pdu(engine_id, b"", pdu)
        flags, salt = FLAG_REPORTABLE, b""
        if keys.authenticates:
            flags |= FLAG_AUTH
        if keys.encrypts:
            flags |= FLAG_PRIV
            scoped, salt = keys.encrypt(scoped, boots, engine_time, self._salts.take())
        msg_id = self._next_msg_id()
        mac = bytes(keys.mac_bytes)
        data, auth_at = encode_message(msg_id, flags, Security(engine_id, boots, engine_time,
                                                               self._user, mac, salt), scoped)
        if keys.authenticates:
            data = data[:auth_at] + keys.sign(data) + data[auth_at + keys.mac_bytes:]
        return data, msg_id

    def _accept(self, data: bytes, msg_id: int, request_id: int) -> Answer | _Garbage:
        """The answer in ``data``, ``_STALE``/``_GARBAGE``, or raise (refusal, ``_Again``)."""
        keys = self._keys
        assert keys is not None
        try:
            got = decode_message(data)
        except BerError:
            return _GARBAGE
        if got.msg_id != msg_id:
            return _STALE
        authentic = bool(got.flags & FLAG_AUTH)
        if authentic and not self._authentic(got, data, keys):
            return _GARBAGE
        scoped = got.scoped
        if got.flags & FLAG_PRIV:
            try:
                scoped = keys.decrypt(scoped, got.security.boots, got.security.time,
                                      got.security.priv)
            except ValueError:
                return _GARBAGE
        try:
            pdu = _decode_pdu(scoped)
        except BerError:
            if got.flags & FLAG_PRIV:   # the router's MAC is right, so our priv key is not
                raise DeviceRefused(_auth_failed("wrong_priv")) from None
            return _GARBAGE
        if pdu.tag == REPORT_PDU:
            return self._report(pdu, authentic)
        if pdu.request_id != request_id:
            return _STALE
        if keys.authenticates and not authentic or keys.encrypts and not got.flags & FLAG_PRIV:
            return _GARBAGE         # an answer less protected than the request: not the router's
        return Answer(pdu.status, pdu.index, pdu.varbinds)

    def _authentic(self, got: Incoming, data: bytes, keys: UsmKeys) -> bool:
        """RFC 3414 3.2.4-3.2.7: the MAC, our user and engine, and the time window."""
        sec = got.security
        if not keys.authenticates or sec.engine_id != self._engine_id or sec.user != self._user:
            return False
        blank = data[:got.auth_at] + bytes(len(sec.auth)) + data[got.auth_at + len(sec.auth):]
        if not keys.signed_by_router(blank, sec.auth):
            return False
        if sec.boots > self._boots or (sec.boots == self._boots and sec.time > self._latest_time):
            self._set_clock(sec.boots, sec.time)
        boots, now = self._clock()
        return not (sec.boots == _MAX_BOOTS or sec.boots < boots
                    or (sec.boots == boots and sec.time < now - TIME_WINDOW_S))

    def _report(self, pdu: Pdu, authentic: bool) -> _Garbage:
        oid = pdu.varbinds[0].oid if pdu.varbinds else ()
        if oid == _NOT_IN_TIME_WINDOW and authentic:
            raise _Again()          # _authentic has taken the router's boots and time
        if oid == _UNKNOWN_ENGINE_ID:
            log.info("%s: %s has a new SNMP engine ID (replaced or reset); discovering it",
                     self.device, self.address)
            self._forget_engine()
            raise _Again()
        if oid in _REFUSALS:
            raise DeviceRefused(_auth_failed(_REFUSALS[oid]))
        if oid == _NOT_IN_TIME_WINDOW:
            return _GARBAGE         # unauthenticated: anyone could have sent it
        name = ".".join(map(str, oid)) or "-"
        raise DeviceProtocolError(text("src.snmp.report", where=self.address, oid=name))

    # -- the router's clock and identity ---------------------------------------------------------

    def _set_clock(self, boots: int, engine_time: int) -> None:
        self._boots, self._time, self._latest_time = boots, engine_time, engine_time
        self._time_at = time.monotonic()

    def _clock(self) -> tuple[int, int]:
        """The router's boots and time now, as far as we know them."""
        return self._boots, min(_MAX_BOOTS, self._time + int(time.monotonic() - self._time_at))

    def _forget_engine(self) -> None:
        self._engine_id = self._keys = None
        self._boots = self._time = self._latest_time = 0

    def _next_msg_id(self) -> int:
        # From the system's random source, not a counter: a forged answer must guess it.
        return new_id()



def _decode_pdu(scoped: bytes) -> Pdu:
    """The Response or Report PDU in a plaintext ScopedPDU; pysnmp decodes unusual encodings."""
    _engine, start, end = decode_scoped_pdu(scoped)
    try:
        return decode_pdu(scoped, start, end)
    except BerError:
        pass
    try:
        pdus, _rest = decoder.decode(scoped[start:end], asn1Spec=rfc1905.PDUs())
        pdu = pdus.getComponent()
        if pdu.isSameTypeWith(rfc1905.ResponsePDU()):
            tag = RESPONSE_PDU
        elif pdu.isSameTypeWith(rfc1905.ReportPDU()):
            tag = REPORT_PDU
        else:
            raise BerError("not a Response or Report PDU")
        return Pdu(tag, int(_V2C.apiPDU.get_request_id(pdu)),
                   int(_V2C.apiPDU.get_error_status(pdu)),
                   int(pdu.getComponentByPosition(2)),
                   [to_varbind(oid, value) for oid, value in _V2C.apiPDU.get_varbinds(pdu)])
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise BerError(f"undecodable PDU: {exc}") from exc
