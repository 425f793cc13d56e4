"""Why a connection failed, as the code a technician reads in their language: OS and OpenSSL
errors are mapped by number and mnemonic, never shown as Python's English strings; and how far
the attempt got, which decides whether the reconnect probe may end the wait."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from agent.i18n import MESSAGES, Messages
from agent.publish.connect_errors import REFUSALS, classify, refused, tls_files

WHERE = "broker.example.org:8883"
ES = Messages("es")


def _verify_error(code: int) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = code
    exc.verify_message = "some OpenSSL English"
    return exc


@pytest.mark.parametrize("exc, code, where", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "broker.unreachable",
     "path"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "dns.failed", "path"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "broker.no_route", "path"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "broker.no_route", "path"),
    (TimeoutError(), "broker.timeout", "unknown"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "broker.closed", "broker"),
    (OSError(errno.EMFILE, "Too many open files"), "broker.connect_failed", "unknown"),
    (_verify_error(20), "tls.verify_failed.untrusted", "broker"),
    (_verify_error(10), "tls.verify_failed.expired", "broker"),
    (_verify_error(9), "tls.verify_failed.not_yet_valid", "broker"),
    (_verify_error(62), "tls.verify_failed.hostname", "broker"),
    (_verify_error(7), "tls.verify_failed", "broker"),
])
def test_each_failure_has_a_code_and_says_how_far_it_got(exc, code, where):
    text, got_where = classify(exc, WHERE, "broker.example.org")
    assert (text.id, got_where) == (code, where)
    assert text.id in MESSAGES
    shown = text.render(ES)
    assert "refused" not in shown and "Errno" not in shown and "OpenSSL English" not in shown


def test_os_errors_are_nested_codes_not_the_c_librarys_english():
    text, _ = classify(OSError(errno.EHOSTUNREACH, "No route to host"), WHERE, "h")
    assert text.to_doc()["args"]["error"] == {"code": "os.EHOSTUNREACH", "args": {}}
    assert "No route to host" not in text.render(ES)
    assert "no hay ruta hacia el equipo" in text.render(ES)


def test_every_connack_refusal_has_its_own_words_in_both_languages():
    for code in REFUSALS:
        text = refused(code, WHERE)
        assert text.id in MESSAGES and WHERE in text.render(ES)
    assert refused(0x87, WHERE).id == "broker.refused.not_authorized"
    other = refused(0xA2, WHERE)
    assert other.id == "broker.refused" and other.args["code"] == "0xA2"


def test_tls_files_name_the_file():
    text = tls_files(FileNotFoundError(errno.ENOENT, "No such file or directory", "/etc/ca.crt"))
    assert text.id == "tls.files_unreadable"
    assert text.to_doc()["args"] == {"path": "/etc/ca.crt",
                                     "error": {"code": "os.ENOENT", "args": {}}}
