"""validate as a teacher: realistic mistakes a field technician makes in agent.toml, each giving
exactly one problem, in plain words with what to do, in Spanish and in English.

Each case edits one line of tests/cases/validate/base.toml (a valid clinic config) and names the
one problem expected, as ``clinic-agent validate`` prints it in each language.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError
from agent.i18n import Messages

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "tests/cases/validate/base.toml").read_text(encoding="utf-8")
LATIN1 = "LATIN1"   # the whole file saved in Latin-1 (Windows Notepad's "ANSI") with an accent


@dataclass(frozen=True)
class Case:
    name: str
    line: str        # in base.toml ...
    replaced: str    # ... replaced by this
    en: str
    es: str

    def write(self, folder: Path) -> Path:
        path = folder / f"{self.name}.toml"
        if self.line == LATIN1:
            path.write_bytes(("# Clínica de salud\n" + BASE).encode("latin-1"))
        else:
            assert self.line in BASE, self.name
            path.write_text(BASE.replace(self.line, self.replaced, 1), encoding="utf-8")
        return path


CASES = [
    Case('latin1',
         LATIN1,
         None,
         'line 1: the file is not saved as UTF-8 ("í" is written in another encoding); save it as UTF-8 (Notepad: Save as, Encoding UTF-8) or retype the accented letters with nano',
         'línea 1: el archivo no está guardado como UTF-8 ("í" está en otra codificación); guárdelo como UTF-8 (Bloc de notas: Guardar como, Codificación UTF-8) o vuelva a escribir los acentos con nano'),
    Case('unquoted_ip',
         'host = "192.168.1.50"',
         'host = 192.168.1.50',
         'line 18: 192.168.1.50 is text and text goes in double quotes: write host = "192.168.1.50"',
         'línea 18: 192.168.1.50 es texto y el texto va entre comillas dobles: escriba host = "192.168.1.50"'),
    Case('unquoted_word',
         'kind = "snmp"',
         'kind = snmp',
         'line 11: snmp is text and text goes in double quotes: write kind = "snmp"',
         'línea 11: snmp es texto y el texto va entre comillas dobles: escriba kind = "snmp"'),
    Case('decimal_comma',
         'timeout_s = 2',
         'timeout_s = 1,5',
         'line 21: 1,5 uses a decimal comma; write decimals with a point: timeout_s = 1.5',
         'línea 21: 1,5 usa coma decimal; escriba los decimales con punto: timeout_s = 1.5'),
    Case('unclosed_quote',
         'name = "ups"',
         'name = "ups',
         'line 16: the quote (") opened for name is never closed; add the closing one at the end: name = "ups"',
         'línea 16: la comilla (") que abre el valor de name nunca se cierra; agregue la de cierre al final: name = "ups"'),
    Case('bool_capital',
         'port = 8883',
         'port = 8883\ntls = True',
         'line 7: True is not a value TOML knows; write true or false in lowercase: tls = true',
         'línea 7: True no es un valor que TOML conozca; escriba true o false en minúsculas: tls = true'),
    Case('ip_out_of_range',
         'host = "192.168.1.50"',
         'host = "192.168.1.300"',
         'devices[1] (ups).host: "192.168.1.300" is not an IP address: each of its four numbers goes from 0 to 255, and 300 is more',
         'devices[1] (ups).host: "192.168.1.300" no es una dirección IP: cada uno de sus cuatro números va de 0 a 255, y 300 es mayor'),
    Case('ip_three_parts',
         'host = "192.168.1.50"',
         'host = "192.168.1"',
         'devices[1] (ups).host: "192.168.1" is not an IP address: it has four numbers separated by dots, e.g. 192.168.1.50',
         'devices[1] (ups).host: "192.168.1" no es una dirección IP: lleva cuatro números separados por puntos, p. ej. 192.168.1.50'),
    Case('baud_extra_zero',
         'baudrate = 9600',
         'baudrate = 96000',
         "devices[2] (meter).baudrate: 96000 is not a standard baud rate; did you mean 9600? (use the speed printed in the device's manual or menu)",
         'devices[2] (meter).baudrate: 96000 no es una velocidad estándar; ¿quiso decir 9600? (use la velocidad que indica el manual o el menú del equipo)'),
    Case('baud_near',
         'baudrate = 9600',
         'baudrate = 9601',
         "devices[2] (meter).baudrate: 9601 is not a standard baud rate; did you mean 9600? (use the speed printed in the device's manual or menu)",
         'devices[2] (meter).baudrate: 9601 no es una velocidad estándar; ¿quiso decir 9600? (use la velocidad que indica el manual o el menú del equipo)'),
    Case('misspelt_key',
         'interval_s = 10',
         'intervall_s = 10',
         'devices[1] (ups).intervall_s: is not a known setting; did you mean interval_s?',
         'devices[1] (ups).intervall_s: no es una opción conocida; ¿quiso decir interval_s?'),
    Case('misspelt_kind',
         'kind = "modbus"\nhost = "192.168.1.50"',
         'kind = "modbuss"\nhost = "192.168.1.50"',
         'devices[1] (ups).kind: expected one of "snmp", "modbus", "host", "wan", got "modbuss"; did you mean "modbus"?',
         'devices[1] (ups).kind: se esperaba uno de "snmp", "modbus", "host", "wan"; dice "modbuss"; ¿quiso decir "modbus"?'),
    Case('quoted_number',
         'port = 8883',
         'port = "8883"',
         'mqtt.port: expected an integer 1-65535, got "8883": write numbers without quotes, port = 8883',
         'mqtt.port: se esperaba un número entero de 1 a 65535; dice "8883": escriba los números sin comillas, port = 8883'),
    Case('missing_site',
         'site_id = "MCSSA001234"\n',
         '',
         'site_id: is required but missing',
         'site_id: es obligatorio y falta'),
    Case('missing_mqtt',
         '[mqtt]\nhost = "broker.example.org"\nport = 8883\nusername = "clinic"\n',
         '',
         'mqtt: is required but missing (add a [mqtt] section)',
         'mqtt: es obligatorio y falta (agregue una sección [mqtt])'),
    Case('tls_yes',
         'port = 8883',
         'port = 8883\ntls = "yes"',
         'mqtt.tls: expected true or false, got "yes": write tls = true (without quotes)',
         'mqtt.tls: se esperaba true o false; dice "yes": escriba tls = true (sin comillas)'),
    Case('parity_word',
         'parity = "N"',
         'parity = "n"',
         'devices[2] (meter).parity: expected one of "N", "E", "O", got "n"; did you mean "N"?',
         'devices[2] (meter).parity: se esperaba uno de "N", "E", "O"; dice "n"; ¿quiso decir "N"?'),
    Case('unit_zero_rtu',
         'unit_id = 2',
         'unit_id = 0',
         'devices[2] (meter).unit_id: expected an integer 1-247, got 0',
         'devices[2] (meter).unit_id: se esperaba un número entero de 1 a 247; dice 0'),
    Case('duplicate_name',
         'name = "meter"',
         'name = "ups"',
         'devices[2] (ups).name: "ups" is already used by devices[1] (ups)',
         'devices[2] (ups).name: "ups" ya lo usa devices[1] (ups)'),
    Case('snmp_version_number',
         'community = "clinic-ro"',
         'community = "clinic-ro"\nversion = 2',
         'devices[0] (router).version: expected one of "1", "2c", "3" (in quotes), got 2: write it in quotes, version = "2c"',
         'devices[0] (router).version: se esperaba uno de "1", "2c", "3" (entre comillas); dice 2: escríbalo entre comillas, version = "2c"'),
    Case('community_public',
         'community = "clinic-ro"',
         'community = "public"',
         'devices[0] (router).community: "public" is the factory default anyone can guess; set a private read-only community on the router and here',
         'devices[0] (router).community: "public" es el valor de fábrica que cualquiera adivina; ponga una comunidad privada de solo lectura en el router y aquí'),
    Case('timeout_over_interval',
         'timeout_s = 2',
         'timeout_s = 20',
         'devices[1] (ups).timeout_s: expected at most interval_s (10), got 20',
         'devices[1] (ups).timeout_s: se esperaba como máximo interval_s (10); dice 20'),
    Case('windows_port',
         'serial_port = "/dev/ttyUSB0"',
         'serial_port = "COM3"',
         'devices[2] (meter).serial_port: expected a serial device path like /dev/ttyUSB0 or /dev/serial/by-id/..., got "COM3"',
         'devices[2] (meter).serial_port: se esperaba la ruta de un puerto serie como /dev/ttyUSB0 o /dev/serial/by-id/...; dice "COM3"'),
    Case('device_singular',
         '[[devices]]\nname = "router"',
         '[[device]]\nname = "router"',
         'device: is not a known setting; did you mean devices?',
         'device: no es una opción conocida; ¿quiso decir devices?'),
    Case('web_address',
         'host = "broker.example.org"',
         'host = "mqtts://broker.example.org:8883"',
         'mqtt.host: "mqtts://broker.example.org:8883" is a web address: write only the host name or IP address, "broker.example.org"',
         'mqtt.host: "mqtts://broker.example.org:8883" es una dirección web: escriba solo el nombre o la dirección IP, "broker.example.org"'),
    Case('host_with_space',
         'host = "broker.example.org"',
         'host = "broker .example.org"',
         'mqtt.host: "broker .example.org" has spaces in it: write it without them, "broker.example.org"',
         'mqtt.host: "broker .example.org" tiene espacios: escríbalo sin ellos, "broker.example.org"'),
    Case('profile_typo',
         'profile = "eastron-sdm120"',
         'profile = "eastron-sdm12"',
         'devices[2] (meter).profile: no profile named "eastron-sdm12"; did you mean "eastron-sdm120"? Available (shipped with the agent): apc-smart-ups, eastron-sdm120, eastron-sdm630, generic-ups, schneider-iem3x50',
         'devices[2] (meter).profile: no hay ningún perfil llamado "eastron-sdm12"; ¿quiso decir "eastron-sdm120"? Disponibles (incluidos con el agente): apc-smart-ups, eastron-sdm120, eastron-sdm630, generic-ups, schneider-iem3x50'),
    Case('key_twice',
         'unit_id = 1',
         'unit_id = 1\nunit_id = 3',
         'line 20: unit_id is written a second time in the same section; keep only one of them',
         'línea 20: unit_id aparece por segunda vez en la misma sección; deje solo una'),
    Case('interval_with_unit',
         'interval_s = 10',
         'interval_s = "10s"',
         'devices[1] (ups).interval_s: expected a number 0.05-86400, got "10s": write the number of seconds alone, interval_s = 10',
         'devices[1] (ups).interval_s: se esperaba un número de 0.05 a 86400; dice "10s": escriba solo el número de segundos, interval_s = 10'),
    Case('section_bracket',
         '[mqtt]',
         '[mqtt',
         'line 4: the section name is not closed with ]; write [mqtt]',
         'línea 4: el nombre de la sección no se cierra con ]; escriba [mqtt]'),
    Case('host_with_port',
         'host = "192.168.1.50"',
         'host = "192.168.1.50:502"',
         'devices[1] (ups).host: "192.168.1.50:502" has a port in it: write only the host here, "192.168.1.50", and the number in port',
         'devices[1] (ups).host: "192.168.1.50:502" lleva un puerto: escriba aquí solo el equipo, "192.168.1.50", y el número en port'),
    Case('tls_off_ca',
         'port = 8883',
         'port = 8883\ntls = false\nca_file = "/etc/clinic-agent/ca.crt"',
         'mqtt.tls: ca_file/cert_file are set but tls = false; set tls = true',
         'mqtt.tls: ca_file/cert_file están puestos pero tls = false; ponga tls = true'),
    Case('transport_typo',
         'transport = "rtu"',
         'transport = "serial"',
         'devices[2] (meter).transport: expected one of "tcp", "rtu", "rtu_over_tcp", got "serial"',
         'devices[2] (meter).transport: se esperaba uno de "tcp", "rtu", "rtu_over_tcp"; dice "serial"'),
]


def test_the_base_config_is_valid_and_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode("utf-8"))   # Notepad's "UTF-8 with BOM"
    cfg = load_config(path)
    assert [d.name for d in cfg.devices] == ["router", "ups", "meter"]


def test_there_are_at_least_28_mistakes():
    assert len(CASES) >= 28 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_mistake_gives_exactly_its_one_problem_in_both_languages(case, tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(case.write(tmp_path))
    problems = caught.value.details
    assert [p.render(Messages("en")) for p in problems] == [case.en]
    assert [p.render(Messages("es")) for p in problems] == [case.es]


@pytest.mark.parametrize("case", [c for c in CASES if c.name in
                                  ("latin1", "decimal_comma", "misspelt_kind", "ip_out_of_range")],
                         ids=lambda c: c.name)
def test_validate_prints_it_in_the_readers_language_and_exits_2(case, tmp_path):
    path = case.write(tmp_path)
    for lang, expected in (("es_MX.UTF-8", case.es), ("C", case.en)):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LANG": lang}
        r = subprocess.run([sys.executable, "-m", "agent", "validate", str(path)],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
        assert r.returncode == 2
        assert r.stderr.splitlines()[1:] == ["  " + expected], r.stderr
        assert "Traceback" not in r.stderr
