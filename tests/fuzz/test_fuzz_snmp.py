"""Fuzz: SNMP answers. Whatever a router (or anyone on its address) sends, the v1/v2c session
reads it as the answer, a stale answer or garbage: never an exception, within time and memory."""

from __future__ import annotations

import asyncio

from hypothesis import given, strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from agent.config.secret import Secret
from agent.config.snmp import SnmpSettings
from agent.sources.snmp_ber import BerError, decode_response
from agent.sources.snmp_client import Answer
from agent.sources.snmp_community import _STALE, CommunitySession
from fuzz_budget import bounded, fuzz_settings
from test_snmp_ber import responses
from test_snmp_community import SYS_UPTIME, answer, talking_to

# Bytes that steer pyasn1 into its rare paths: indefinite and long lengths, end-of-contents.
SPICE = [b"\x80", b"\x88", b"\x84\xff\xff\xff\xff", b"\x88" + b"\xff" * 8, b"\x00\x00", b"\xff",
         b"\x30\x80", b"\x1f"]


def indefinite(data: bytes) -> bytes:
    """The same message with indefinite lengths (valid BER that routers rarely send)."""
    p = api.PROTOCOL_MODULES[api.decodeMessageVersion(data)]
    return encoder.encode(decoder.decode(data, asn1Spec=p.Message())[0], defMode=False)


@st.composite
def hostile(draw) -> bytes:
    """A response pysnmp would write, then damaged: bytes changed, spliced in, cut, appended."""
    data = draw(responses())
    data = bytearray(indefinite(data) if draw(st.booleans()) else data)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["set", "insert", "delete", "spice"]))
        if action == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.sampled_from(SPICE))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.sampled_from([b"", b"\x00", b"\x04\x00"]))


def sessions() -> list[CommunitySession]:
    return [CommunitySession(SnmpSettings(host="127.0.0.1", port=161, version=v,
                                          community=Secret("public")),
                             timeout_s=1, address="127.0.0.1:161") for v in ("1", "2c")]


SESSIONS = sessions()


@fuzz_settings(400)
@given(st.one_of(hostile(), st.binary(max_size=300)), st.integers(-2**31, 2**31 - 1))
def test_any_datagram_is_an_answer_a_stale_answer_or_garbage(data, request_id):
    for session in SESSIONS:
        with bounded("SNMP datagram"):
            result = session._decode(data, request_id)
        assert result is None or result is _STALE or isinstance(result, Answer)
    try:
        decode_response(data)
    except BerError:
        pass


@fuzz_settings(20)
@given(st.integers(1, 200_000))
def test_a_long_oid_arc_costs_linear_time(length):
    arc = b"\x81" * length + b"\x01"
    varbind = b"\x06" + _length(1 + len(arc)) + b"\x2b" + arc + b"\x43\x01\x05"
    varbinds = b"\x30" + _length(len(varbind)) + varbind
    pdu_body = b"\x02\x01\x07\x02\x01\x00\x02\x01\x00" + b"\x30" + _length(len(varbinds)) + varbinds
    body = b"\x02\x01\x01\x04\x06public\xa2" + _length(len(pdu_body)) + pdu_body
    data = b"\x30" + _length(len(body)) + body
    v2c = SESSIONS[1]
    with bounded("SNMP datagram with a long OID arc", seconds=0.5):
        result = v2c._decode(data, 7)
    # pyasn1's limit, on both paths: up to 20 continuation octets per arc.
    assert isinstance(result, Answer) if length <= 20 else result is None


def _length(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


@fuzz_settings(15)
@given(st.lists(hostile(), min_size=1, max_size=4))
def test_hostile_datagrams_never_hide_the_genuine_answer_behind_them(garbage):
    def reply(request: bytes, seen: int) -> list[bytes]:
        p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        return [*garbage, answer(request, [p.TimeTicks(4242)])]

    async def scenario():
        async with talking_to(reply, timeout_s=2) as (client, _peer):
            return await client.get([SYS_UPTIME])
    with bounded("SNMP exchange", seconds=3, mib=64):
        varbinds = asyncio.run(scenario())
    assert [vb.value for vb in varbinds] == [4242]
