"""The v1/v2c session against a scripted UDP peer on loopback: what a misbehaving router sends.

net-snmp (tests/test_snmp_source.py) shows the session against a correct agent; these cases
need answers no correct agent gives: garbage, answers to another request, late answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
from typing import Callable

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from agent.config.secret import Secret
from agent.config.snmp import SnmpSettings
from agent.errors import DeviceProtocolError, DeviceTimeout
from agent.sources.snmp_client import COUNTER32, COUNTER64, GAUGE, IPADDRESS, TIMETICKS, SnmpClient

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
from helpers import run
Reply = Callable[[bytes, int], list[bytes]]     # request, how many seen so far -> datagrams


def answer(request: bytes, values: list, *, request_id: int | None = None) -> bytes:
    """A response to ``request`` carrying ``values`` for its OIDs, in the request's version."""
    version = int(api.decodeMessageVersion(request))
    p = api.PROTOCOL_MODULES[version]
    message, _ = decoder.decode(request, asn1Spec=p.Message())
    response = p.apiMessage.get_response(message)
    pdu = p.apiMessage.get_pdu(response)
    oids = [oid for oid, _ in p.apiPDU.get_varbinds(p.apiMessage.get_pdu(message))]
    p.apiPDU.set_varbinds(pdu, list(zip(oids, values)))
    if request_id is not None:
        p.apiPDU.set_request_id(pdu, request_id)
    return encoder.encode(response)


class Peer(asyncio.DatagramProtocol):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.seen = 0
        self.senders: set = set()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.seen += 1
        self.senders.add(addr)
        for datagram in self.reply(data, self.seen):
            self.transport.sendto(datagram, addr)


