"""A strict reader for the one message the agent receives most: an SNMPv1/v2c Response.

Decoding a GETBULK answer with pyasn1 costs about 0.1 ms of CPU per value; a 24-interface router
polled every 10 s made that most of the agent's CPU time (docs/benchmarks.md). This reader handles
the common, plain encoding of a Response in a few microseconds per value and refuses anything
else with ``BerError``, in which case the caller decodes the same bytes with pysnmp and pyasn1.
So it can only be faster than the library, never more lenient: tests/test_snmp_ber.py checks it
against pysnmp on generated messages, and on truncated and corrupted ones.

Refused on purpose (the library decides those): indefinite lengths, long-form tags, lengths of
more than 4 octets, non-minimal OID sub-identifiers, OID sub-identifiers of more than 20
continuation octets (as pyasn1), integers out of their type's range.
"""

from __future__ import annotations

from typing import NamedTuple

from agent.sources.snmp_client import (
    COUNTER32,
    COUNTER64,
    END_OF_MIB,
    GAUGE,
    INTEGER,
    IPADDRESS,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NULL,
    OBJECT_ID,
    OPAQUE,
    STRING,
    TIMETICKS,
    Oid,
    VarBind,
)

RESPONSE_PDU = 0xA2
REPORT_PDU = 0xA8           # SNMPv3: what a router answers when it refuses a message

# Value tags to (kind, how to read the content). Unsigned types have an upper bound.
_INT, _UINT, _BYTES, _OID, _NONE = range(5)
_VALUE_TAGS: dict[int, tuple[str, int, int]] = {
    0x02: (INTEGER, _INT, 0),
    0x04: (STRING, _BYTES, 0),
    0x05: (NULL, _NONE, 0),
    0x06: (OBJECT_ID, _OID, 0),
    0x40: (IPADDRESS, _BYTES, 0),
    0x41: (COUNTER32, _UINT, 2**32 - 1),
    0x42: (GAUGE, _UINT, 2**32 - 1),
    0x43: (TIMETICKS, _UINT, 2**32 - 1),
    0x44: (OPAQUE, _BYTES, 0),
    0x46: (COUNTER64, _UINT, 2**64 - 1),
    0x80: (NO_SUCH_OBJECT, _NONE, 0),
    0x81: (NO_SUCH_INSTANCE, _NONE, 0),
    0x82: (END_OF_MIB, _NONE, 0),
}
_V2_ONLY_TAGS = frozenset({0x46, 0x80, 0x81, 0x82})
_INT32 = (-2**31, 2**31 - 1)
# pyasn1 refuses an OID arc of more than 20 continuation octets (140-bit arcs); so does this reader.
MAX_ARC_CONTINUATION_OCTETS = 20


class BerError(ValueError):
    """Not the plain encoding this reader accepts (which may still be valid BER)."""


class Response(NamedTuple):
    version: int              # 0 = SNMPv1, 1 = SNMPv2c
    request_id: int
    status: int
    index: int                # type: ignore[assignment]  # shadows tuple.index: the SNMP name
    varbinds: list[VarBind]


def decode_response(data: bytes) -> Response:
    """The Response message in ``data``; ``BerError`` for anything else or anything unusual."""
    tag, pos, end = _tlv(data, 0, len(data))
    if tag != 0x30 or end != len(data):
        raise BerError("not one SEQUENCE")
    version, pos = _integer(data, pos, end)
    if version not in (0, 1):
        raise BerError("not SNMPv1 or v2c")
    tag, _start, pos = _tlv(data, pos, end)            # the community: nothing to check
    if tag != 0x04:
        raise BerError("community is not an OCTET STRING")
    pdu = decode_pdu(data, pos, end, v1=version == 0)
    if pdu.tag != RESPONSE_PDU:
        raise BerError("not a Response PDU")
    return Response(version, pdu.request_id, pdu.status, pdu.index, pdu.varbinds)


class Pdu(NamedTuple):
    tag: int                  # RESPONSE_PDU or REPORT_PDU
    request_id: int
    status: int
    index: int  # type: ignore[assignment]  # shadows tuple.index; the field name is API
    varbinds: list[VarBind]


