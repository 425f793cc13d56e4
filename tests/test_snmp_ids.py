"""Request-ids and v3 msgIDs come from the system's random source, one independent draw each.

pysnmp counts up from a start taken from Python's ``random``: after one observed request the next
id is known, and an off-path sender on the LAN can forge the router's answer to it.
"""

from __future__ import annotations

import asyncio

from pyasn1.codec.ber import decoder
from pysnmp.proto import api
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message

from agent.config.secret import Secret
from agent.config.snmp import SnmpSettings
from agent.errors import DeviceTimeout
from agent.sources.snmp_client import SnmpClient
from helpers import run
from tests.test_snmp_community import SYS_UPTIME, answer

REQUESTS = 12


class Recorder(asyncio.DatagramProtocol):
    """A UDP peer that keeps every datagram and answers v1/v2c GETs (v3 ones it ignores)."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.datagrams.append(data)
        if data[2:5] != b"\x02\x01\x03":          # not SNMPv3: answer it
            p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
            self.transport.sendto(answer(data, [p.TimeTicks(1)]), addr)


async def record(settings: dict, requests: int) -> list[bytes]:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    client = SnmpClient(SnmpSettings(host="127.0.0.1", port=port, retries=0, **settings),
                        timeout_s=0.2, device="router")
    try:
        for _ in range(requests):
            try:
                await client.get([SYS_UPTIME])
            except DeviceTimeout:
                pass
    finally:
        await client.close()
        transport.close()
    return peer.datagrams


def unpredictable(ids: list[int]) -> bool:
    """Not a counter: no id is the previous one plus one, and they use the whole 31-bit range
    (a counter from pysnmp's 24-bit start stays below 2**24; 12 random ids all do with p=2**-84)."""
    steps = [b - a for a, b in zip(ids, ids[1:])]
    return len(set(ids)) == len(ids) and 1 not in steps and max(ids) >= 2**24


def test_v2c_request_ids_are_not_a_counter():
    datagrams = run(record({"version": "2c", "community": Secret("clinic-ro")}, REQUESTS))
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    ids = [int(p.apiPDU.get_request_id(p.apiMessage.get_pdu(
        decoder.decode(d, asn1Spec=p.Message())[0]))) for d in datagrams]
    assert len(ids) == REQUESTS
    assert unpredictable(ids), ids


def test_v3_message_ids_are_not_a_counter():
    # Nobody answers v3 here: each GET sends its engine-discovery message and times out.
    datagrams = run(record({"version": "3", "user": "monitor", "auth_protocol": "none",
                                    "priv_protocol": "none"}, REQUESTS))
    msg_ids = [int(decoder.decode(d, asn1Spec=SNMPv3Message())[0]["msgGlobalData"]["msgID"])
               for d in datagrams]
    assert len(msg_ids) >= REQUESTS
    assert unpredictable(msg_ids), msg_ids
