"""The OpenSSL operations the daemon needs: Ed25519 verification, AES-CFB-128 and DES-CBC.

The agent's process already holds OpenSSL: CPython's ``ssl`` and ``hashlib`` are linked to it (the
broker link is TLS). Calling its EVP functions through ``ctypes`` adds 0.1-0.3 MiB to the agent;
importing ``cryptography`` for the same operations loads a second copy of OpenSSL and adds
6.4 MiB (PyNaCl: 0.9 MiB, Ed25519 only; docs/benchmarks.md). The algorithms are the same code
``cryptography`` runs (it is OpenSSL too), so a signature verifies here exactly when it verifies
there; tests/test_libcrypto.py checks them against ``cryptography`` and published test vectors.

DES (SNMPv3's oldest privacy protocol) is in OpenSSL 3's legacy provider, which is loaded into a
private library context of ours: the process-wide defaults that TLS uses are left alone.

Where the interpreter's OpenSSL cannot be reached (a build that links it statically), or is older
than 1.1.1 (3.0 for DES), the functions fall back to ``cryptography``: slower to load, same answers.

Every call uses its own cipher or digest context, so the functions are safe from any thread, and
leaves OpenSSL's error queue empty, so a failure here is never reported later by ``ssl``.
"""

from __future__ import annotations

import ctypes
from typing import Any

_NID_ED25519 = 1087        # EVP_PKEY_ED25519 in every OpenSSL since 1.1.1
_CFB_CIPHERS = {16: "EVP_aes_128_cfb128", 24: "EVP_aes_192_cfb128", 32: "EVP_aes_256_cfb128"}
ED25519_KEY_BYTES = 32
ED25519_SIGNATURE_BYTES = 64


class CryptoUnavailable(RuntimeError):
    """Neither the interpreter's OpenSSL nor ``cryptography`` can do the operation."""


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key`` (raw,
    32 bytes). A malformed key or signature is simply not valid."""
    if len(public_key) != ED25519_KEY_BYTES or len(signature) != ED25519_SIGNATURE_BYTES:
        return False
    lib = _openssl()
    if lib is None:
        return _ed25519_verify_cryptography(public_key, signature, message)
    pkey = lib.EVP_PKEY_new_raw_public_key(_NID_ED25519, None, public_key, len(public_key))
    if not pkey:
        lib.ERR_clear_error()
        return False
    ctx = lib.EVP_MD_CTX_new()
    try:
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new")
        if lib.EVP_DigestVerifyInit(ctx, None, None, None, pkey) != 1:
            return False
        # 1: valid; 0: not valid; negative: malformed input (also not valid).
        verdict = lib.EVP_DigestVerify(ctx, signature, len(signature), message, len(message))
        return bool(verdict == 1)
    finally:
        lib.EVP_MD_CTX_free(ctx)
        lib.EVP_PKEY_free(pkey)
        lib.ERR_clear_error()


def aes_cfb128(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    """AES (128, 192 or 256-bit ``key``) in CFB-128 mode, as SNMPv3 privacy uses it (RFC 3826)."""
    if len(key) not in _CFB_CIPHERS or len(iv) != 16:
        raise ValueError("AES-CFB needs a 16, 24 or 32-byte key and a 16-byte IV")
    lib = _openssl()
    if lib is None:
        return _aes_cfb128_cryptography(key, iv, data, encrypt=encrypt)
    return _cipher(lib, getattr(lib, _CFB_CIPHERS[len(key)])(), key, iv, data, encrypt)


def des_cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    """Single DES in CBC mode without padding (RFC 3414 8.1.1): ``data`` in whole 8-byte blocks."""
    if len(key) != 8 or len(iv) != 8:
        raise ValueError("DES-CBC needs an 8-byte key and an 8-byte IV")
    if len(data) % 8:
        raise ValueError("DES-CBC data must be whole 8-byte blocks")
    lib = _openssl()
    cipher = _legacy_des(lib) if lib is not None else None
    if cipher is None:
        return _des_cbc_cryptography(key, iv, data, encrypt=encrypt)
    return _cipher(lib, cipher, key, iv, data, encrypt)


def _cipher(lib: Any, cipher: Any, key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    ctx = lib.EVP_CIPHER_CTX_new()
    if not ctx:
        raise MemoryError("EVP_CIPHER_CTX_new")
    out = ctypes.create_string_buffer(len(data) + 16)
    n = ctypes.c_int(0)
    tail = ctypes.c_int(0)
    try:
        ok = (lib.EVP_CipherInit_ex(ctx, cipher, None, key, iv, 1 if encrypt else 0) == 1
              and lib.EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
              and lib.EVP_CipherUpdate(ctx, out, ctypes.byref(n), data, len(data)) == 1
              and lib.EVP_CipherFinal_ex(ctx, ctypes.byref(out, n.value), ctypes.byref(tail)) == 1)
        if not ok:
            raise CryptoUnavailable("OpenSSL refused the cipher")
        return out.raw[:n.value + tail.value]
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)
        lib.ERR_clear_error()


# -- the library ---------------------------------------------------------------------------------

_UNSET: Any = object()
_lib: Any = _UNSET
_des: Any = _UNSET          # DES-CBC fetched from the legacy provider in our own library context


def _openssl() -> Any:
    """The interpreter's libcrypto with the functions above declared, or None."""
    global _lib
    if _lib is _UNSET:
        _lib = _load()
    return _lib


