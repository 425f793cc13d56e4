"""SNMPv3 without pysnmp's engine (agent.sources.snmp_usm): keys, the message frame, and what is
accepted as an answer, against net-snmp's snmpd and against pysnmp's own implementation."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Callable

import pytest
from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import univ
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters   # first: pysnmp's import cycle
from pysnmp.proto.secmod.eso.priv import aes192, aes256
from pysnmp.proto.secmod.rfc3414 import localkey
from pysnmp.proto.secmod.rfc3414.auth import hmacmd5, hmacsha
from pysnmp.proto.secmod.rfc3414.priv import des
from pysnmp.proto.secmod.rfc3826.priv import aes
from pysnmp.proto.secmod.rfc7860.auth import hmacsha2

from agent.config import DeviceConfig, parse_config
from agent.errors import DeviceProtocolError, DeviceTimeout
from agent.sources.snmp_client import SnmpClient
from agent.sources.snmp_usm_keys import UserKeys, hash_passphrase, localize
from agent.sources.snmp_usm_wire import (FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE, Security,
                                         decode_message, encode_message, encode_scoped_pdu)
from helpers import run

ROOT = Path(__file__).resolve().parent.parent
SYS_NAME_0 = (1, 3, 6, 1, 2, 1, 1, 5, 0)
ENGINE = bytes.fromhex("000000000000000000000002")       # RFC 3414 A.3's engine ID


# -- keys ----------------------------------------------------------------------------------------

def test_rfc3414_key_localization_vectors():
    # RFC 3414 A.3.1 (MD5) and A.3.2 (SHA): password "maplesyrup".
    ku_md5 = hash_passphrase(b"maplesyrup", "md5")
    assert ku_md5.hex() == "9faf3283884e92834ebc9847d8edd963"
    assert localize(ku_md5, ENGINE, "md5").hex() == "526f5eed9fcce26f8964c2930787d82b"
    ku_sha = hash_passphrase(b"maplesyrup", "sha1")
    assert ku_sha.hex() == "9fb5cc0381497b3793528939ff788d5d79145211"
    assert localize(ku_sha, ENGINE, "sha1").hex() == "6695febc9288e36282235fc7151f128497b38f3f"


_SHA2 = hmacsha2.HmacSha2
_PYSNMP_AUTH = {"md5": (hmacmd5.HmacMd5(), hmacmd5.HmacMd5.SERVICE_ID),
                "sha": (hmacsha.HmacSha(), hmacsha.HmacSha.SERVICE_ID),
                **{name: (_SHA2(oid), oid) for name, oid in (
                    ("sha224", _SHA2.SHA224_SERVICE_ID), ("sha256", _SHA2.SHA256_SERVICE_ID),
                    ("sha384", _SHA2.SAH384_SERVICE_ID), ("sha512", _SHA2.SHA512_SERVICE_ID))}}
# Our names -> pysnmp's classes, as the engine-based session mapped them (net-snmp's AES-192/256
# extend keys as Blumenthal does; the "c" variants as Cisco/Reeder do).
_PYSNMP_PRIV = {"des": des.Des(), "aes128": aes.Aes(), "aes192": aes192.AesBlumenthal192(),
                "aes256": aes256.AesBlumenthal256(), "aes192c": aes192.Aes192(),
                "aes256c": aes256.Aes256()}


@pytest.mark.parametrize("auth", sorted(_PYSNMP_AUTH))
@pytest.mark.parametrize("priv", sorted(_PYSNMP_PRIV))
def test_localized_keys_match_pysnmp(auth, priv):
    engine = bytes.fromhex("80001f8880e9630000d61ff449")
    ours = UserKeys(auth, b"auth-passphrase", priv, b"priv-passphrase").for_engine(engine)
    (auth_service, proto), priv_service = _PYSNMP_AUTH[auth], _PYSNMP_PRIV[priv]
    expected_auth = auth_service.localize_key(auth_service.hash_passphrase(b"auth-passphrase"),
                                              univ.OctetString(engine))
    expected_priv = priv_service.localize_key(
        proto, priv_service.hash_passphrase(proto, b"priv-passphrase"), univ.OctetString(engine))
    assert ours.auth_key == bytes(expected_auth)
    assert ours.priv_key == bytes(expected_priv)[:len(ours.priv_key)]
    assert len(ours.priv_key) == priv_service.KEY_SIZE
    assert bytes(localkey.hash_passphrase(b"x" * 70, __import__("hashlib").sha1)) == \
        hash_passphrase(b"x" * 70, "sha1")          # a passphrase longer than one block


# -- the frame -----------------------------------------------------------------------------------

def test_our_frame_is_what_pysnmp_reads_and_the_mac_sits_where_we_say():
    security = Security(b"\x80\x00\x1f\x88\x04engine", 7, 123456, b"agent-sha-aes",
                        bytes(12), b"\x00\x01\x02\x03\x04\x05\x06\x07")
    scoped = b"\x99" * 300           # stands for the ciphertext
    data, auth_at = encode_message(4242, FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE, security, scoped)

    message, rest = decoder.decode(data, asn1Spec=SNMPv3Message())
    assert rest == b""
    header = message["msgGlobalData"]
    assert (int(header["msgID"]), int(header["msgMaxSize"]), bytes(header["msgFlags"]),
            int(header["msgSecurityModel"])) == (4242, 65507, b"\x07", 3)
    params, _ = decoder.decode(bytes(message["msgSecurityParameters"]),
                               asn1Spec=UsmSecurityParameters())
    assert bytes(params["msgAuthoritativeEngineId"]) == security.engine_id
    assert (int(params["msgAuthoritativeEngineBoots"]), int(params["msgAuthoritativeEngineTime"]),
            bytes(params["msgUserName"]), bytes(params["msgPrivacyParameters"])) == \
        (7, 123456, b"agent-sha-aes", security.priv)
    assert bytes(message["msgData"]["encryptedPDU"]) == scoped
    assert data[auth_at:auth_at + 12] == bytes(12)

    back = decode_message(data)
    assert (back.msg_id, back.flags, back.security, back.auth_at, back.scoped) == \
        (4242, 0x07, security, auth_at, scoped)


def test_frames_pysnmp_writes_are_read_and_malformed_ones_refused():
    scoped = encode_scoped_pdu(b"eng", b"", b"\xa2\x0b\x02\x01\x01\x02\x01\x00\x02\x01\x00\x30\x00")
    data, _ = encode_message(9, FLAG_REPORTABLE, Security(b"eng", 1, 2, b"u", b"", b""), scoped)
    message, _ = decoder.decode(data, asn1Spec=SNMPv3Message())
    assert encoder.encode(message) == data
    assert decode_message(encoder.encode(message)).scoped == scoped
    from agent.sources.snmp_ber import BerError
    for bad in (data[:-1], data + b"\x00", data.replace(b"\x02\x01\x03", b"\x02\x01\x02", 1),
                bytes([data[0], 0x80]) + data[2:]):
        with pytest.raises(BerError):
            decode_message(bad)


# -- against net-snmp ----------------------------------------------------------------------------

def device(table: dict) -> DeviceConfig:
    return parse_config({"site_id": "test-site", "mqtt": {"host": "127.0.0.1", "tls": False},
                         "devices": [table]}).devices[0]


def get_sys_name(table: dict) -> bytes:
    dev = device(table)
    client = SnmpClient(dev.settings, timeout_s=table.get("timeout_s", 1.0), device=dev.name)

    async def scenario() -> bytes:
        try:
            [vb] = await client.get([SYS_NAME_0])
            return vb.value
        finally:
            await client.close()
    return run(scenario())


@pytest.mark.parametrize("user", ["agent-sha256-aes256", "agent-md5-des"])
def test_a_v3_poll_leaves_the_engine_and_cryptography_unloaded(snmpd, user):
    # They would add about 14 MiB and 0.3 s of CPU a minute to the agent (docs/benchmarks.md).
    if rejected := snmpd.user_rejected(user):
        pytest.skip(f"this snmpd cannot serve {user}: {rejected}")
    table = snmpd.device_table(user=user, timeout_s=2)
    script = textwrap.dedent(f"""
        import asyncio, sys
        import agent.runtime.daemon
        from agent.config import parse_config
        from agent.sources.snmp_client import SnmpClient
        dev = parse_config({{"site_id": "test-site", "mqtt": {{"host": "127.0.0.1", "tls": False}},
                            "devices": [{table!r}]}}).devices[0]
        async def main():
            client = SnmpClient(dev.settings, timeout_s=2, device=dev.name)
            try:
                return await client.get([{SYS_NAME_0!r}])
            finally:
                await client.close()
        assert asyncio.run(main())[0].value == {snmpd.sys_name.encode()!r}
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("cryptography", "nacl")
                     or m.startswith(("pysnmp.entity", "pysnmp.hlapi", "pysnmp.smi.builder"))))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


