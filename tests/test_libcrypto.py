"""agent.libcrypto: the interpreter's OpenSSL gives the same answers as ``cryptography``.

Signatures of config pushes and remote commands, and SNMPv3 privacy, are checked here without
loading ``cryptography`` into the daemon; a disagreement with it would be a security bug.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from agent import libcrypto
from agent.remote.envelope import KeyFileError, generate_keypair, key_id, load_public_key

ROOT = Path(__file__).resolve().parent.parent
L = 2**252 + 27742317777372353535851937790883648493      # the order of Ed25519's base point


@pytest.fixture(params=["openssl", "cryptography"])
def backend(request, monkeypatch):
    """Every check runs on the interpreter's OpenSSL and on the fallback."""
    if request.param == "openssl":
        assert libcrypto._openssl() is not None, "this interpreter's OpenSSL should be usable"
        assert libcrypto._legacy_des(libcrypto._openssl()) is not None, "and have DES"
    else:
        monkeypatch.setattr(libcrypto, "_lib", None)
    return request.param


def raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def reference_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except Exception:   # noqa: BLE001 - any refusal is "not valid"
        return False
    return True


# RFC 8032, 7.1, TEST 1-3: (public key, message, signature).
RFC8032 = [
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
     "d25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
     "4a7c15e9716ed28dc027beceea1ec40a"),
]


@pytest.mark.parametrize("public, message, signature", RFC8032)
def test_rfc8032_signatures_verify_and_any_changed_bit_does_not(backend, public, message, signature):
    pk, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert libcrypto.ed25519_verify(pk, sig, msg) is True
    for i in range(0, 64, 7):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        assert libcrypto.ed25519_verify(pk, bytes(bad), msg) is False
    assert libcrypto.ed25519_verify(pk, sig, msg + b"\x00") is False


def test_verification_agrees_with_cryptography_on_valid_forged_and_malformed_input(backend):
    key = Ed25519PrivateKey.generate()
    public = raw(key.public_key())
    other = raw(Ed25519PrivateKey.generate().public_key())
    message = os.urandom(300)
    sig = key.sign(message)
    s = int.from_bytes(sig[32:], "little")
    cases = [
        (public, sig, message),                                    # valid
        (other, sig, message),                                     # another key
        (public, sig[:32] + (s + L).to_bytes(32, "little"), message),   # non-canonical S
        (public, bytes(64), message),                              # all zero
        (bytes(32), sig, message),                                 # small-order key
        (b"\xff" * 32, sig, message),                              # not a point
        (public, sig[:63], message),                               # short signature
        (public[:31], sig, message),                               # short key
    ]
    for pk, signature, msg in cases:
        assert libcrypto.ed25519_verify(pk, signature, msg) == reference_verify(pk, signature, msg)
    assert libcrypto.ed25519_verify(public, sig, message) is True


@pytest.mark.parametrize("size", [16, 24, 32])
def test_aes_cfb128_matches_cryptography_both_ways(backend, size):
    key, iv = os.urandom(size), os.urandom(16)
    for length in (0, 1, 15, 16, 17, 1400):
        data = os.urandom(length)
        enc = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
        expected = enc.update(data) + enc.finalize()
        assert libcrypto.aes_cfb128(key, iv, data, encrypt=True) == expected
        assert libcrypto.aes_cfb128(key, iv, expected, encrypt=False) == data


def test_aes_cfb128_nist_vector(backend):
    # NIST SP 800-38A, F.3.13 CFB128-AES128.Encrypt, first block.
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plain = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert libcrypto.aes_cfb128(key, iv, plain, encrypt=True).hex() == "3b3fd92eb72dad20333449f8e83cfb4a"


def test_des_cbc_matches_cryptography_and_the_fips81_example(backend):
    key, iv = os.urandom(8), os.urandom(8)
    data = os.urandom(64)
    enc = Cipher(TripleDES(key * 3), modes.CBC(iv)).encryptor()     # one key thrice: single DES
    expected = enc.update(data) + enc.finalize()
    assert libcrypto.des_cbc(key, iv, data, encrypt=True) == expected
    assert libcrypto.des_cbc(key, iv, expected, encrypt=False) == data
    # FIPS 81, appendix C: CBC mode.
    fips = libcrypto.des_cbc(bytes.fromhex("0123456789abcdef"), bytes.fromhex("1234567890abcdef"),
                             b"Now is the time for all ", encrypt=True)
    assert fips.hex() == "e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6"


def test_des_leaves_the_default_openssl_context_as_it_was():
    # The legacy provider is loaded into a context of our own: TLS keeps refusing DES.
    import ssl
    assert libcrypto.des_cbc(bytes(8), bytes(8), bytes(8), encrypt=True)
    ctx = ssl.create_default_context()
    with pytest.raises(ssl.SSLError):
        ctx.set_ciphers("DES-CBC-SHA")


