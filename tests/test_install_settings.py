"""The installer's settings on their own: each check says what is wrong in the technician's words,
the questions on a terminal ask again until an answer is usable, a new agent.toml validates, and an
edited one changes only the keys given. (tests/test_install.py runs install.sh itself.)"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.config import merge_secrets, parse_config
from agent.config.secret import Secret
from agent.i18n import Messages
from agent.install import checks
from agent.install.checks import SettingError
from agent.install.gather import Prompt, ask
from agent.install.settings import SiteSettings
from agent.install.toml_edit import EditError, set_keys
from agent.install.write import Target, new_config
from agent.remote.envelope import generate_keypair
from pki import make_client_cert, make_pki

ES, EN = Messages("es"), Messages("en")


def refusal(fn, *args) -> SettingError:
    with pytest.raises(SettingError) as info:
        fn(*args)
    return info.value


# -- each setting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ("mqtt.example.org", ("mqtt.example.org", 8883)),
    ("mqtt.example.org:1883", ("mqtt.example.org", 1883)),
    (" 10.0.0.5:8883 ", ("10.0.0.5", 8883)),
    ("[::1]:8884", ("::1", 8884)),
    ("::1", ("::1", 8883)),
])
def test_a_broker_address_with_or_without_its_port(given, expected):
    assert checks.broker(given) == expected


@pytest.mark.parametrize("given, msg_id", [
    ("192.168.1.300", "cfg.ip_range"),
    ("mqtts://mqtt.example.org:8883", "cfg.host_scheme"),
    ("mqtt.example.org:0", "inst.bad.port"),
    ("mqtt.example.org:88a3", "inst.bad.port"),
    ("mqtt example.org", "cfg.host_spaces"),
    (":8883", "inst.bad.broker"),
])
def test_a_wrong_broker_address_is_explained(given, msg_id):
    assert refusal(checks.broker, given).message.id == msg_id


def test_a_site_id_follows_the_configs_pattern():
    assert checks.site_id(" DFSSA001234 ") == "DFSSA001234"
    exc = refusal(checks.site_id, "DF SSA")
    assert ES.render(exc.message).startswith('"DF SSA" no es un id de sitio')


def test_a_time_zone_must_exist_and_a_near_miss_is_named():
    assert checks.timezone("America/Mexico_City") == "America/Mexico_City"
    assert EN.render(refusal(checks.timezone, "america/mexico city").message) == \
        '"america/mexico city" is not a time zone; did you mean America/Mexico_City?'
    assert refusal(checks.timezone, "Mars/Olympus").message.id == "inst.bad.timezone"
    assert refusal(checks.timezone, "../../etc/passwd").message.id in (
        "inst.bad.timezone", "inst.bad.timezone_near")


def test_the_ca_file_must_be_a_current_pem_certificate(tmp_path):
    pki = make_pki(tmp_path)
    assert checks.ca_file(str(pki.ca)) == pki.ca
    der = tmp_path / "ca.der"
    der.write_bytes(pki.ca_cert.public_bytes(serialization.Encoding.DER))
    assert refusal(checks.ca_file, str(der)).message.id == "inst.bad.ca_der"
    assert refusal(checks.ca_file, str(pki.key)).message.id == "inst.bad.ca_is_key"
    assert refusal(checks.ca_file, str(tmp_path / "nope.crt")).message.id == "inst.bad.unreadable"
    assert refusal(checks.ca_file, str(tmp_path)).message.id == "inst.bad.is_dir"
    damaged = tmp_path / "damaged.crt"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert refusal(checks.ca_file, str(damaged)).message.id == "inst.bad.ca_damaged"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old-ca")])
    now = dt.datetime.now(dt.timezone.utc)
    old = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(1)
           .not_valid_before(now - dt.timedelta(days=800)).not_valid_after(now - dt.timedelta(days=1))
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .sign(key, hashes.SHA256()))
    expired = tmp_path / "expired.crt"
    expired.write_bytes(old.public_bytes(serialization.Encoding.PEM))
    assert refusal(checks.ca_file, str(expired)).message.id == "inst.bad.ca_expired"


def test_the_client_certificate_and_its_key_must_be_a_pair_without_passphrase(tmp_path):
    pki = make_pki(tmp_path)
    cert, key = make_client_cert(tmp_path, pki.ca_key, pki.ca_cert, "clinic")
    assert checks.client_pair(str(cert), str(key)) == (cert, key)
    _, other_key = make_client_cert(tmp_path, pki.ca_key, pki.ca_cert, "other")
    assert refusal(checks.client_pair, str(cert), str(other_key)).message.id == "inst.bad.pair_mismatch"
    locked = tmp_path / "locked.key"
    pem = serialization.load_pem_private_key(key.read_bytes(), None)
    locked.write_bytes(pem.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"passphrase")))
    assert refusal(checks.client_pair, str(cert), str(locked)).message.id == "inst.bad.key_encrypted"
    assert refusal(checks.client_pair, str(key), str(key)).message.id == "inst.bad.cert_not_pem"


def test_trusted_keys_are_ed25519_public_keys_and_no_private_key_may_come_along(tmp_path):
    keys = tmp_path / "keys"
    priv, pub, _ = generate_keypair(keys, "ops")
    with pytest.raises(SettingError) as info:
        checks.trusted_keys(str(keys))        # keygen's folder, private key included
    assert info.value.message.id == "inst.bad.private_key" and "ops.key" in EN.render(info.value.message)
    priv.unlink()
    assert checks.trusted_keys(str(keys)) == [pub]
    ec_pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (keys / "ec.pub").write_bytes(ec_pub)
    assert refusal(checks.trusted_keys, str(keys)).message.id == "inst.bad.not_ed25519"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert refusal(checks.trusted_keys, str(empty)).message.id == "inst.bad.no_keys"
    assert refusal(checks.trusted_keys, str(tmp_path / "none")).message.id == "inst.bad.not_dir"


def test_a_password_file_holds_one_line_and_errors_never_quote_it(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("Clave-Secreta\r\n")
    assert checks.password_file(str(pw)) == "Clave-Secreta"
    pw.write_text("Clave-Secreta\nsecond line\n")
    exc = refusal(checks.password_file, str(pw))
    assert exc.message.id == "inst.bad.password_control" and "Clave" not in ES.render(exc.message)
    pw.write_text("\n")
    assert refusal(checks.password_file, str(pw)).message.id == "inst.bad.password_empty"


# -- questions on a terminal ----------------------------------------------------------------------

class Terminal:
    """Scripted answers; what was shown is kept to check that no password ever is."""

    def __init__(self, answers: list[str], secrets: list[str]) -> None:
        self.answers, self.secrets, self.shown = answers, secrets, []

    def read(self, question: str) -> str:
        self.shown.append(question)
        return self.answers.pop(0)

    def read_secret(self, question: str) -> str:
        self.shown.append(question)
        return self.secrets.pop(0)

    def prompt(self) -> Prompt:
        return Prompt(ES, read=self.read, read_secret=self.read_secret, write=self.shown.append)


def test_each_missing_setting_is_asked_again_until_it_is_usable(tmp_path):
    pki = make_pki(tmp_path)
    term = Terminal(["DF SSA", "DFSSA001234", "mqtt.example.org:99999", "mqtt.example.org",
                     str(tmp_path / "missing.crt"), str(pki.ca), "5", "1", "DFSSA001234", "",
                     "america/mexico_city", ""],
                    ["one", "two", "pw-7", "pw-7"])
    got = ask(SiteSettings(), term.prompt(), current_timezone="America/Mexico_City")
    assert (got.site_id, got.broker_host, got.broker_port) == ("DFSSA001234", "mqtt.example.org", 8883)
    assert got.ca_file == str(pki.ca) and got.mqtt_user == "DFSSA001234"
    assert got.password == Secret("pw-7") and got.trusted_keys is None
    assert got.timezone == "America/Mexico_City"     # Enter kept the PC's zone
    shown = "\n".join(term.shown)
    assert "¿quiso decir America/Mexico_City?" in shown
    assert "las dos contraseñas no coinciden" in shown
    assert "responda con una de estas: 1, 2, 3, 4" in shown
    assert "pw-7" not in shown and "one" not in shown.split()
    assert term.answers == [] and term.secrets == []


def test_a_closed_input_stops_the_questions():
    term = Terminal([], [])
    term.read = lambda q: (_ for _ in ()).throw(EOFError())     # type: ignore[method-assign]
    with pytest.raises(SettingError) as info:
        ask(SiteSettings(), term.prompt(), current_timezone=None)
    assert info.value.message.id == "inst.ask.closed"


# -- the files written ----------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["es", "en"])
def test_a_new_config_validates_and_its_comments_speak_the_technicians_language(lang):
    s = SiteSettings(site_id="DFSSA001234", broker_host="mqtt.example.org", broker_port=8883,
                     mqtt_user="DFSSA001234", password=Secret("x"), language=lang)
    files = {"ca_file": "/etc/clinic-agent/ca.crt", "trusted_keys_dir": "/etc/clinic-agent/trusted-keys"}
    text = new_config(s, Target(Path("/"), "/etc/clinic-agent", "clinic-agent"), files, Messages(lang))
    data = merge_secrets(tomllib.loads(text), {"mqtt": {"password": "x"}}, source="secrets")
    cfg = parse_config(data)
    assert (cfg.site_id, cfg.language, cfg.mqtt.ca_file) == ("DFSSA001234", lang, "/etc/clinic-agent/ca.crt")
    assert [d.name for d in cfg.devices] == ["pc"]
    word = {"es": "# La clave CLUES de la clínica", "en": "# The clinic's CLUES code"}[lang]
    assert word in text


EDITED = """# the technician's own notes
site_id = "OLD"   # first clinic
[mqtt]
host = "old.example.org"
# username = "someone"
keepalive_s = 30

# devices follow
[[devices]]
name = "pc"
kind = "host"
"""


def test_editing_keeps_comments_and_takes_over_a_commented_out_key():
    out = set_keys(EDITED, {("", "site_id"): "DFSSA001234", ("mqtt", "host"): "new.example.org",
                            ("mqtt", "username"): "DFSSA001234", ("mqtt", "port"): 8884,
                            ("remote", "trusted_keys_dir"): "/etc/clinic-agent/trusted-keys"})
    assert out.splitlines()[:8] == [
        "# the technician's own notes", 'site_id = "DFSSA001234"', "[mqtt]",
        'host = "new.example.org"', 'username = "DFSSA001234"', "keepalive_s = 30",
        "port = 8884", ""]
    assert "# devices follow" in out and out.endswith('[remote]\ntrusted_keys_dir = "/etc/clinic-agent/trusted-keys"\n')


def test_a_key_that_cannot_be_edited_safely_leaves_the_file_alone():
    inline = 'site_id = "X"\nmqtt = { host = "old" }\n'
    with pytest.raises(EditError) as info:
        set_keys(inline, {("mqtt", "host"): "new"})
    assert info.value.keys == ["mqtt.host"]
