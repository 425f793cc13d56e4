"""The SNMPv3 message with User-based Security (RFC 3412 6, RFC 3414 2.4): writing and strict
reading.

    SNMPv3Message ::= SEQUENCE {
        msgVersion INTEGER (3),
        msgGlobalData SEQUENCE { msgID INTEGER, msgMaxSize INTEGER, msgFlags OCTET STRING (1),
                                 msgSecurityModel INTEGER (3 = USM) },
        msgSecurityParameters OCTET STRING,   -- holds the BER of UsmSecurityParameters:
            -- SEQUENCE { engineID OCTET STRING, engineBoots INTEGER, engineTime INTEGER,
            --            userName OCTET STRING, authParameters OCTET STRING,
            --            privParameters OCTET STRING }
        msgData CHOICE { plaintext ScopedPDU, encryptedPDU OCTET STRING } }
    ScopedPDU ::= SEQUENCE { contextEngineID OCTET STRING, contextName OCTET STRING, data PDU }

Only this frame is written and read here; the PDU inside is pysnmp's (requests) and
``snmp_ber``'s (answers), as for v1/v2c. SNMP allows only definite lengths (RFC 3417 8), so the
reader refuses anything else, and any field out of its range, with ``BerError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from agent.sources.snmp_ber import BerError, read_integer, read_tlv

SNMPV3 = 3
USM = 3
FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE = 0x01, 0x02, 0x04
MAX_MESSAGE_SIZE = 65507            # the largest UDP payload: what we accept
_INT31 = 2**31 - 1
_SEQUENCE, _OCTETS, _INTEGER = 0x30, 0x04, 0x02


@dataclass(frozen=True, slots=True)
class Security:
    """UsmSecurityParameters."""

    engine_id: bytes
    boots: int
    time: int
    user: bytes
    auth: bytes          # the MAC (zeros while it is computed)
    priv: bytes          # the salt


class Incoming(NamedTuple):
    msg_id: int
    flags: int
    security: Security
    auth_at: int         # offset of the MAC in the message, to zero it for checking
    scoped: bytes        # the ScopedPDU, or its ciphertext when FLAG_PRIV is set


def encode_message(msg_id: int, flags: int, security: Security, scoped: bytes) -> tuple[bytes, int]:
    """The message, and the offset of ``security.auth`` in it (where the MAC goes).

    ``scoped`` is ``encode_scoped_pdu(...)``, or the ciphertext of it when FLAG_PRIV is set.
    """
    header = _tlv(_SEQUENCE, _int(msg_id) + _int(MAX_MESSAGE_SIZE) + _tlv(_OCTETS, bytes([flags]))
                  + _int(USM))
    before_auth = (_tlv(_OCTETS, security.engine_id) + _int(security.boots) + _int(security.time)
                   + _tlv(_OCTETS, security.user) + _head(_OCTETS, len(security.auth)))
    params = before_auth + security.auth + _tlv(_OCTETS, security.priv)
    params_seq = _tlv(_SEQUENCE, params)
    data = scoped if not flags & FLAG_PRIV else _tlv(_OCTETS, scoped)
    front = _int(SNMPV3) + header + _head(_OCTETS, len(params_seq))
    body = front + params_seq + data
    message = _head(_SEQUENCE, len(body)) + body
    auth_at = ((len(message) - len(body)) + len(front) + (len(params_seq) - len(params))
               + len(before_auth))
    return message, auth_at


def encode_scoped_pdu(context_engine_id: bytes, context_name: bytes, pdu: bytes) -> bytes:
    return _tlv(_SEQUENCE, _tlv(_OCTETS, context_engine_id) + _tlv(_OCTETS, context_name) + pdu)


def decode_message(data: bytes) -> Incoming:
    """The frame of an SNMPv3 USM message; ``BerError`` for anything else."""
    tag, pos, end = read_tlv(data, 0, len(data))
    if tag != _SEQUENCE or end != len(data):
        raise BerError("not one SEQUENCE")
    version, pos = read_integer(data, pos, end)
    if version != SNMPV3:
        raise BerError("not SNMPv3")
    tag, pos, header_end = read_tlv(data, pos, end)
    if tag != _SEQUENCE:
        raise BerError("no msgGlobalData")
    msg_id, pos = read_integer(data, pos, header_end)
    max_size, pos = read_integer(data, pos, header_end)
    flags_bytes, pos = _octets(data, pos, header_end)
    model, pos = read_integer(data, pos, header_end)
    if pos != header_end or len(flags_bytes) != 1 or model != USM or not 0 <= msg_id <= _INT31 \
            or not 484 <= max_size <= _INT31:
        raise BerError("msgGlobalData out of range")
    flags = flags_bytes[0]
    if flags & FLAG_PRIV and not flags & FLAG_AUTH:
        raise BerError("privacy without authentication")
    tag, params_start, params_end = read_tlv(data, header_end, end)
    if tag != _OCTETS:
        raise BerError("msgSecurityParameters is not an OCTET STRING")
    security, auth_at = _security(data, params_start, params_end)
    tag, s_start, s_end = read_tlv(data, params_end, end)
    if s_end != end:
        raise BerError("trailing data")
    if flags & FLAG_PRIV:
        if tag != _OCTETS:
            raise BerError("encryptedPDU is not an OCTET STRING")
        scoped = data[s_start:s_end]
    else:
        if tag != _SEQUENCE:
            raise BerError("ScopedPDU is not a SEQUENCE")
        scoped = data[params_end:s_end]
    return Incoming(msg_id, flags, security, auth_at, scoped)


def decode_scoped_pdu(scoped: bytes) -> tuple[bytes, int, int]:
    """(contextEngineID, start, end) of the PDU in a plaintext ScopedPDU; ``BerError`` otherwise."""
    tag, pos, end = read_tlv(scoped, 0, len(scoped))
    if tag != _SEQUENCE:
        raise BerError("ScopedPDU is not a SEQUENCE")
    # Decryption leaves the cipher's padding after the SEQUENCE (RFC 3414 8.1.1.2): ignore it.
    engine_id, pos = _octets(scoped, pos, end)
    _name, pos = _octets(scoped, pos, end)
    return engine_id, pos, end


def _security(data: bytes, start: int, end: int) -> tuple[Security, int]:
    tag, pos, seq_end = read_tlv(data, start, end)
    if tag != _SEQUENCE or seq_end != end:
        raise BerError("UsmSecurityParameters is not a SEQUENCE")
    engine_id, pos = _octets(data, pos, seq_end)
    boots, pos = read_integer(data, pos, seq_end)
    engine_time, pos = read_integer(data, pos, seq_end)
    user, pos = _octets(data, pos, seq_end)
    tag, auth_at, pos = read_tlv(data, pos, seq_end)
    if tag != _OCTETS:
        raise BerError("msgAuthenticationParameters is not an OCTET STRING")
    auth = data[auth_at:pos]
    priv, pos = _octets(data, pos, seq_end)
    if pos != seq_end or not 0 <= boots <= _INT31 or not 0 <= engine_time <= _INT31 \
            or len(engine_id) > 32 or len(user) > 32:
        raise BerError("UsmSecurityParameters out of range")
    return Security(engine_id, boots, engine_time, user, auth, priv), auth_at


def _octets(data: bytes, pos: int, limit: int) -> tuple[bytes, int]:
    tag, start, end = read_tlv(data, pos, limit)
    if tag != _OCTETS:
        raise BerError("not an OCTET STRING")
    return data[start:end], end


def _head(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes((tag, length))
    n = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | n)) + length.to_bytes(n, "big")


def _tlv(tag: int, body: bytes) -> bytes:
    return _head(tag, len(body)) + body


def _int(value: int) -> bytes:
    return _tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))
