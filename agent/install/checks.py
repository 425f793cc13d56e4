"""Each installation setting checked on its own, before anything on the PC is changed.

Every check returns the cleaned value or raises ``SettingError`` with a ``Text`` that says what is
wrong and what to do, in the technician's words. Only the standard library is used (the checks
run before the agent's virtualenv exists); an error never quotes a password or a key.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
import ssl
import time
import zoneinfo
from pathlib import Path

from agent.config import SITE_ID_PATTERN
from agent.config.fields import host_problem, show
from agent.errors import AgentError
from agent.i18n import Text, text
from agent.oserror import os_error

MAX_FILE_BYTES = 1024 * 1024
MAX_PASSWORD_BYTES = 4096
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); 32 bytes of key follow.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


class SettingError(AgentError):
    """A setting given to the installer (``option``) is not usable; ``message`` says why."""

    def __init__(self, option: str, message: Text) -> None:
        self.option = option
        self.message = message
        super().__init__(f"{option}: {message}")


def site_id(value: str) -> str:
    """The clinic's CLUES code, as the config's ``site_id`` accepts it."""
    value = value.strip()
    if not re.fullmatch(SITE_ID_PATTERN, value):
        raise SettingError("--site-id", text("inst.bad.site_id", got=show(value),
                                             what=text("cfg.what.site_id")))
    return value


def broker(value: str, *, default_port: int = 8883) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPv6]:PORT`` as (host, port)."""
    value = value.strip()
    if "://" in value:
        why = host_problem(value)
        if why is not None:
            raise SettingError("--broker", text(why[0], got=show(value), **why[1]))
    host, port_text = value, ""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise SettingError("--broker", text("inst.bad.broker", got=show(value)))
        port_text = rest[1:]
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    if (port_text or value.endswith(":")) and (
        not port_text.isdigit() or not 1 <= int(port_text) <= 65535
    ):
        raise SettingError("--broker", text("inst.bad.port", got=show(port_text)))
    if not host:
        raise SettingError("--broker", text("inst.bad.broker", got=show(value)))
    why = host_problem(host)
    if why is not None:
        raise SettingError("--broker", text(why[0], got=show(host), **why[1]))
    return host, int(port_text) if port_text else default_port


def _read(option: str, path: Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    try:
        if path.is_dir():
            raise SettingError(option, text("inst.bad.is_dir", path=str(path)))
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise SettingError(option, text("inst.bad.unreadable", path=str(path),
                                        error=os_error(exc))) from None
    if len(data) > limit:
        raise SettingError(option, text("inst.bad.too_big", path=str(path), limit=limit))
    return data


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(label, DER) of each PEM block; a block whose base64 is damaged gives b""."""
    blocks = []
    for label, body in _PEM_BLOCK.findall(data.decode("ascii", "replace")):
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            der = b""
        blocks.append((label, der))
    return blocks


def ca_file(value: str) -> Path:
    """The CA that signed the broker's certificate: a readable, current PEM certificate."""
    path = Path(value).expanduser().absolute()
    data = _read("--ca-file", path)
    labels = [label for label, _ in _pem_blocks(data)]
    if any("PRIVATE KEY" in label for label in labels):
        raise SettingError("--ca-file", text("inst.bad.ca_is_key", path=str(path)))
    if "CERTIFICATE" not in labels:
        msg = "inst.bad.ca_der" if data[:1] == b"\x30" else "inst.bad.ca_not_pem"
        raise SettingError("--ca-file", text(msg, path=str(path)))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cafile=str(path))
    except ssl.SSLError as exc:
        raise SettingError("--ca-file", text("inst.bad.ca_damaged", path=str(path),
                                             error=exc.reason or exc.__class__.__name__)) from None
    for cert in ctx.get_ca_certs():
        not_after = cert.get("notAfter")
        if isinstance(not_after, str) and ssl.cert_time_to_seconds(not_after) < time.time():
            raise SettingError("--ca-file", text("inst.bad.ca_expired", path=str(path),
                                                 until=not_after))
    return path