@contextlib.asynccontextmanager
async def talking_to(reply: Reply, *, version: str = "2c", timeout_s: float = 0.5,
                     retries: int = 0):
    """A client, and the scripted peer it talks to on a free loopback port."""
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(lambda: Peer(reply),
                                                          local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    client = SnmpClient(SnmpSettings(host="127.0.0.1", port=port, version=version,
                                     community=Secret("clinic-ro"), retries=retries),
                        timeout_s=timeout_s, device="router")
    try:
        yield client, peer
    finally:
        await client.close()
        transport.close()


async def ask(reply: Reply, **settings):
    async with talking_to(reply, **settings) as (client, peer):
        return await client.get([SYS_UPTIME]), peer.seen


def test_an_answer_to_another_request_is_ignored_and_the_right_one_taken():
    def reply(request: bytes, seen: int) -> list[bytes]:
        p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        return [answer(request, [p.TimeTicks(1)], request_id=424242),   # a late, stale answer
                answer(request, [p.TimeTicks(12345)])]
    varbinds, _ = run(ask(reply))
    assert [(vb.kind, vb.value) for vb in varbinds] == [(TIMETICKS, 12345)]


def test_a_lost_request_is_sent_again_and_its_answer_used():
    def reply(request: bytes, seen: int) -> list[bytes]:
        p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        return [] if seen == 1 else [answer(request, [p.TimeTicks(77)])]
    varbinds, seen = run(ask(reply, timeout_s=0.3, retries=1))
    assert seen == 2
    assert varbinds[0].value == 77


def test_garbage_answers_are_a_protocol_error_not_a_timeout():
    with pytest.raises(DeviceProtocolError) as caught:
        run(ask(lambda request, seen: [b"\x30\x03garbage", b"HTTP/1.1 400 Bad Request\r\n"],
                        timeout_s=0.3))
    assert caught.value.reason.endswith("answered with something that is not an SNMP response "
                                        "to this request")


def test_silence_is_a_timeout_naming_the_address():
    with pytest.raises(DeviceTimeout) as caught:
        run(ask(lambda request, seen: [], timeout_s=0.2, retries=1))
    assert "no SNMP answer from 127.0.0.1:" in caught.value.reason


def test_snmpv1_types_keep_their_meaning():
    def reply(request: bytes, seen: int) -> list[bytes]:
        p = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
        return [answer(request, [p.Counter(5)]) if seen == 1 else b""]
    varbinds, _ = run(ask(reply, version="1"))
    assert (varbinds[0].kind, varbinds[0].value) == (COUNTER32, 5)

    for value, kind, expected in [("Gauge", GAUGE, 7), ("TimeTicks", TIMETICKS, 9),
                                  ("IpAddress", IPADDRESS, b"\x0a\x00\x00\x01")]:
        def typed(request: bytes, seen: int, value=value) -> list[bytes]:
            p = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
            raw = "10.0.0.1" if value == "IpAddress" else {"Gauge": 7, "TimeTicks": 9}[value]
            return [answer(request, [getattr(p, value)(raw)])]
        varbinds, _ = run(ask(typed, version="1"))
        assert (varbinds[0].kind, varbinds[0].value) == (kind, expected)


def test_v2c_counter64_round_trips():
    def reply(request: bytes, seen: int) -> list[bytes]:
        p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        return [answer(request, [p.Counter64(2**64 - 1)])]
    varbinds, _ = run(ask(reply))
    assert (varbinds[0].kind, varbinds[0].value) == (COUNTER64, 2**64 - 1)


def test_v1_and_v2c_polls_leave_the_v3_engine_and_cryptography_unloaded():
    # They cost about 14 MiB of the agent's memory; only a v3 device should pay for them.
    script = textwrap.dedent("""
        import asyncio, sys
        from agent.config.secret import Secret
        from agent.config.snmp import SnmpSettings
        from agent.errors import SourceError
        from agent.sources.snmp import SnmpSource
        from agent.sources.snmp_client import SnmpClient
        import agent.runtime.daemon
        async def main():
            client = SnmpClient(SnmpSettings(host="127.0.0.1", port=9, version="2c",
                                             community=Secret("x"), retries=0),
                                timeout_s=0.1, device="r")
            try:
                await client.get([(1, 3, 6, 1, 2, 1, 1, 3, 0)])
            except SourceError:
                pass
            await client.close()
        asyncio.run(main())
        print(sorted(m for m in ("cryptography", "pysnmp.entity.engine", "pysnmp.hlapi")
                     if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_concurrent_first_requests_share_one_socket():
    def reply(request: bytes, seen: int) -> list[bytes]:
        p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        return [answer(request, [p.TimeTicks(seen)])]

    async def scenario():
        async with talking_to(reply, timeout_s=1) as (client, peer):
            answers = await asyncio.gather(*(client.get([SYS_UPTIME]) for _ in range(3)))
            return answers, peer.senders
    answers, senders = run(scenario())
    assert sorted(a[0].value for a in answers) == [1, 2, 3]
    assert len(senders) == 1          # one socket, not one left open per concurrent caller


# Datagrams that made pyasn1 or pysnmp raise something other than PyAsn1Error/ValueError/TypeError.
HOSTILE = {
    "an 8-octet length (OverflowError)": b"\x30\x0c\x02\x88" + b"\xff" * 8 + b"\x01\x01",
    "an indefinite-length varbind with extra parts (IndexError)": bytes.fromhex(
        "3080020101040163a280020325f3870201000201003080308006082b060102010103004301000500003080"
        "06082b060102010105000a036162630000000080000000"),
    "an IpAddress of 1 octet (pysnmp ProtocolError)": bytes.fromhex(
        "3025020101040163a21d0204008dd270020100020100300f300d06082b06010201010300400105"),
}


@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_malformed_datagram_does_not_lose_the_genuine_answer_behind_it(hostile):
    def reply(request: bytes, seen: int) -> list[bytes]:
        p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        return [hostile, answer(request, [p.TimeTicks(4242)])]
    varbinds, _ = run(ask(reply))
    assert [(vb.kind, vb.value) for vb in varbinds] == [(TIMETICKS, 4242)]


@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
def test_only_malformed_datagrams_are_a_protocol_error(hostile):
    with pytest.raises(DeviceProtocolError, match="not an SNMP response"):
        run(ask(lambda request, seen: [hostile], timeout_s=0.3))


def test_an_answer_with_trailing_bytes_is_refused():
    # The fast reader refuses it; the pysnmp fallback must not accept it either.
    def reply(request: bytes, seen: int) -> list[bytes]:
        p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        return [answer(request, [p.TimeTicks(1)]) + b"\x04\x00"]
    with pytest.raises(DeviceProtocolError, match="not an SNMP response"):
        run(ask(reply, timeout_s=0.3))