def _legacy_des(lib: Any) -> Any:
    """EVP_CIPHER for DES-CBC from OpenSSL 3's legacy provider, loaded in a library context of
    our own (never the default one, which TLS uses); None where that is not possible."""
    global _des
    if _des is _UNSET:
        _des = None
        try:
            p = ctypes.c_void_p
            for name, restype, argtypes in (
                    ("OSSL_LIB_CTX_new", p, []),
                    ("OSSL_PROVIDER_load", p, [p, ctypes.c_char_p]),
                    ("EVP_CIPHER_fetch", p, [p, ctypes.c_char_p, ctypes.c_char_p])):
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
        except AttributeError:      # OpenSSL 1.1.1: no providers
            return None
        libctx = lib.OSSL_LIB_CTX_new()
        # Both stay loaded for the life of the process, like the default provider.
        if libctx and lib.OSSL_PROVIDER_load(libctx, b"legacy"):
            _des = lib.EVP_CIPHER_fetch(libctx, b"DES-CBC", None) or None
        lib.ERR_clear_error()
    return _des


def _load() -> Any:
    import _hashlib  # linked to the libcrypto that ``ssl`` uses: dlsym searches its dependencies
    import ssl
    if ssl.OPENSSL_VERSION_INFO < (1, 1, 1):
        return None
    try:
        lib = ctypes.CDLL(_hashlib.__file__)
        version = lib.OpenSSL_version_num
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_ulong
    version.argtypes = []
    if version() != ssl.OPENSSL_VERSION_NUMBER:
        return None     # not the OpenSSL ``ssl`` reports: do not guess at its ABI
    p, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    buf = ctypes.c_char_p
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "EVP_PKEY_new_raw_public_key": (p, [i, p, buf, sz]),
        "EVP_PKEY_free": (None, [p]),
        "EVP_MD_CTX_new": (p, []),
        "EVP_MD_CTX_free": (None, [p]),
        "EVP_DigestVerifyInit": (i, [p, p, p, p, p]),
        "EVP_DigestVerify": (i, [p, buf, sz, buf, sz]),
        "EVP_CIPHER_CTX_new": (p, []),
        "EVP_CIPHER_CTX_free": (None, [p]),
        "EVP_CipherInit_ex": (i, [p, p, p, buf, buf, i]),
        "EVP_CipherUpdate": (i, [p, p, ctypes.POINTER(i), buf, i]),
        "EVP_CipherFinal_ex": (i, [p, p, ctypes.POINTER(i)]),
        "EVP_CIPHER_CTX_set_padding": (i, [p, i]),
        "ERR_clear_error": (None, []),
        **{name: (p, []) for name in _CFB_CIPHERS.values()},
    }
    try:
        for name, (restype, argtypes) in signatures.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
    except AttributeError:
        return None
    return lib


def _ed25519_verify_cryptography(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as exc:
        raise CryptoUnavailable("no OpenSSL with Ed25519 and no cryptography package") from exc
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _aes_cfb128_cryptography(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
    except ImportError as exc:
        raise CryptoUnavailable("no OpenSSL with AES and no cryptography package") from exc
    try:
        from cryptography.hazmat.decrepit.ciphers.modes import CFB  # cryptography >= 47
    except ImportError:
        from cryptography.hazmat.primitives.ciphers.modes import CFB
    cipher = Cipher(algorithms.AES(key), CFB(iv))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def _des_cbc_cryptography(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, modes
        try:
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
        except ImportError:
            from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    except ImportError as exc:
        raise CryptoUnavailable("no OpenSSL with DES and no cryptography package") from exc
    cipher = Cipher(TripleDES(key * 3), modes.CBC(iv))     # one key three times: single DES
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()