def client_cert(value: str) -> Path:
    """The clinic's client certificate: a PEM certificate."""
    path = Path(value).expanduser().absolute()
    if "CERTIFICATE" not in [label for label, _ in _pem_blocks(_read("--client-cert", path))]:
        raise SettingError("--client-cert", text("inst.bad.cert_not_pem", path=str(path)))
    return path


def client_pair(cert: str, key: str) -> tuple[Path, Path]:
    """The clinic's client certificate and its (unencrypted) private key, which must match."""
    cert_path = client_cert(cert)
    key_path = Path(key).expanduser().absolute()
    key_labels = [label for label, _ in _pem_blocks(_read("--client-key", key_path))]
    if "ENCRYPTED PRIVATE KEY" in key_labels:
        raise SettingError("--client-key", text("inst.bad.key_encrypted", path=str(key_path)))
    if not any(label.endswith("PRIVATE KEY") for label in key_labels):
        raise SettingError("--client-key", text("inst.bad.key_not_pem", path=str(key_path)))

    def no_passphrase() -> str:
        raise SettingError("--client-key", text("inst.bad.key_encrypted", path=str(key_path)))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_cert_chain(str(cert_path), str(key_path), password=no_passphrase)
    except ssl.SSLError:
        raise SettingError("--client-key", text("inst.bad.pair_mismatch", cert=str(cert_path),
                                                key=str(key_path))) from None
    return cert_path, key_path


def mqtt_user(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 256 or any(c.isspace() or ord(c) < 32 for c in value):
        raise SettingError("--mqtt-user", text("inst.bad.user", got=show(value)))
    return value


def password(value: str, *, option: str = "--mqtt-password-file") -> str:
    """A password as typed or read: one line, not empty; the error never quotes it."""
    if value.endswith("\n"):
        value = value[:-1].removesuffix("\r")
    if not value:
        raise SettingError(option, text("inst.bad.password_empty"))
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise SettingError(option, text("inst.bad.password_control"))
    return value


def password_file(value: str) -> str:
    path = Path(value).expanduser().absolute()
    raw = _read("--mqtt-password-file", path, limit=MAX_PASSWORD_BYTES)
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingError("--mqtt-password-file",
                           text("inst.bad.password_encoding", path=str(path))) from None
    return password(decoded)


def trusted_keys(value: str) -> list[Path]:
    """The operators' public keys (``*.pub``, Ed25519 PEM) in a directory; no private key there."""
    directory = Path(value).expanduser().absolute()
    if not directory.is_dir():
        raise SettingError("--trusted-keys", text("inst.bad.not_dir", path=str(directory)))
    try:
        entries = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as exc:
        raise SettingError("--trusted-keys", text("inst.bad.unreadable", path=str(directory),
                                                  error=os_error(exc))) from None
    keys = []
    for path in entries:
        blocks = _pem_blocks(_read("--trusted-keys", path))
        if any("PRIVATE KEY" in label for label, _ in blocks):
            # A private key must never leave the central team; refuse the whole directory.
            raise SettingError("--trusted-keys", text("inst.bad.private_key", path=str(path)))
        if path.suffix != ".pub":
            continue
        ders = [der for label, der in blocks if label == "PUBLIC KEY"]
        if len(ders) != 1 or len(ders[0]) != 44 or not ders[0].startswith(_ED25519_SPKI_PREFIX):
            raise SettingError("--trusted-keys", text("inst.bad.not_ed25519", path=str(path)))
        keys.append(path)
    if not keys:
        raise SettingError("--trusted-keys", text("inst.bad.no_keys", path=str(directory)))
    return keys


def timezone(value: str) -> str:
    """An IANA time zone this PC knows, e.g. America/Mexico_City."""
    value = value.strip()
    try:
        zoneinfo.ZoneInfo(value)
        if value and not value.startswith("/"):
            return value
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = sorted(zoneinfo.available_timezones())
    folded = {z.casefold(): z for z in known}
    near = folded.get(value.casefold().replace(" ", "_")) or next(
        iter(difflib.get_close_matches(value, known, n=1, cutoff=0.6)), None)
    if near:
        raise SettingError("--timezone", text("inst.bad.timezone_near", got=show(value),
                                              near=near))
    raise SettingError("--timezone", text("inst.bad.timezone", got=show(value)))