class Meddler:
    """A UDP hop between the agent and snmpd that can answer first, or alter what snmpd says."""

    def __init__(self, upstream: int, *, before: Callable[[bytes], bytes | None] = lambda q: None,
                 alter: Callable[[bytes], bytes] = lambda a: a) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.upstream, self.before, self.alter = upstream, before, alter
        self.altered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(2)
            while not self._stop.is_set():
                try:
                    query, client = self.sock.recvfrom(65535)
                except TimeoutError:
                    continue
                if (forged := self.before(query)) is not None:
                    self.sock.sendto(forged, client)
                up.sendto(query, ("127.0.0.1", self.upstream))
                try:
                    answer = up.recv(65535)
                except TimeoutError:
                    continue
                changed = self.alter(answer)
                self.altered += changed != answer
                self.sock.sendto(changed, client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def forged_response(query: bytes) -> bytes | None:
    """An unauthenticated Response to an authenticated GET, echoing its msgID and request-id
    (readable: the user has no privacy), with a sysName of the attacker's choosing."""
    got = decode_message(query)
    if not got.flags & FLAG_AUTH:
        return None                 # discovery: let the real router answer
    from pysnmp.proto import api
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    request, _ = decoder.decode(got.scoped, asn1Spec=__import__(
        "pysnmp.proto.mpmod.rfc3412", fromlist=["ScopedPDU"]).ScopedPDU())
    pdu = request["data"].getComponent()
    response = p.GetResponsePDU()
    p.apiPDU.set_defaults(response)
    p.apiPDU.set_request_id(response, p.apiPDU.get_request_id(pdu))
    p.apiPDU.set_varbinds(response, [(SYS_NAME_0, p.OctetString(b"forged"))])
    sec = got.security
    data, _ = encode_message(got.msg_id, 0, Security(sec.engine_id, sec.boots, sec.time, sec.user,
                                                     b"", b""),
                             encode_scoped_pdu(sec.engine_id, b"", encoder.encode(response)))
    return data


def test_an_unauthenticated_answer_to_an_authenticated_request_is_ignored(snmpd):
    meddler = Meddler(snmpd.port, before=forged_response)
    try:
        name = get_sys_name({**snmpd.device_table(user="agent-auth-only"), "port": meddler.port})
    finally:
        meddler.close()
    assert name == snmpd.sys_name.encode()


def flip_last_byte(answer: bytes) -> bytes:
    got = decode_message(answer)
    if not got.flags & FLAG_AUTH:
        return answer
    return answer[:-1] + bytes([answer[-1] ^ 0x01])


@pytest.mark.parametrize("user", ["agent-auth-only", "agent-sha-aes"])
def test_an_answer_altered_on_the_way_is_not_accepted(snmpd, user):
    meddler = Meddler(snmpd.port, alter=flip_last_byte)
    try:
        with pytest.raises(DeviceProtocolError) as caught:
            get_sys_name({**snmpd.device_table(user=user, timeout_s=0.5, retries=1),
                          "port": meddler.port})
    finally:
        meddler.close()
    assert meddler.altered >= 2                 # both tries reached us, altered
    assert "not an SNMP response" in caught.value.reason


def test_a_wrong_priv_key_is_a_timeout_that_names_the_priv_key(snmpd):
    # net-snmp cannot decrypt the request and drops it without a report: all we see is silence.
    with pytest.raises(DeviceTimeout) as caught:
        get_sys_name({**snmpd.device_table(user="agent-sha-aes", timeout_s=0.5, retries=0),
                      "priv_key": "not-the-priv-key"})
    assert "a wrong v3 priv_key also looks like this" in caught.value.reason
    assert "not-the-priv-key" not in caught.value.reason