def decode_pdu(data: bytes, pos: int, end: int, *, v1: bool = False) -> Pdu:
    """The Response or Report PDU that fills ``data[pos:end]``; ``BerError`` as above."""
    tag, pos, pdu_end = _tlv(data, pos, end)
    if tag not in (RESPONSE_PDU, REPORT_PDU) or pdu_end != end or (v1 and tag != RESPONSE_PDU):
        raise BerError("not a Response PDU")
    request_id, pos = _integer(data, pos, pdu_end)
    status, pos = _integer(data, pos, pdu_end)
    index, pos = _integer(data, pos, pdu_end)
    tag_list, pos, list_end = _tlv(data, pos, pdu_end)
    if tag_list != 0x30 or list_end != pdu_end:
        raise BerError("no variable-bindings list")
    varbinds = []
    while pos < list_end:
        vtag, pos, vb_end = _tlv(data, pos, list_end)
        if vtag != 0x30:
            raise BerError("a variable binding is not a SEQUENCE")
        vtag, o_start, o_end = _tlv(data, pos, vb_end)
        if vtag != 0x06:
            raise BerError("a variable binding does not start with an OID")
        oid = _oid(data, o_start, o_end)
        vtag, v_start, v_end = _tlv(data, o_end, vb_end)
        if v_end != vb_end:
            raise BerError("trailing data in a variable binding")
        if v1 and vtag in _V2_ONLY_TAGS:
            raise BerError("an SNMPv2 type in an SNMPv1 message")
        varbinds.append(_value(oid, vtag, data, v_start, v_end))
        pos = vb_end
    if not (_INT32[0] <= request_id <= _INT32[1] and 0 <= status <= _INT32[1]
            and 0 <= index <= _INT32[1]):
        raise BerError("request-id or error fields out of range")
    return Pdu(tag, request_id, status, index, varbinds)


def read_tlv(data: bytes, pos: int, limit: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``pos``; ``BerError`` as above."""
    return _tlv(data, pos, limit)


def read_integer(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    """(value, end) of the INTEGER at ``pos``; ``BerError`` as above."""
    return _integer(data, pos, limit)


def _tlv(data: bytes, pos: int, limit: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``pos``, which must end by ``limit``."""
    if pos + 2 > limit:
        raise BerError("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise BerError("long-form tag")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > limit:
            raise BerError("indefinite, huge or truncated length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    end = pos + length
    if end > limit:
        raise BerError("truncated")
    return tag, pos, end


def _integer(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    tag, start, end = _tlv(data, pos, limit)
    if tag != 0x02 or start == end or end - start > 9:
        raise BerError("not a small INTEGER")
    return int.from_bytes(data[start:end], "big", signed=True), end


def _oid(data: bytes, start: int, end: int) -> Oid:
    if start == end or data[end - 1] & 0x80:
        raise BerError("empty or unterminated OID")
    arcs: list[int] = []
    value = 0
    continued = 0
    for pos in range(start, end):
        byte = data[pos]
        if byte & 0x80:
            if continued == 0 and byte == 0x80:
                raise BerError("non-minimal OID sub-identifier")
            continued += 1
            # pyasn1's limit; without it one long arc makes a huge int, shifted per octet:
            # quadratic CPU on the event loop for a single datagram.
            if continued > MAX_ARC_CONTINUATION_OCTETS:
                raise BerError("OID sub-identifier too long")
            value = (value << 7) | (byte & 0x7F)
        else:
            arcs.append((value << 7) | byte)
            value = 0
            continued = 0
    first = arcs[0]
    if first < 40:
        head = (0, first)
    elif first < 80:
        head = (1, first - 40)
    else:
        head = (2, first - 80)
    return head + tuple(arcs[1:])


def _value(oid: Oid, tag: int, data: bytes, start: int, end: int) -> VarBind:
    spec = _VALUE_TAGS.get(tag)
    if spec is None:
        raise BerError(f"value tag 0x{tag:02x}")
    kind, how, top = spec
    if how in (_UINT, _INT):
        if start == end:
            raise BerError("empty INTEGER")
        number = int.from_bytes(data[start:end], "big", signed=True)
        if how == _UINT and not 0 <= number <= top:
            raise BerError("unsigned value out of range")
        if how == _INT and not _INT32[0] <= number <= _INT32[1]:
            raise BerError("Integer32 out of range")
        return VarBind(oid, kind, number)
    if how == _BYTES:
        if tag == 0x40 and end - start != 4:
            raise BerError("IpAddress is not 4 octets")
        return VarBind(oid, kind, data[start:end])
    if how == _OID:
        return VarBind(oid, kind, _oid(data, start, end))
    if start != end:
        raise BerError("NULL-like value with content")
    return VarBind(oid, kind)
