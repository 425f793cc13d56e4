"""The agent publishes over TLS with CA verification, a client certificate and a password, as a
clinic does; a broker it cannot verify gets nothing, and the readings wait in the buffer."""

from __future__ import annotations

import getpass
import subprocess

import pytest

from consumer import latest, readings_from
from fixtures.mosquitto import Broker, Recorder
from helpers import free_port, require_binary, wait_until
from pki import make_ca, make_client_cert, make_pki
from test_pipeline import committed_seqs, seqs


@pytest.fixture
def tls_broker(tmp_path):
    """Mosquitto with a plain listener for the test's subscriber and a TLS listener for the agent
    that requires a client certificate signed by the test CA and a user name and password."""
    pki = make_pki(tmp_path / "pki")
    passwd = tmp_path / "passwd"
    subprocess.run([require_binary("mosquitto_passwd"), "-c", "-b", str(passwd), "DFSSA001234",
                    "s3cret-clinic"], check=True, capture_output=True)
    broker = Broker(require_binary("mosquitto"), tmp_path)
    broker.tls_port = free_port()
    broker.conf.write_text(
        f"per_listener_settings true\n"
        f"listener {broker.port} 127.0.0.1\nallow_anonymous true\n"
        f"listener {broker.tls_port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
        f"cafile {pki.ca}\ncertfile {pki.cert}\nkeyfile {pki.key}\nrequire_certificate true\n"
        f"user {getpass.getuser()}\nlog_dest file {tmp_path / 'mosquitto.log'}\n")
    broker.start()
    broker.pki = pki
    yield broker
    broker.stop()


def tls_config(state, broker, *, ca_file, cert, key, protocol: str = "3.1.1") -> str:
    return f"""
site_id = "DFSSA001234"
state_dir = "{state}"
[mqtt]
host = "127.0.0.1"
port = {broker.tls_port}
tls = true
ca_file = "{ca_file}"
cert_file = "{cert}"
key_file = "{key}"
username = "DFSSA001234"
password = "s3cret-clinic"
protocol = "{protocol}"
reconnect_max_s = 1
[[devices]]
name = "pc"
kind = "host"
interval_s = 0.3
"""


def test_readings_arrive_over_tls_with_client_certificate_and_password(tls_broker, agent_process, tmp_path):
    recorder = Recorder(tls_broker.port).start()
    try:
        cert, key = make_client_cert(tmp_path / "pki", tls_broker.pki.ca_key, tls_broker.pki.ca_cert,
                                     "DFSSA001234")
        agent = agent_process(tls_config(tmp_path / "state", tls_broker, ca_file=tls_broker.pki.ca,
                                         cert=cert, key=key))
        wait_until(lambda: latest(readings_from(recorder.snapshot()), "pc", "poll.status"),
                   timeout=20, what="readings over TLS")
        assert "s3cret-clinic" not in agent.log()
    finally:
        recorder.stop()


def test_a_broker_the_agent_cannot_verify_gets_nothing_and_readings_wait(tls_broker, agent_process,
                                                                        tmp_path):
    recorder = Recorder(tls_broker.port).start()
    try:
        cert, key = make_client_cert(tmp_path / "pki", tls_broker.pki.ca_key, tls_broker.pki.ca_cert,
                                     "DFSSA001234")
        _, _, other_ca = make_ca(tmp_path / "pki", "someone-else")
        state = tmp_path / "state"
        agent = agent_process(tls_config(state, tls_broker, ca_file=other_ca, cert=cert, key=key,
                                         protocol="5"))
        wait_until(lambda: "could not be verified" in agent.log(), timeout=20,
                   what="the agent to refuse the broker's certificate")
        wait_until(lambda: committed_seqs(state) > 20, timeout=20, what="readings kept in the buffer")
        assert not seqs(recorder), "nothing reached a broker whose certificate did not verify"
    finally:
        recorder.stop()
