"""SNMPv1 and v2c requests with pysnmp's message layer (``pysnmp.proto.api``) over asyncio UDP.

Community-based SNMP needs no engine: a request is one encoded message, an answer is one decoded
message with the same request-id. pysnmp's high-level API would build an ``SnmpEngine`` for it
anyway, with its MIB modules, the v3 security code (and ``cryptography``), and a dispatcher that
wakes the event loop ten times a second; together about 14 MiB and most of the agent's idle CPU.
This module uses the same pysnmp message classes and pyasn1 codec without any of that (and so
does ``snmp_usm`` for v3). Answers are read by ``snmp_ber`` first,
about 20 times cheaper than pyasn1 for the plain encoding routers use; anything it does not
accept is decoded by pysnmp.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import Any, cast

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from agent.config.snmp import SnmpSettings
from agent.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout
from agent.i18n import text
from agent.sources.snmp_ber import BerError, decode_response
from agent.sources.snmp_client import GET, GETBULK, GETNEXT, Answer, Oid, timeout_reason, to_varbind
from agent.sources.snmp_ids import new_id

log = logging.getLogger(__name__)

_PDU_CLASSES = {GET: "GetRequestPDU", GETNEXT: "GetNextRequestPDU", GETBULK: "GetBulkRequestPDU"}


class Datagrams(asyncio.DatagramProtocol):
    """Hands each datagram from the router to whoever waits; remembers an ICMP refusal."""

    def __init__(self) -> None:
        self.inbox: deque[bytes] = deque(maxlen=64)   # a flood of stray answers cannot grow memory
        self.refused: OSError | None = None
        self.waiter: asyncio.Future[None] | None = None

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.inbox.append(data)
        self._wake()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refused = exc
            self._wake()

    async def arrival(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a datagram or a refusal; False if none came."""
        if self.inbox or self.refused is not None:
            return True
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self.waiter
            return True
        except TimeoutError:
            return False
        finally:
            self.waiter = None

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class DatagramSocket:
    """One connected UDP socket to one router, opened on first use by the running loop and
    guarded by a lock (requests one at a time): shared by the v1/v2c and v3 sessions."""

    def __init__(self, settings: SnmpSettings, address: str) -> None:
        self.settings = settings
        self.address = address
        self._transport: asyncio.DatagramTransport | None = None
        self._datagrams: Datagrams | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def close(self) -> None:
        transport, self._transport, self._datagrams, self._loop = self._transport, None, None, None
        if transport is not None:
            transport.close()

    async def _open(self) -> Datagrams:
        loop = asyncio.get_running_loop()
        if self._transport is not None and self._loop is not loop:
            await self.close()     # the socket belongs to the loop that opened it
        if self._transport is None or self._datagrams is None:
            transport, datagrams = await open_datagrams(self.settings, self.address)
            if self._transport is not None and self._datagrams is not None:
                transport.close()      # a concurrent first request opened one meanwhile
                return self._datagrams
            self._transport, self._datagrams, self._loop = transport, datagrams, loop
            self._lock = asyncio.Lock()
        return self._datagrams


