"""Why a connection to the broker failed, as a catalogue code with arguments (issue 17).

The forwarder records the code in ``LinkStatus.last_error_code``; ``status`` and ``doctor`` show
it in the reader's language (texts in ``agent.catalogue.broker``), the journal in English. OS and
OpenSSL errors are mapped by their number or mnemonic, never by their (English) message text.
Each code also says how far the attempt got (``where``), which the reconnect schedule needs:
``path`` (nothing reached the broker's port), ``broker`` (it answered) or ``unknown`` (a timeout).
"""

from __future__ import annotations

import errno
import socket
import ssl

from agent.i18n import Text, text
from agent.oserror import os_error
from agent.publish.reconnect import Failure

# X.509 verification results (OpenSSL's X509_V_ERR_*), as in agent.diagnose.doctor
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10
_X509_UNTRUSTED = frozenset({2, 18, 19, 20, 21, 27})
_X509_HOSTNAME = 62
_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})

# MQTT 5 CONNACK reason codes (paho maps MQTT 3.1.1 return codes onto these)
REFUSALS = {
    0x84: "unsupported_protocol", 0x85: "client_id_not_valid", 0x86: "bad_credentials",
    0x87: "not_authorized", 0x88: "server_unavailable", 0x89: "server_busy", 0x8A: "banned",
    0x8C: "bad_auth_method", 0x95: "packet_too_large", 0x97: "quota_exceeded",
    0x9C: "use_another_server", 0x9D: "server_moved", 0x9F: "rate_exceeded",
}


def classify(exc: BaseException, where: str, host: str) -> tuple[Text, Failure]:
    """The code and how far the attempt got, for an exception from connecting to ``where``."""
    if isinstance(exc, TimeoutError):
        return text("broker.timeout", where=where), "unknown"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _verify(exc, where, host), "broker"
    if isinstance(exc, ssl.SSLError):
        # OpenSSL's mnemonic (e.g. WRONG_VERSION_NUMBER) is language-neutral.
        return text("tls.handshake_failed", where=where,
                    reason=exc.reason or exc.__class__.__name__), "broker"
    if isinstance(exc, ConnectionRefusedError):
        return text("broker.unreachable", where=where), "path"
    if isinstance(exc, socket.gaierror):
        return text("dns.failed", host=host), "path"
    if isinstance(exc, OSError) and exc.errno in _NO_ROUTE:
        return text("broker.no_route", where=where, error=os_error(exc)), "path"
    if isinstance(exc, ConnectionError):   # reset, aborted, broken pipe, closed mid-handshake
        return text("broker.closed", where=where), "broker"
    if isinstance(exc, OSError):
        return text("broker.connect_failed", where=where, error=os_error(exc)), "unknown"
    return text("broker.connect_failed", where=where, error=os_error(exc)), "unknown"


def refused(code: int, where: str) -> Text:
    """The code for a CONNACK refusal (``broker.refused.not_authorized`` ...)."""
    name = REFUSALS.get(code)
    if name is None:
        return text("broker.refused", where=where, code=f"0x{code:02X}")
    return text(f"broker.refused.{name}", where=where)


def tls_files(exc: OSError) -> Text:
    """The TLS files (ca_file, cert_file, key_file) could not be loaded."""
    if isinstance(exc, ssl.SSLError):
        return text("tls.files_bad", reason=exc.reason or exc.__class__.__name__)
    return text("tls.files_unreadable", path=str(exc.filename or "?"), error=os_error(exc))


def _verify(exc: ssl.SSLCertVerificationError, where: str, host: str) -> Text:
    code = exc.verify_code
    if code == _X509_EXPIRED:
        return text("tls.verify_failed.expired", where=where)
    if code == _X509_NOT_YET_VALID:
        return text("tls.verify_failed.not_yet_valid", where=where)
    if code == _X509_HOSTNAME:
        return text("tls.verify_failed.hostname", where=where, host=host)
    if code in _X509_UNTRUSTED:
        return text("tls.verify_failed.untrusted", where=where)
    return text("tls.verify_failed", where=where, verify_code=code)
