"""Signed envelopes: the one wire format of config pushes and remote commands.

An envelope is one UTF-8 JSON object::

    {"v": 1, "key": "<key id>", "payload": "<base64 of the payload bytes>", "sig": "<base64>"}

``sig`` is an Ed25519 signature over ``DOMAIN + payload bytes``. The payload bytes are verified
exactly as received, so nothing has to be re-encoded to check a signature; the operator side
produces them with ``canonical_json`` (sorted keys, no spaces, no NaN), so the same document always
signs to the same bytes. The payload is itself a JSON object::

    {"kind": "config", "sites": ["DFSSA001234"], "issued_at": 1767225600.0,
     "not_after": 1767830400.0, "version": 1767225600, "config": "<TOML text>"}
    {"kind": "command", "sites": [...], "issued_at": ..., "not_after": ..., "id": "<nonce>",
     "command": "poll_now", "args": {"device": "ups"}}

``kind`` is inside the signed bytes, so a signed command can never be replayed as a config push
(and the other way round); ``DOMAIN`` keeps these signatures from being valid for anything else.

A key id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key. Trusted keys
are ``*.pub`` files (PEM, SubjectPublicKeyInfo) in a directory installed with the agent; private
keys live only with operators (``fleet keygen`` writes them mode 0600) and are never logged.

The site only verifies, with the interpreter's own OpenSSL (``agent.libcrypto``); signing and key
generation (the operator's side) use ``cryptography``, which the daemon never imports: it would
add 6.4 MiB to it from the first push on (docs/benchmarks.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import libcrypto
from agent.config import SITE_ID_PATTERN
from agent.errors import AgentError

ENVELOPE_VERSION = 1
DOMAIN = b"clinic-agent/envelope/v1\n"
KEY_ID_PATTERN = r"[0-9a-f]{16}"
MAX_SITES = 10_000          # one envelope can address this many sites
_OUTER_KEYS = {"v", "key", "payload", "sig"}
_COMMON_KEYS = {"kind", "sites", "issued_at", "not_after"}
# DER of an Ed25519 SubjectPublicKeyInfo (RFC 8410) before the 32 key bytes; DER has no other
# encoding of it, so this is exactly the set of keys ``cryptography`` would load.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
# Like OpenSSL's PEM reader: the first PUBLIC KEY block, text around it ignored.
_PEM_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----")


class EnvelopeError(AgentError):
    """An envelope that cannot be used; ``reason`` is the short word reported back."""

    reason = "malformed"


class Malformed(EnvelopeError):
    reason = "malformed"


class BadSignature(EnvelopeError):
    reason = "bad_signature"


class KeyFileError(AgentError):
    """A key file that cannot be read or is not an Ed25519 key."""


@dataclass(frozen=True)
class PublicKey:
    """A trusted Ed25519 public key, as its raw 32 bytes."""

    raw: bytes

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` over ``data`` was made with this key's private half."""
        return libcrypto.ed25519_verify(self.raw, signature, data)


# -- encoding ----------------------------------------------------------------------------------

