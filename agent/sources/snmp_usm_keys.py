"""SNMPv3 USM keys and the two transforms they drive: message authentication and privacy.

    passphrase --(RFC 3414 A.2: 1 MB of hashing)--> Ku
               --(localize with the router's engine ID)--> Kul
    auth:  HMAC over the whole message, truncated (RFC 3414 HMAC-MD5/SHA-96, RFC 7860 HMAC-SHA-2)
    priv:  AES in CFB-128 mode, IV = engineBoots | engineTime | 8-byte salt (RFC 3826); 192 and
           256-bit keys are extended from Kul as net-snmp does (Blumenthal draft) or as Cisco
           does (Reeder draft: the "c" protocols)
           DES in CBC mode, key = Kul[:8], IV = Kul[8:16] XOR (engineBoots | 4-byte counter)
           (RFC 3414 8), the scoped PDU padded to whole 8-byte blocks

Plain hashlib/hmac, and AES and DES from the interpreter's OpenSSL (``agent.libcrypto``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from agent import libcrypto

HashFactory = Callable[[], "hashlib._Hash"]

# auth protocol -> (hash, bytes of the HMAC sent in msgAuthenticationParameters)
_AUTH: dict[str, tuple[str, int]] = {
    "md5": ("md5", 12), "sha": ("sha1", 12), "sha224": ("sha224", 16), "sha256": ("sha256", 24),
    "sha384": ("sha384", 32), "sha512": ("sha512", 48),
}
# priv protocol -> (bytes of the localized key used, key extension)
_BLUMENTHAL, _REEDER, _DES = "blumenthal", "reeder", "des"
_PRIV: dict[str, tuple[int, str]] = {
    "aes128": (16, _BLUMENTHAL), "aes192": (24, _BLUMENTHAL), "aes256": (32, _BLUMENTHAL),
    "aes192c": (24, _REEDER), "aes256c": (32, _REEDER),
    "des": (16, _DES),                  # 8 bytes of key, 8 of pre-IV
}
AUTH_PROTOCOLS = frozenset({"none", *_AUTH})
PRIV_PROTOCOLS = frozenset({"none", *_PRIV})
SALT_BYTES = 8


def hash_passphrase(passphrase: bytes, hash_name: str) -> bytes:
    """Ku: the hash of 1,048,576 bytes of the passphrase repeated (RFC 3414, A.2)."""
    if not passphrase:
        raise ValueError("an empty passphrase has no key")
    h = hashlib.new(hash_name)
    block = passphrase * (64 // len(passphrase) + 2)
    mark = 0
    for _ in range(16384):                  # 16384 x 64 bytes = 1 MB
        h.update(block[mark:mark + 64])
        mark = (mark + 64) % len(passphrase)
    return h.digest()


def localize(key: bytes, engine_id: bytes, hash_name: str) -> bytes:
    """Kul = H(Ku | engineID | Ku): the key only this router's engine accepts (RFC 3414, 2.6)."""
    return hashlib.new(hash_name, key + engine_id + key).digest()


