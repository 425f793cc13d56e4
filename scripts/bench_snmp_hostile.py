"""Time the v1/v2c session on one hostile datagram: a 64 KB OID sub-identifier (docs/benchmarks.md).

    .venv/bin/python scripts/bench_snmp_hostile.py
"""

from __future__ import annotations

import time

from agent.config.secret import Secret
from agent.config.snmp import SnmpSettings
from agent.sources.snmp_community import CommunitySession


def tlv_length(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def datagram(continuation_octets: int) -> bytes:
    arc = b"\x81" * continuation_octets + b"\x01"
    varbind = b"\x06" + tlv_length(1 + len(arc)) + b"\x2b" + arc + b"\x43\x01\x05"
    varbinds = b"\x30" + tlv_length(len(varbind)) + varbind
    pdu = b"\x02\x01\x07\x02\x01\x00\x02\x01\x00\x30" + tlv_length(len(varbinds)) + varbinds
    body = b"\x02\x01\x01\x04\x06public\xa2" + tlv_length(len(pdu)) + pdu
    return b"\x30" + tlv_length(len(body)) + body


def main() -> None:
    session = CommunitySession(SnmpSettings(host="127.0.0.1", port=161, version="2c",
                                            community=Secret("public")),
                               timeout_s=1, address="127.0.0.1:161")
    data = datagram(65_000)
    start = time.perf_counter()
    session._decode(data, 7)
    print(f"{len(data)} bytes: {(time.perf_counter() - start) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