def canonical_json(doc: Any) -> bytes:
    """The one byte encoding of ``doc`` that the operator side signs."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_id(public_key: PublicKey) -> str:
    return hashlib.sha256(public_key.raw).hexdigest()[:16]


def public_half(private_key: Ed25519PrivateKey) -> PublicKey:
    from cryptography.hazmat.primitives import serialization
    return PublicKey(private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                           serialization.PublicFormat.Raw))


def seal(payload: Mapping[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """Sign ``payload`` (a dict) into envelope bytes, ready to publish."""
    body = canonical_json(dict(payload))
    sig = private_key.sign(DOMAIN + body)
    outer = {"v": ENVELOPE_VERSION, "key": key_id(public_half(private_key)),
             "payload": base64.b64encode(body).decode("ascii"),
             "sig": base64.b64encode(sig).decode("ascii")}
    return canonical_json(outer)


# -- opening -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Payload:
    """The signed content, shape-checked but not yet trusted (see ``verify``)."""

    kind: str
    sites: tuple[str, ...]
    issued_at: float
    not_after: float
    body: Mapping[str, Any]     # the kind-specific fields


@dataclass(frozen=True)
class Envelope:
    key_id: str
    signed_bytes: bytes
    signature: bytes
    payload: Payload
    sha256: str                 # of the whole envelope as received


def open_envelope(data: bytes) -> Envelope:
    """Parse envelope bytes and the payload inside (shape only). Raises ``Malformed``."""
    outer = _json_object(data, "envelope")
    if set(outer) != _OUTER_KEYS:
        raise Malformed(f"envelope: expected exactly the fields {sorted(_OUTER_KEYS)}, "
                        f"got {sorted(map(str, outer))}")
    if outer["v"] != ENVELOPE_VERSION or isinstance(outer["v"], bool):
        raise Malformed(f"envelope: unsupported format version {outer['v']!r:.20}")
    kid = outer["key"]
    if not isinstance(kid, str) or not re.fullmatch(KEY_ID_PATTERN, kid):
        raise Malformed("envelope: key must be a key id of 16 hex digits")
    signed = _b64(outer["payload"], "payload")
    sig = _b64(outer["sig"], "sig")
    if len(sig) != 64:
        raise Malformed(f"envelope: sig must be 64 bytes, got {len(sig)}")
    return Envelope(kid, signed, sig, _payload(_json_object(signed, "payload")), sha256_hex(data))


def verify(env: Envelope, trusted: Mapping[str, PublicKey]) -> None:
    """Raise ``BadSignature`` unless a trusted key made the envelope's signature."""
    key = trusted.get(env.key_id)
    if key is None:
        raise BadSignature(f"signed by key {env.key_id}, which is not among this site's "
                           f"{len(trusted)} trusted key(s)")
    if not key.verify(env.signature, DOMAIN + env.signed_bytes):
        raise BadSignature(f"the signature does not match the content (key {env.key_id})")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates,
                         parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise Malformed(f"{what}: not UTF-8 text") from exc
    except RecursionError as exc:
        raise Malformed(f"{what}: nested too deeply") from exc
    except ValueError as exc:   # json.JSONDecodeError and our hooks
        raise Malformed(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise Malformed(f"{what}: expected a JSON object")
    return doc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one field would let a reader and a signer disagree on what was signed.
    doc: dict[str, Any] = {}
    for k, v in pairs:
        if k in doc:
            raise ValueError(f"field {k!r:.40} appears twice")
        doc[k] = v
    return doc


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise Malformed(f"envelope: {what} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise Malformed(f"envelope: {what} is not valid base64") from exc


def _payload(doc: dict[str, Any]) -> Payload:
    kind = doc.get("kind")
    if kind not in ("config", "command"):
        raise Malformed('payload: kind must be "config" or "command"')
    sites = doc.get("sites")
    if not isinstance(sites, list) or not sites or len(sites) > MAX_SITES or not all(
            isinstance(s, str) and re.fullmatch(SITE_ID_PATTERN, s) for s in sites):
        raise Malformed(f"payload: sites must be a list of 1-{MAX_SITES} site ids")
    times = {}
    for name in ("issued_at", "not_after"):
        t = doc.get(name)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise Malformed(f"payload: {name} must be a time in seconds since 1970 (UTC)")
        times[name] = float(t)
    body = {k: v for k, v in doc.items() if k not in _COMMON_KEYS}
    return Payload(kind, tuple(sites), times["issued_at"], times["not_after"], body)


# -- key files ---------------------------------------------------------------------------------

def load_trusted_keys(directory: str | os.PathLike[str]) -> tuple[dict[str, PublicKey], list[str]]:
    """Every ``*.pub`` Ed25519 key in ``directory`` by key id, and the problems with other files.

    A missing directory means no trusted keys (every push is refused), not an error.
    """
    keys: dict[str, PublicKey] = {}
    problems: list[str] = []
    try:
        paths = sorted(Path(directory).glob("*.pub"))
    except OSError as exc:
        return keys, [f"{directory}: {exc.strerror or exc}"]
    for path in paths:
        try:
            key = load_public_key(path)
        except KeyFileError as exc:
            problems.append(str(exc))
            continue
        keys[key_id(key)] = key
    return keys, problems


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """The Ed25519 key in a PEM ``PUBLIC KEY`` file (what ``fleet keygen`` writes as NAME.pub)."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(
            f"{path}: not a readable PEM public key ({exc.__class__.__name__})") from exc
    match = _PEM_PUBLIC.search(text)
    try:
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True) if match else b""
    except binascii.Error:
        der = b""
    if not der:
        raise KeyFileError(f"{path}: not a readable PEM public key (ValueError)")
    if len(der) != len(_ED25519_SPKI_PREFIX) + libcrypto.ED25519_KEY_BYTES or \
            not der.startswith(_ED25519_SPKI_PREFIX):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return PublicKey(der[len(_ED25519_SPKI_PREFIX):])


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        # The exception text could quote key material: name the class only.
        raise KeyFileError(f"{path}: not a readable, unencrypted PEM private key "
                           f"({exc.__class__.__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def generate_keypair(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path, str]:
    """Write ``NAME.key`` (private, mode 0600) and ``NAME.pub``; returns both paths and the key id.

    Refuses to overwrite an existing key: losing an operator key locks the fleet until a new
    public key is installed at every site.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (key_path, pub_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; choose another --name")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub_path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_path, pub_path, key_id(public_half(private))