@dataclass(frozen=True)
class UsmKeys:
    """One user's localized keys for one router's engine ID."""

    auth_hash: str | None          # None: noAuthNoPriv
    auth_key: bytes
    mac_bytes: int
    priv_key: bytes                # b"": no privacy
    des: bool = False              # DES-CBC instead of AES-CFB

    @property
    def authenticates(self) -> bool:
        return self.auth_hash is not None

    @property
    def encrypts(self) -> bool:
        return bool(self.priv_key)

    def sign(self, message: bytes) -> bytes:
        """msgAuthenticationParameters for ``message`` (built with zeros in their place)."""
        assert self.auth_hash is not None
        return hmac.new(self.auth_key, message, self.auth_hash).digest()[:self.mac_bytes]

    def signed_by_router(self, message: bytes, mac: bytes) -> bool:
        """Whether ``mac`` authenticates ``message`` (with zeros in the MAC's place)."""
        return len(mac) == self.mac_bytes and hmac.compare_digest(self.sign(message), mac)

    def encrypt(self, scoped_pdu: bytes, boots: int, engine_time: int,
                counter: int) -> tuple[bytes, bytes]:
        """(ciphertext, msgPrivacyParameters); ``counter`` is new for every message."""
        if self.des:
            salt = boots.to_bytes(4, "big") + (counter % 2**32).to_bytes(4, "big")
            padded = scoped_pdu + bytes(-len(scoped_pdu) % 8)   # the receiver ignores the padding
            return libcrypto.des_cbc(self.priv_key[:8], _xor(self.priv_key[8:16], salt), padded,
                                     encrypt=True), salt
        salt = (counter % 2**64).to_bytes(SALT_BYTES, "big")
        return libcrypto.aes_cfb128(self.priv_key, _iv(boots, engine_time, salt), scoped_pdu,
                                    encrypt=True), salt

    def decrypt(self, data: bytes, boots: int, engine_time: int, salt: bytes) -> bytes:
        """The scoped PDU; ValueError for privacy parameters or a length that cannot be right."""
        if len(salt) != SALT_BYTES:
            raise ValueError("msgPrivacyParameters is not an 8-byte salt")
        if self.des:
            return libcrypto.des_cbc(self.priv_key[:8], _xor(self.priv_key[8:16], salt), data,
                                     encrypt=False)
        return libcrypto.aes_cfb128(self.priv_key, _iv(boots, engine_time, salt), data,
                                    encrypt=False)


class UserKeys:
    """A user's passphrases hashed once (the costly step); localized per engine ID on demand."""

    def __init__(self, auth_protocol: str, auth_passphrase: bytes | None, priv_protocol: str,
                 priv_passphrase: bytes | None) -> None:
        if auth_protocol not in AUTH_PROTOCOLS or priv_protocol not in PRIV_PROTOCOLS:
            raise ValueError(f"unsupported USM protocols {auth_protocol}/{priv_protocol}")
        if priv_protocol != "none" and auth_protocol == "none":
            raise ValueError("privacy needs authentication")
        self._auth = _AUTH.get(auth_protocol)
        self._priv = _PRIV.get(priv_protocol)
        hash_name = self._auth[0] if self._auth else ""
        self._auth_ku = hash_passphrase(auth_passphrase or b"", hash_name) if self._auth else b""
        self._priv_ku = hash_passphrase(priv_passphrase or b"", hash_name) if self._priv else b""

    def for_engine(self, engine_id: bytes) -> UsmKeys:
        if self._auth is None:
            return UsmKeys(None, b"", 0, b"")
        hash_name, mac_bytes = self._auth
        priv = b""
        des = False
        if self._priv is not None:
            size, extension = self._priv
            des = extension == _DES
            priv = _extend(localize(self._priv_ku, engine_id, hash_name), engine_id, hash_name,
                           size, extension)
        return UsmKeys(hash_name, localize(self._auth_ku, engine_id, hash_name), mac_bytes, priv,
                       des)


class SaltCounter:
    """Salts of RFC 3826 3.1.2.1 and RFC 3414 8.1.1.1: a counter from a random start, one value
    per message (DES uses its low 32 bits)."""

    def __init__(self) -> None:
        self._next = int.from_bytes(os.urandom(SALT_BYTES), "big")

    def take(self) -> int:
        value, self._next = self._next, (self._next + 1) % 2**64
        return value


def _extend(key: bytes, engine_id: bytes, hash_name: str, size: int, extension: str) -> bytes:
    while len(key) < size and extension != _DES:
        if extension == _BLUMENTHAL:
            key += hashlib.new(hash_name, key).digest()
        else:   # Reeder: the whole passphrase-to-key step again, with the key as the passphrase
            key += localize(hash_passphrase(key, hash_name), engine_id, hash_name)
    return key[:size]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _iv(boots: int, engine_time: int, salt: bytes) -> bytes:
    return boots.to_bytes(4, "big") + engine_time.to_bytes(4, "big") + salt