class CommunitySession(DatagramSocket):
    """One connected UDP socket to one router; requests are sent one at a time."""

    def __init__(self, settings: SnmpSettings, *, timeout_s: float, address: str) -> None:
        super().__init__(settings, address)
        self.timeout_s = timeout_s
        self._proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_1 if settings.version == "1"
                                           else api.SNMP_VERSION_2C]
        secret = settings.community
        self._community = secret.reveal().encode() if secret is not None else b""

    async def request(self, kind: str, oids: list[Oid], non_repeaters: int = 0,
                      max_repetitions: int = 0) -> Answer:
        datagrams = await self._open()
        assert self._lock is not None
        async with self._lock:
            message, request_id = self._encode(kind, oids, non_repeaters, max_repetitions)
            return await self._exchange(datagrams, message, request_id)

    # -- internals -----------------------------------------------------------------------------

    def _encode(self, kind: str, oids: list[Oid], non_repeaters: int,
                max_repetitions: int) -> tuple[bytes, int]:
        p = self._proto
        pdu = request_pdu(p, kind, oids, non_repeaters, max_repetitions)
        message = p.Message()
        p.apiMessage.set_defaults(message)
        p.apiMessage.set_community(message, self._community)
        p.apiMessage.set_pdu(message, pdu)
        return encoder.encode(message), int(p.apiPDU.get_request_id(pdu))

    async def _exchange(self, datagrams: Datagrams, message: bytes, request_id: int) -> Answer:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        garbage = 0
        _drain(datagrams)              # answers to earlier requests are of no use now
        for _attempt in range(self.settings.retries + 1):
            # A retry resends the same request-id, so a late answer to the first try still counts.
            self._transport.sendto(message)
            deadline = loop.time() + self.timeout_s
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    break
                if not await datagrams.arrival(left):
                    break
                if datagrams.refused is not None:
                    datagrams.refused = None
                    raise DeviceRefused(text("src.snmp.port_unreachable", where=self.address))
                while datagrams.inbox:
                    answer = self._decode(datagrams.inbox.popleft(), request_id)
                    if answer is None:
                        garbage += 1
                    elif answer is not _STALE:
                        return cast(Answer, answer)   # neither None nor _STALE: an Answer
        if garbage:
            raise DeviceProtocolError(text("src.snmp.not_a_response", where=self.address))
        raise DeviceTimeout(timeout_reason(self.settings.version, self.address))

    def _decode(self, data: bytes, request_id: int) -> Answer | None | object:
        """The answer, ``_STALE`` for a well-formed answer to another request, None for garbage."""
        try:
            fast = decode_response(data)
        except BerError:
            # unusual encoding: the library decides
            return self._decode_with_pysnmp(data, request_id)
        if fast.version != (0 if self.settings.version == "1" else 1):
            return None
        if fast.request_id != request_id:
            return _STALE
        return Answer(fast.status, fast.index, fast.varbinds)

    def _decode_with_pysnmp(self, data: bytes, request_id: int) -> Answer | None | object:
        p = self._proto
        try:
            message, rest = decoder.decode(data, asn1Spec=p.Message())
            if rest:
                return None            # trailing bytes: refused here as on the fast path
            if int(p.apiMessage.get_version(message)) != (0 if self.settings.version == "1" else 1):
                return None
            pdu = p.apiMessage.get_pdu(message)
            if not pdu.isSameTypeWith(p.GetResponsePDU()):
                return None
            if int(p.apiPDU.get_request_id(pdu)) != request_id:
                return _STALE
            status = int(p.apiPDU.get_error_status(pdu))
            index = int(pdu.getComponentByPosition(2))   # raw: the client checks its range
            varbinds = [to_varbind(oid, value) for oid, value in p.apiPDU.get_varbinds(pdu)]
        except Exception as exc:  # noqa: BLE001 - hostile bytes make pyasn1 raise OverflowError,
            # IndexError, ... besides PyAsn1Error: all mean "not an answer", and the genuine
            # answer may still be on its way.
            log.debug("%s: undecodable datagram: %s", self.address, exc)
            return None
        return Answer(status, index, varbinds)


_STALE = object()


def request_pdu(proto: Any, kind: str, oids: list[Oid], non_repeaters: int = 0,
                max_repetitions: int = 0) -> Any:
    """A GET, GETNEXT or GETBULK PDU of pysnmp's ``proto`` module, with a fresh request-id."""
    pdu = getattr(proto, _PDU_CLASSES[kind])()
    if kind == GETBULK:
        proto.apiBulkPDU.set_defaults(pdu)
        proto.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
        proto.apiBulkPDU.set_max_repetitions(pdu, max_repetitions)
    else:
        proto.apiPDU.set_defaults(pdu)
    # pysnmp's default id is a counter from ``random``: predictable, so forgeable answers.
    proto.apiPDU.set_request_id(pdu, new_id())
    proto.apiPDU.set_varbinds(pdu, [(oid, proto.null) for oid in oids])
    return pdu


async def open_datagrams(settings: SnmpSettings, address: str) -> tuple[asyncio.DatagramTransport,
                                                                        Datagrams]:
    """A UDP socket connected to the router, or a ``SourceError`` a technician can act on."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_datagram_endpoint(Datagrams,
                                                   remote_addr=(settings.host, settings.port))
    except socket.gaierror as exc:
        raise DeviceTimeout(text("src.snmp.cannot_resolve", host=repr(settings.host))) from exc
    except OSError as exc:
        raise DeviceProtocolError(text("src.snmp.no_socket", where=address,
                                       error=exc.strerror or str(exc))) from exc


def _drain(datagrams: Datagrams) -> None:
    datagrams.inbox.clear()
    datagrams.refused = None