def test_aes_cfb128_refuses_bad_key_or_iv_sizes():
    with pytest.raises(ValueError):
        libcrypto.aes_cfb128(bytes(20), bytes(16), b"x", encrypt=True)
    with pytest.raises(ValueError):
        libcrypto.aes_cfb128(bytes(16), bytes(8), b"x", encrypt=True)


# -- trusted key files -------------------------------------------------------------------------

def test_key_files_from_fleet_keygen_load_with_the_same_key_id(tmp_path):
    _key, pub, kid = generate_keypair(tmp_path, "alice")
    loaded = load_public_key(pub)
    reference = serialization.load_pem_public_key(pub.read_bytes())
    assert loaded.raw == raw(reference)                       # type: ignore[arg-type]
    assert key_id(loaded) == kid


def test_a_key_file_with_text_around_the_pem_block_loads(tmp_path):
    _key, pub, kid = generate_keypair(tmp_path, "bob")
    framed = tmp_path / "framed.pub"
    framed.write_bytes(b"# Bob's key, installed 2026-11-23\n" + pub.read_bytes().replace(b"\n", b"\r\n")
                       + b"\n")
    assert key_id(load_public_key(framed)) == kid


def test_key_files_that_are_not_ed25519_public_keys_are_refused(tmp_path):
    ec_pub = tmp_path / "ec.pub"
    ec_pub.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    garbage = tmp_path / "garbage.pub"
    garbage.write_bytes(b"-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n")
    private = tmp_path / "private.pub"        # the private half, installed by mistake
    key_path, _pub, _kid = generate_keypair(tmp_path / "k", "carol")
    private.write_bytes(key_path.read_bytes())

    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_public_key(ec_pub)
    for path in (garbage, private, tmp_path / "missing.pub"):
        with pytest.raises(KeyFileError, match="not a readable PEM public key"):
            load_public_key(path)


def test_checking_signed_pushes_and_commands_leaves_cryptography_unloaded(tmp_path):
    # It would add 6.6 MiB to the daemon from the first push on (docs/benchmarks.md).
    from remote_support import Operator, pushed_config
    op = Operator(tmp_path)
    push = tmp_path / "push.bin"
    push.write_bytes(op.push(pushed_config(port=1883), version=7))
    command = tmp_path / "command.bin"
    command.write_bytes(op.command("diagnostics"))
    script = textwrap.dedent(f"""
        import base64, json, sys, time
        import agent.runtime.daemon
        from pathlib import Path
        from agent.remote.checks import common_checks
        from agent.remote.envelope import load_trusted_keys
        keys, problems = load_trusted_keys({str(op.keys_dir)!r})
        assert keys and not problems, problems
        for name, kind in (("push.bin", "config"), ("command.bin", "command")):
            data = Path({str(tmp_path)!r}, name).read_bytes()
            env = common_checks(data, kind=kind, site_id="SITE001", now=time.time(),
                                max_bytes=1 << 20, trusted_keys=keys)
            assert env.key_id == {op.key_id!r}, env
            outer = json.loads(data)
            sig = bytearray(base64.b64decode(outer["sig"]))
            sig[5] ^= 1
            outer["sig"] = base64.b64encode(bytes(sig)).decode()
            bad = common_checks(json.dumps(outer).encode(), kind=kind, site_id="SITE001",
                                now=time.time(), max_bytes=1 << 20, trusted_keys=keys)
            assert bad.reason == "bad_signature", bad
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("cryptography", "nacl")))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "tests")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_works_where_memory_may_not_be_writable_and_executable():
    # The systemd unit sets MemoryDenyWriteExecute; the kernel's own switch for the same rule is
    # prctl(PR_SET_MDWE). Calling into OpenSSL needs no executable memory of ours.
    script = textwrap.dedent("""
        import ctypes, mmap, sys
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(65, 1, 0, 0, 0) != 0:          # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
            print("unsupported"); sys.exit(0)
        try:
            mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            print("not enforced"); sys.exit(0)
        except OSError:
            pass
        from agent import libcrypto
        assert libcrypto._openssl() is not None
        key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
        iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
        out = libcrypto.aes_cfb128(key, iv, bytes.fromhex("6bc1bee22e409f96e93d7e117393172a"),
                                   encrypt=True)
        pk, msg, sig = (bytes.fromhex(x) for x in %r)
        print(out.hex(), libcrypto.ed25519_verify(pk, sig, msg))
    """ % (RFC8032[0],))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    if out.stdout.strip() in ("unsupported", "not enforced"):
        pytest.skip(f"this kernel cannot deny write+execute memory ({out.stdout.strip()})")
    assert out.stdout.split() == ["3b3fd92eb72dad20333449f8e83cfb4a", "True"]
