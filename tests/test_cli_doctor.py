"""``clinic-agent doctor`` finds the broken link and says, in the technician's language, what to
check: a broker certificate signed by another CA or expired, a wrong password, a dead device,
a broker that is down, a broken config. Every peer is on 127.0.0.1: Mosquitto with a TLS
listener (certificates made here with ``cryptography``) or a password file, the pymodbus server.
"""

from __future__ import annotations

import datetime as dt
import getpass
import subprocess
from pathlib import Path

import pytest

from cli_support import SPANISH, agent_config, run_cli, wait_for_agent
from fixtures.mosquitto import Broker
from helpers import free_port, require_binary
from pki import NOW, Pki, make_ca, make_pki

# -- brokers -------------------------------------------------------------------------------------

class ConfiguredBroker(Broker):
    """Mosquitto with a listener configured by the test (TLS files, a password file)."""

    def __init__(self, workdir: Path, listener: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(require_binary("mosquitto"), workdir)
        self.conf.write_text(f"listener {self.port} 127.0.0.1\n{listener}"
                             f"user {getpass.getuser()}\n"
                             f"log_dest file {workdir / 'mosquitto.log'}\n")


@pytest.fixture
def brokers():
    started: list[Broker] = []

    def start(workdir: Path, listener: str) -> Broker:
        b = ConfiguredBroker(workdir, listener)
        b.start()
        started.append(b)
        return b
    yield start
    for b in started:
        b.stop()


def tls_broker(brokers, workdir: Path, pki: Pki) -> Broker:
    return brokers(workdir, f"cafile {pki.ca}\ncertfile {pki.cert}\nkeyfile {pki.key}\n"
                            "allow_anonymous true\n")


def config_file(tmp_path: Path, port: int, *, tls: bool = False, ca_file: Path | None = None,
                username: str | None = None, password: str | None = None, devices: str = "") -> Path:
    mqtt = f'tls = {"true" if tls else "false"}\n'
    if ca_file:
        mqtt += f'ca_file = "{ca_file}"\n'
    if username:
        mqtt += f'username = "{username}"\n'
    secrets = ""
    if password is not None:
        (tmp_path / "secrets.toml").write_text(f'[mqtt]\npassword = "{password}"\n')
        secrets = f'secrets_file = "{tmp_path / "secrets.toml"}"\n'
    text = agent_config(tmp_path / "state", port, devices, extra=secrets)
    text = text.replace("tls = false\n", mqtt)
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def step(doc: dict, name: str) -> dict:
    [found] = [c for c in doc["checks"] if c["step"] == name]
    return found


# -- TLS -----------------------------------------------------------------------------------------

def test_a_certificate_from_another_ca_is_named_with_what_to_fetch(brokers, tmp_path):
    pki = make_pki(tmp_path / "pki")
    broker = tls_broker(brokers, tmp_path / "broker", pki)
    _, _, other_ca = make_ca(tmp_path, "someone-elses-ca")
    config = config_file(tmp_path, broker.port, tls=True, ca_file=other_ca)

    r = run_cli("doctor", "-c", config)
    assert r.code == 1, r
    assert "[FAIL]" in r.out and "certificate is not trusted" in r.out
    assert f"the CA in mqtt.ca_file ({other_ca}) did not sign the broker's certificate" in r.out
    assert "MQTT" in r.out and "not tried: TLS failed above" in r.out
    for ok in ("config", "clock", "DNS", "TCP"):
        assert any(line.lstrip().startswith("[OK]") and ok in line for line in r.out.splitlines()), ok

    doc = run_cli("doctor", "-c", config, "--json").json
    assert step(doc, "tls")["status"] == "fail" and step(doc, "tls")["hint_id"] == "hint.cert_untrusted"
    assert step(doc, "mqtt")["status"] == "skip"

    es = run_cli("doctor", "-c", config, lang=SPANISH)
    assert es.code == 1
    assert "no es de confianza" in es.out and "Qué revisar:" in es.out
    assert "pida el ca.crt correcto al equipo central" in es.out


def test_an_expired_certificate_says_when_and_who_renews_it(brokers, tmp_path):
    pki = make_pki(tmp_path / "pki", not_after=NOW - dt.timedelta(days=3))
    broker = tls_broker(brokers, tmp_path / "broker", pki)
    config = config_file(tmp_path, broker.port, tls=True, ca_file=pki.ca)
    r = run_cli("doctor", "-c", config)
    assert r.code == 1, r
    assert "the broker's certificate expired on " + (NOW - dt.timedelta(days=3)).strftime("%Y-%m-%d") in r.out
    assert "the central team must renew the broker's certificate" in r.out
    es = run_cli("doctor", "-c", config, lang=SPANISH)
    assert "venció el" in es.out and "renovar el certificado" in es.out


def test_a_good_tls_broker_passes_with_the_expiry_date_and_login(brokers, tmp_path):
    pki = make_pki(tmp_path / "pki", not_after=NOW + dt.timedelta(days=10))
    broker = tls_broker(brokers, tmp_path / "broker", pki)
    config = config_file(tmp_path, broker.port, tls=True, ca_file=pki.ca)
    doc = run_cli("doctor", "-c", config, "--json").json
    assert step(doc, "tls")["status"] == "ok"
    assert step(doc, "cert")["status"] == "warn" and "day(s) left" in step(doc, "cert")["message"], \
        "a certificate about to expire is a warning"
    assert step(doc, "mqtt")["status"] == "ok"
    assert doc["ok"] is True and step(doc, "device")["status"] == "ok"


def test_a_plain_port_where_tls_is_expected(broker, tmp_path):
    config = config_file(tmp_path, broker.port, tls=True)
    r = run_cli("doctor", "-c", config)
    assert r.code == 1 and "does not speak TLS" in r.out and "8883" in r.out, r


# -- MQTT login -------------------------------------------------------------------------------

@pytest.fixture
def password_broker(brokers, tmp_path):
    pwfile = tmp_path / "passwd"
    subprocess.run([require_binary("mosquitto_passwd"), "-c", "-b", str(pwfile), "TEST001",
                    "right-password"], check=True, capture_output=True)
    pwfile.chmod(0o600)
    return brokers(tmp_path / "pw-broker", f"allow_anonymous false\npassword_file {pwfile}\n")


def test_a_wrong_password_points_at_the_secrets_file(password_broker, tmp_path):
    config = config_file(tmp_path, password_broker.port, username="TEST001", password="wrong-one")
    r = run_cli("doctor", "-c", config)
    assert r.code == 1, r
    assert "the broker refused the login of user TEST001" in r.out
    assert "check mqtt.username and the password in the secrets file" in r.out
    assert "wrong-one" not in r.out + r.err, "secrets are never printed"
    es = run_cli("doctor", "-c", config, lang=SPANISH)
    assert "rechazó el inicio de sesión del usuario TEST001" in es.out
    assert "la contraseña del archivo de secretos" in es.out

    config = config_file(tmp_path, password_broker.port, username="TEST001", password="right-password")
    doc = run_cli("doctor", "-c", config, "--json").json
    assert step(doc, "mqtt")["status"] == "ok" and "TEST001" in step(doc, "mqtt")["message"]


def test_a_broker_that_is_down_is_a_tcp_failure_with_its_hint(tmp_path):
    config = config_file(tmp_path, free_port())
    r = run_cli("doctor", "-c", config)
    assert r.code == 1 and "refused the connection" in r.out and "mqtt.port" in r.out, r


# -- devices ---------------------------------------------------------------------------------

def test_dead_devices_get_the_hint_for_their_failure(broker, modbus_server_factory, tmp_path):
    silent = modbus_server_factory()
    silent.silent = True
    devices = f"""
[[devices]]
name = "ups"
kind = "modbus"
host = "127.0.0.1"
port = {silent.port}
unit_id = 1
interval_s = 2
timeout_s = 0.5
  [[devices.registers]]
  name = "input.voltage"
  table = "input"
  address = 0
  type = "uint16"

[[devices]]
name = "meter"
kind = "modbus"
host = "127.0.0.1"
port = {free_port()}
unit_id = 2
interval_s = 2
timeout_s = 0.5
  [[devices.registers]]
  name = "voltage"
  table = "input"
  address = 0
  type = "float32"
"""
    config = config_file(tmp_path, broker.port, devices=devices)
    r = run_cli("doctor", "-c", config)
    assert r.code == 1, r
    lines = r.out.splitlines()
    ups = next(i for i, line in enumerate(lines) if "ups (modbus): timeout" in line)
    assert "RS-485 wiring" in lines[ups + 1] and "unit id" in lines[ups + 1]
    meter = next(i for i, line in enumerate(lines) if "meter (modbus): refused" in line)
    assert "nothing listens at the gateway's address and port" in lines[meter + 1]
    assert any("[OK]" in line and "pc (host) answers" in line for line in lines)
    assert "not running" in r.out, "the agent is not running: devices were polled directly"
    es = run_cli("doctor", "-c", config, lang=SPANISH)
    assert "cableado RS-485" in es.out and "nada escucha en la dirección y puerto del gateway" in es.out


def test_doctor_asks_the_running_agent_to_poll(broker, modbus_server, agent_process, tmp_path):
    agent = agent_process(agent_config(tmp_path / "state", broker.port, modbus_server.devices_toml()))
    wait_for_agent(agent.config)
    r = run_cli("doctor", "-c", agent.config)
    assert r.code == 0, r
    assert "running (pid" in r.out and "ups (modbus) answers" in r.out
    assert modbus_server.connections == 1, "the gateway only ever saw the agent"


def test_a_broken_config_is_listed_and_the_rest_still_checked(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('site_id = "x"\n[mqtt]\nport = "1883a"\n')
    r = run_cli("doctor", "-c", config)
    assert r.code == 1, r
    assert "mqtt.port: expected an integer" in r.out and "clinic-agent validate" in r.out
    assert "clock" in r.out and "need a valid config" in r.out


def test_a_config_with_problems_still_gets_its_broker_and_good_devices_checked(broker, tmp_path):
    """No dead end: one bad device and a bad key do not stop doctor checking the broker and the
    devices that are fine; and doctor never sends the technician to doctor."""
    config = tmp_path / "agent.toml"
    config.write_text(agent_config(tmp_path / "state", broker.port, '''
[[devices]]
name = "ups"
kind = "modbus"
host = "192.168.1.300"
profile = "generic-ups"
''', extra="status_intervall_s = 1"))
    for lang, words in ((None, ("left out until fixed: ups", "did you mean status_interval_s?",
                                "connected to 127.0.0.1", "pc (host) answers")),
                        (SPANISH, ("queda fuera hasta corregirlo: ups", "¿quiso decir status_interval_s?",
                                   "conectado a 127.0.0.1", "pc (host) responde"))):
        r = run_cli("doctor", "-c", config, **({"lang": lang} if lang else {}))
        assert r.code == 1, r
        assert '"192.168.1.300" is not an IP address' in r.out or "no es una dirección IP" in r.out
        for w in words:
            assert w in r.out, (w, r)
        assert "clinic-agent doctor" not in r.out.replace("clinic-agent doctor:", ""), r
