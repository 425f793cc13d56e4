"""The fast Response reader checked against pysnmp itself, the reference it must agree with.

Messages are built with pysnmp's message classes and pyasn1's encoder; the fast reader must read
every one exactly as pysnmp's own decoding does. Corrupted and truncated messages must either be
refused with BerError (the agent then lets pysnmp decide) or read exactly as pysnmp reads them:
the fast path may never accept something the library would read differently.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

from agent.sources.snmp_ber import BerError, decode_response
from agent.sources.snmp_client import to_varbind

V1, V2C = api.SNMP_VERSION_1, api.SNMP_VERSION_2C

arcs = st.integers(0, 2**32 - 1)
oids = st.one_of(
    st.tuples(st.integers(0, 1), st.integers(0, 39)),
    st.tuples(st.just(2), st.integers(0, 2**20)),
).flatmap(lambda head: st.lists(arcs, max_size=12).map(lambda tail: head + tuple(tail)))


def values(version: int):
    p = api.PROTOCOL_MODULES[version]
    common = [
        st.integers(-2**31, 2**31 - 1).map(p.Integer),
        st.binary(max_size=40).map(p.OctetString),
        st.just(p.Null("")),
        oids.map(p.ObjectIdentifier),
        st.binary(min_size=4, max_size=4).map(lambda b: p.IpAddress(b)),
        st.integers(0, 2**32 - 1).map(p.TimeTicks),
        st.binary(max_size=20).map(p.Opaque),
    ]
    if version == V1:
        return st.one_of(*common, st.integers(0, 2**32 - 1).map(p.Counter),
                         st.integers(0, 2**32 - 1).map(p.Gauge))
    return st.one_of(*common, st.integers(0, 2**32 - 1).map(p.Counter32),
                     st.integers(0, 2**32 - 1).map(p.Gauge32),
                     st.integers(0, 2**64 - 1).map(p.Counter64),
                     st.sampled_from([p.NoSuchObject(""), p.NoSuchInstance(""),
                                      p.EndOfMibView("")]))


@st.composite
def responses(draw) -> bytes:
    version = draw(st.sampled_from([V1, V2C]))
    p = api.PROTOCOL_MODULES[version]
    pdu = p.GetResponsePDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, draw(st.integers(-2**31, 2**31 - 1)))
    p.apiPDU.set_error_status(pdu, draw(st.integers(0, 18 if version else 5)))
    p.apiPDU.set_error_index(pdu, draw(st.integers(0, 200)))
    p.apiPDU.set_varbinds(pdu, draw(st.lists(st.tuples(oids, values(version)), max_size=30)))
    message = p.Message()
    p.apiMessage.set_defaults(message)
    p.apiMessage.set_community(message, draw(st.binary(max_size=32)))
    p.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def with_pysnmp(data: bytes):
    """What pysnmp makes of ``data``: (version, request-id, status, index, varbinds), or None."""
    try:
        version = int(api.decodeMessageVersion(data))
        p = api.PROTOCOL_MODULES[version]
        message, rest = decoder.decode(data, asn1Spec=p.Message())
        if rest:
            return None
        pdu = p.apiMessage.get_pdu(message)
        if not pdu.isSameTypeWith(p.GetResponsePDU()):
            return None
        return (version, int(p.apiPDU.get_request_id(pdu)), int(p.apiPDU.get_error_status(pdu)),
                int(pdu.getComponentByPosition(2)),
                [to_varbind(oid, value) for oid, value in p.apiPDU.get_varbinds(pdu)])
    except (PyAsn1Error, KeyError, ValueError, TypeError):
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses())
def test_every_response_pysnmp_writes_is_read_as_pysnmp_reads_it(data):
    assert tuple(decode_response(data)) == with_pysnmp(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses(), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       st.integers(0, 10_000))
def test_corrupted_responses_are_refused_or_read_as_pysnmp_reads_them(data, flips, cut):
    mutated = bytearray(data)
    for position, byte in flips:
        mutated[position % len(mutated)] = byte
    mutated = bytes(mutated[:max(1, len(mutated) - cut % 8)] if cut % 3 == 0 else mutated)
    try:
        fast = decode_response(mutated)
    except BerError:
        return                                   # the agent hands these to pysnmp
    assert tuple(fast) == with_pysnmp(mutated)


@pytest.mark.parametrize("data, why", [
    (b"", "truncated"),
    (b"\x30\x80\x02\x01\x01\x00\x00", "indefinite"),                  # indefinite length
    (b"\x30\x03\x02\x01\x03", "not SNMPv1 or v2c"),                    # version 3
    (b"\x3f\x01\x00", "long-form tag"),
    (b"\x30\x85\x00\x00\x00\x00\x01\x00", "indefinite, huge or truncated length"),
])
def test_unusual_encodings_are_refused_with_a_reason(data, why):
    with pytest.raises(BerError, match=why):
        decode_response(data)


def tlv(tag: int, content: bytes) -> bytes:
    assert len(content) < 128
    return bytes([tag, len(content)]) + content


def test_a_non_minimal_oid_is_left_to_pysnmp():
    padded_oid = tlv(0x06, bytes([0x2B, 6, 1, 2, 1, 1, 0x80, 3, 0]))     # 3 written as 0x80 0x03
    varbind = tlv(0x30, padded_oid + tlv(0x43, b"\x05"))
    pdu = tlv(0xA2, tlv(0x02, b"\x07") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00")
              + tlv(0x30, varbind))
    with pytest.raises(BerError, match="non-minimal"):
        decode_response(tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"public") + pdu))


def message_with_oid(oid_content: bytes) -> bytes:
    def long_tlv(tag: int, content: bytes) -> bytes:
        return bytes([tag, 0x82]) + len(content).to_bytes(2, "big") + content
    varbind = long_tlv(0x30, long_tlv(0x06, oid_content) + tlv(0x43, b"\x05"))
    pdu = long_tlv(0xA2, tlv(0x02, b"\x07") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00")
                   + long_tlv(0x30, varbind))
    return long_tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"public") + pdu)


def test_an_oid_arc_of_20_continuation_octets_is_read_as_pysnmp_reads_it():
    data = message_with_oid(b"\x2b" + b"\x81" * 20 + b"\x01")
    assert tuple(decode_response(data)) == with_pysnmp(data)


@pytest.mark.parametrize("continuation_octets", [21, 60_000])
def test_an_oid_arc_longer_than_pyasn1_allows_is_refused(continuation_octets):
    # A 60,000-octet arc once cost 0.3 s of event-loop CPU (quadratic in its length).
    data = message_with_oid(b"\x2b" + b"\x81" * continuation_octets + b"\x01")
    assert with_pysnmp(data) is None
    with pytest.raises(BerError, match="sub-identifier too long"):
        decode_response(data)
