"""Installing on a clinic PC: the offline bundle, install.sh into a temporary root (--root) with
the clinic's settings given as options (checked, written, then validate and doctor), an upgrade
that keeps the clinic's settings and readings, uninstall and purge, and the systemd unit.

Building a virtualenv is the slow part, so the module builds the bundle once and installs it once;
tests that change the installation work on a copy of that root (a second install builds the
second and last virtualenv)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from agent.config import load_config
from agent.install.write import rooted
from agent.remote.envelope import generate_keypair, load_trusted_keys
from helpers import free_port, require_binary
from pki import make_ca

ROOT = Path(__file__).resolve().parents[1]
UNIT_SRC = ROOT / "systemd" / "clinic-agent.service"
EXPOSURE_MAX = 2.0

OWNERS = {   # what install.sh records (and applies, outside --root) for each path
    "/opt/clinic-agent": "0755 root:root",
    "/opt/clinic-agent/releases": "0755 root:root",
    "/etc/clinic-agent": "0750 root:clinic-agent",
    "/etc/clinic-agent/agent.toml": "0640 root:clinic-agent",
    "/etc/clinic-agent/secrets.toml": "0600 clinic-agent:clinic-agent",
    "/var/lib/clinic-agent": "0750 clinic-agent:clinic-agent",
    "/etc/systemd/system/clinic-agent.service": "0644 root:root",
}


LOCALE_VARS = ("LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES")


def run(cmd: list, *, check: bool = True, timeout: float = 180, cwd: Path | None = None,
        locale: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``cmd``'s output; ``locale`` replaces the locale variables when given."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
           and not (locale is not None and k in LOCALE_VARS)}
    env.update(locale or {})
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def install(bundle: Path, root: Path, *args: str, check: bool = True, english: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """install.sh into ``root``, under an English locale; else as on a clinic PC with no locale
    set, where the installer speaks Spanish (the default of a clinic install)."""
    return run(["bash", bundle / "install.sh", "--root", root, "--python", sys.executable, *args],
               check=check, cwd=cwd, locale={"LANG": "en_US.UTF-8"} if english else {})


def mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.lstat().st_mode):04o}"


def copy_root(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The offline bundle, built by build-bundle.sh and unpacked as a technician would."""
    out = tmp_path_factory.mktemp("dist")
    res = run(["bash", ROOT / "scripts" / "build-bundle.sh", "--python", sys.executable,
               "--out", out])
    assert "[5/5] Writing the tarball" in res.stdout
    (tarball,) = out.glob("clinic-agent-*.tar.gz")
    unpacked = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(tarball) as tar:
        tar.extractall(unpacked, filter="tar")
    (top,) = unpacked.iterdir()
    return top


@pytest.fixture(scope="module")
def installed(bundle, tmp_path_factory):
    """One offline install into an empty root; (root, install.sh's output)."""
    root = tmp_path_factory.mktemp("root")
    res = install(bundle, root, "--no-start")
    return root, res.stdout


# -- the bundle -----------------------------------------------------------------------------------

def test_bundle_holds_the_installer_unit_examples_and_every_wheel(bundle):
    names = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert {"install.sh", "systemd/clinic-agent.service", "BUNDLE_INFO", "SHA256SUMS",
            "README.txt"} <= names
    assert os.access(bundle / "install.sh", os.X_OK)
    wheels = {n.split("/")[1].split("-")[0].lower() for n in names if n.startswith("wheelhouse/")}
    assert {"clinic_edge_agent", "pip", "paho_mqtt", "pysnmp", "pymodbus", "psutil", "pyserial",
            "cryptography"} <= wheels
    assert "tenacity" not in wheels   # the reconnect schedule is agent.publish.reconnect
    info = dict(line.split("=", 1) for line in (bundle / "BUNDLE_INFO").read_text().splitlines())
    assert info["python"] == "%d.%d" % sys.version_info[:2]
    assert info["machine"] == os.uname().machine
    run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=bundle)


# -- a first install ------------------------------------------------------------------------------

def test_install_puts_every_file_in_place_with_its_mode(installed):
    root, output = installed
    opt = root / "opt/clinic-agent"
    assert mode(opt) == "0755"
    (release,) = (opt / "releases").iterdir()
    assert (opt / "venv").is_symlink() and os.readlink(opt / "venv") == f"releases/{release.name}"
    etc = root / "etc/clinic-agent"
    assert mode(etc) == "0750"
    assert mode(etc / "agent.toml") == "0640"
    assert mode(etc / "secrets.toml") == "0600"
    assert (etc / "agent.toml").read_text() == (ROOT / "conf/agent.example.toml").read_text()
    assert (etc / "secrets.toml").read_text() == (ROOT / "conf/secrets.example.toml").read_text()
    assert mode(root / "var/lib/clinic-agent") == "0750"
    assert list((root / "var/lib/clinic-agent").iterdir()) == []
    unit = root / "etc/systemd/system/clinic-agent.service"
    assert mode(unit) == "0644" and unit.read_bytes() == UNIT_SRC.read_bytes()
    wants = root / "etc/systemd/system/multi-user.target.wants/clinic-agent.service"
    assert os.readlink(wants) == "/etc/systemd/system/clinic-agent.service", "enabled at boot"
    assert os.readlink(root / "usr/local/bin/clinic-agent") == "/opt/clinic-agent/venv/bin/clinic-agent"
    assert (opt / "share/examples/agent.example.toml").is_file()
    # --root: owners are not applied (no such user here) but written down, path by path.
    manifest = (opt / "install-manifest").read_text().splitlines()
    recorded = {line.split(" ", 2)[2]: line.rsplit(" ", 1)[0] for line in manifest[1:]}
    assert recorded == OWNERS
    for n in range(1, 11):
        assert f"==> [{n}/10]" in output
    assert "still the example" in output, "an unedited example must not be started"


def test_the_virtualenv_runs_the_agent(installed, tmp_path):
    root, _ = installed
    res = run([root / "opt/clinic-agent/venv/bin/clinic-agent", "--version"])
    assert res.stdout.strip() == "clinic-agent 0.1.0"
    # Its own interpreter, not the test's: nothing leaks in from the project's .venv.
    res = run([root / "opt/clinic-agent/venv/bin/python", "-c",
               "import agent, paho.mqtt, pysnmp, pymodbus; print(agent.__file__)"], cwd=tmp_path)
    assert res.stdout.startswith(str(root / "opt/clinic-agent/venv/lib/"))


# -- upgrade ------------------------------------------------------------------------------------

# The broker is a closed loopback port: the installer's closing doctor run stays on this machine.
VALID_CONFIG = f"""# edited by the technician
site_id = "KE-KSM-014"
state_dir = "/var/lib/clinic-agent"
secrets_file = "secrets.toml"
[mqtt]
host = "127.0.0.1"
port = {free_port()}
[[devices]]
name = "pc"
kind = "host"
"""


def test_second_install_keeps_settings_passwords_and_readings(installed, bundle, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    etc = root / "etc/clinic-agent"
    (etc / "agent.toml").write_text(VALID_CONFIG)
    (etc / "agent.toml").chmod(0o644)      # an editor left it world-readable
    (etc / "secrets.toml").write_text('[mqtt]\npassword = "s3cret"\n')
    buffer = root / "var/lib/clinic-agent/buffer.sqlite"
    buffer.write_bytes(b"readings not yet sent")
    releases = root / "opt/clinic-agent/releases"
    (first,) = releases.iterdir()
    (releases / "20000101-000000").mkdir()  # an old release, due for removal

    res = install(bundle, root)

    assert (etc / "agent.toml").read_text() == VALID_CONFIG
    assert (etc / "secrets.toml").read_text() == '[mqtt]\npassword = "s3cret"\n'
    assert buffer.read_bytes() == b"readings not yet sent"
    assert mode(etc / "agent.toml") == "0640"
    assert "corrected the permissions of /etc/clinic-agent/agent.toml (644" in res.stdout
    assert "kept your settings" in res.stdout and "kept the reading buffer" in res.stdout
    # A new release is in use; the previous one is kept for going back, older ones removed.
    current = os.readlink(root / "opt/clinic-agent/venv")
    assert current != f"releases/{first.name}"
    assert sorted(p.name for p in releases.iterdir()) == sorted([first.name, current.split("/")[1]])
    assert run([root / "opt/clinic-agent/venv/bin/clinic-agent", "--version"]).returncode == 0
    assert "OK: site KE-KSM-014, 1 device(s)" in res.stdout, "the kept config is validated"
    assert "unit file unchanged" in res.stdout


# -- the clinic's settings ------------------------------------------------------------------------

@pytest.fixture
def site_files(tmp_path) -> Path:
    """What the central team gives the technician: the broker's CA, the operators' public key,
    the MQTT password in a file; in a folder like a USB stick's."""
    usb = tmp_path / "usb"
    (usb / "keys").mkdir(parents=True)
    make_ca(usb, "ca")
    _, pub, _ = generate_keypair(tmp_path / "central", "operators")
    shutil.copy(pub, usb / "keys" / "operators.pub")
    (usb / "password.txt").write_text("pw-Clinica-7\n")
    return usb


def doctor_lines(output: str) -> list[str]:
    """The check lines of the doctor run at the end of the installer's output."""
    tail = output.split("clinic-agent doctor", 1)[1]
    return [line.strip() for line in tail.splitlines() if line.strip().startswith("[")]


def test_install_with_the_clinics_settings_ends_validated_and_checked_by_doctor(bundle, site_files,
                                                                                 tmp_path):
    root = tmp_path / "root"
    port = free_port()     # nothing listens there: the central broker is out of reach today
    res = install(bundle, root, "--site-id", "DFSSA001234", "--broker", f"127.0.0.1:{port}",
                  "--ca-file", "ca.crt", "--trusted-keys", "keys",
                  "--mqtt-user", "DFSSA001234", "--mqtt-password-file", "password.txt",
                  "--timezone", "America/Mexico_City", english=False, cwd=site_files)
    out = res.stdout
    etc = root / "etc/clinic-agent"
    # Spanish on a PC with no locale, every step said, every setting echoed but the password.
    for n in range(1, 11):
        assert f"==> [{n}/10]" in out
    assert "id de sitio (CLUES): DFSSA001234" in out
    assert "contraseña MQTT: indicada (no se muestra)" in out
    assert "pw-Clinica-7" not in out + res.stderr
    assert "pw-Clinica-7" not in (root / "var/log/clinic-agent-install.log").read_text()
    # The files given are copied next to the config, with their modes, and recorded.
    assert (etc / "ca.crt").read_bytes() == (site_files / "ca.crt").read_bytes()
    assert mode(etc / "ca.crt") == "0640" and mode(etc / "agent.toml") == "0640"
    assert mode(etc / "secrets.toml") == "0600"
    assert [p.name for p in (etc / "trusted-keys").iterdir()] == ["operators.pub"]
    manifest = (root / "opt/clinic-agent/install-manifest").read_text()
    assert "0640 root:clinic-agent /etc/clinic-agent/trusted-keys/operators.pub" in manifest
    assert (root / "etc/timezone").read_text() == "America/Mexico_City\n"
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/America/Mexico_City"
    # The config validates (step 8) and says what was given, seen from inside the root.
    assert "correcto: sitio DFSSA001234" in out
    text = (etc / "agent.toml").read_text()
    view = tmp_path / "view.toml"
    view.write_text(rooted(text, tomllib.loads(text), root=root, config_dir=etc,
                           socket=str(tmp_path / "none.sock")))
    cfg = load_config(view)
    assert (cfg.site_id, cfg.language) == ("DFSSA001234", "es")
    assert (cfg.mqtt.brokers[0].host, cfg.mqtt.brokers[0].port) == ("127.0.0.1", port)
    assert cfg.mqtt.ca_file == str(etc / "ca.crt") and cfg.mqtt.tls
    assert cfg.mqtt.username == "DFSSA001234" and cfg.mqtt.password.reveal() == "pw-Clinica-7"
    keys, problems = load_trusted_keys(cfg.remote.trusted_keys_dir)
    assert len(keys) == 1 and problems == []
    # Doctor (step 10) names only the unreachable broker; the install still succeeds.
    lines = doctor_lines(out)
    failed = [line for line in lines if line.startswith("[FALLA]")]
    assert failed == [f"[FALLA]    TCP          127.0.0.1:{port} rechazó la conexión"], lines
    assert any(line.startswith("[OK]") and "pc (host) responde" in line for line in lines)
    assert "1 revisión(es) fallaron" in out
    assert "doctor encontró problemas" in out and res.returncode == 0


def on_a_terminal(cmd: list, answers: list[tuple[str, str]], *, cwd: Path,
                  timeout: float = 120) -> tuple[int, str]:
    """Run ``cmd`` on a pseudo-terminal, typing each answer once its question has appeared;
    (exit code, everything the terminal showed)."""
    import pty
    import select
    import time
    main, side = pty.openpty()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", *LOCALE_VARS)}
    proc = subprocess.Popen([str(c) for c in cmd], stdin=side, stdout=side, stderr=side, cwd=cwd,
                            env=env, start_new_session=True)
    os.close(side)
    shown, typed_up_to, pending = b"", 0, list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:      # the other side closed: the installer ended
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and pending[0][0].encode() in shown[typed_up_to:]:
                typed_up_to = len(shown)
                os.write(main, pending.pop(0)[1].encode() + b"\n")
        assert not pending, f"never asked {pending[0][0]!r}:\n{shown.decode(errors='replace')}"
        return proc.wait(timeout=max(deadline - time.monotonic(), 1)), shown.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)


def test_on_a_terminal_the_installer_asks_for_each_setting_and_hides_the_password(
        bundle, site_files, tmp_path):
    root = tmp_path / "root"
    port = free_port()
    code, shown = on_a_terminal(
        ["bash", bundle / "install.sh", "--root", root, "--python", sys.executable], [
            ("Clave CLUES de la clínica", "DF SSA"),
            ("Clave CLUES de la clínica", "DFSSA001234"),
            ("Bróker central", f"127.0.0.1:{port}"),
            ("Archivo de la CA del bróker", "ca.crt"),
            ("¿Cómo entra la clínica al bróker?", "1"),
            ("Usuario MQTT", "DFSSA001234"),
            ("Contraseña MQTT", "pw-Tecleada-9"),
            ("La misma contraseña otra vez", "pw-Tecleada-9"),
            ("llaves públicas de los operadores", "keys"),
            ("Zona horaria de la clínica [America/Mexico_City]", ""),
        ], cwd=site_files)
    assert code == 0, shown
    assert '"DF SSA" no es un id de sitio' in shown
    assert "pw-Tecleada-9" not in shown
    secrets = tomllib.loads((root / "etc/clinic-agent/secrets.toml").read_text())
    assert secrets["mqtt"]["password"] == "pw-Tecleada-9"
    assert "correcto: sitio DFSSA001234" in shown
    assert f"[FALLA]    TCP          127.0.0.1:{port} rechazó la conexión" in shown


def test_wrong_settings_are_all_explained_and_nothing_is_installed(bundle, site_files, tmp_path):
    (site_files / "keys" / "operators.key").write_text(
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n")
    (site_files / "not-a-cert.crt").write_text("hello\n")
    root = tmp_path / "root"
    res = install(bundle, root, "--site-id", "DF SSA", "--broker", "192.168.1.300",
                  "--ca-file", "not-a-cert.crt", "--trusted-keys", "keys",
                  "--timezone", "America/Mexico_city", english=False, cwd=site_files, check=False)
    assert res.returncode == 1
    problems = [line.strip() for line in res.stderr.splitlines() if line.startswith("    --")]
    assert [p.split(":")[0] for p in problems] == [
        "--site-id", "--broker", "--ca-file", "--trusted-keys", "--timezone"]
    assert "¿quiso decir America/Mexico_City?" in problems[4]
    assert "operators.key es una llave privada" in problems[3]
    assert "no se cambió nada" in res.stderr
    assert list(root.iterdir()) == []


def test_an_upgrade_with_new_settings_edits_only_those_keys_and_keeps_the_file_before(
        installed, bundle, site_files, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    etc = root / "etc/clinic-agent"
    (etc / "agent.toml").write_text(VALID_CONFIG)
    (etc / "secrets.toml").write_text('# kept\n[mqtt]\npassword = "old"\n')
    port = free_port()
    res = install(bundle, root, "--broker", f"127.0.0.1:{port}", "--ca-file", "ca.crt",
                  "--mqtt-user", "kmk014", "--mqtt-password-file", "password.txt", cwd=site_files)
    after = (etc / "agent.toml").read_text()
    assert after.startswith("# edited by the technician\nsite_id = \"KE-KSM-014\"")
    assert f'port = {port}\n' in after and 'ca_file = "/etc/clinic-agent/ca.crt"' in after
    assert 'username = "kmk014"' in after and "language" not in after
    (backup,) = etc.glob("agent.toml.before-*")
    assert backup.read_text() == VALID_CONFIG
    assert (etc / "secrets.toml").read_text() == '# kept\n[mqtt]\npassword = "pw-Clinica-7"\n'
    (old_secrets,) = etc.glob("secrets.toml.before-*")
    assert mode(old_secrets) == "0600"
    assert "updated /etc/clinic-agent/agent.toml: mqtt.host, mqtt.port, mqtt.ca_file, mqtt.username" \
        in res.stdout
    assert "OK: site KE-KSM-014, 1 device(s)" in res.stdout
    assert "pw-Clinica-7" not in res.stdout + res.stderr


def test_a_failed_upgrade_leaves_the_installed_program_untouched(installed, bundle, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    before = os.readlink(root / "opt/clinic-agent/venv")
    broken = tmp_path / "wheels"        # pip alone: the agent's wheels are missing
    broken.mkdir()
    for whl in (bundle / "wheelhouse").glob("pip-*.whl"):
        shutil.copy(whl, broken)
    res = install(bundle, root, "--offline", broken, check=False)
    assert res.returncode == 1
    assert "Nothing was changed" in res.stderr
    assert os.readlink(root / "opt/clinic-agent/venv") == before
    assert [p.name for p in (root / "opt/clinic-agent/releases").iterdir()] == [before.split("/")[1]]


def test_a_bundle_for_another_python_or_damaged_is_refused_before_touching_anything(bundle, tmp_path):
    other = tmp_path / "bundle"
    shutil.copytree(bundle, other, symlinks=True)
    info = other / "BUNDLE_INFO"
    info.write_text(re.sub(r"(?m)^python=.*$", "python=3.99", info.read_text()))
    res = install(other, tmp_path / "root1", check=False)
    assert res.returncode == 1 and "this bundle is for Python 3.99" in res.stderr
    shutil.copy(bundle / "BUNDLE_INFO", info)
    (other / "README.txt").write_text("changed on the USB stick")
    res = install(other, tmp_path / "root2", check=False)
    assert res.returncode == 1 and "the bundle is damaged" in res.stderr
    for r in ("root1", "root2"):
        assert not (tmp_path / r / "opt").exists()


# -- uninstall ------------------------------------------------------------------------------------

def test_uninstall_removes_the_program_and_keeps_settings_and_readings(installed, bundle, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    (root / "var/lib/clinic-agent/buffer.sqlite").write_bytes(b"unsent")
    res = install(bundle, root, "--uninstall")
    assert not (root / "opt/clinic-agent").exists()
    assert not (root / "etc/systemd/system/clinic-agent.service").exists()
    assert not os.path.lexists(root / "etc/systemd/system/multi-user.target.wants/clinic-agent.service")
    assert not os.path.lexists(root / "usr/local/bin/clinic-agent")
    assert (root / "etc/clinic-agent/agent.toml").is_file()
    assert (root / "etc/clinic-agent/secrets.toml").is_file()
    assert (root / "var/lib/clinic-agent/buffer.sqlite").read_bytes() == b"unsent"
    assert "kept /etc/clinic-agent" in res.stdout
    # Uninstalling again is harmless.
    install(bundle, root, "--uninstall")


def test_purge_removes_everything(installed, bundle, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    install(bundle, root, "--uninstall", "--purge")
    for path in ("opt/clinic-agent", "etc/clinic-agent", "var/lib/clinic-agent",
                 "etc/systemd/system/clinic-agent.service", "usr/local/bin/clinic-agent",
                 "var/log/clinic-agent-install.log"):
        assert not os.path.lexists(root / path), path


def test_purge_alone_is_refused(bundle, tmp_path):
    res = install(bundle, tmp_path / "root", "--purge", check=False)
    assert res.returncode == 1 and "--purge goes with --uninstall" in res.stderr


# -- the systemd unit -----------------------------------------------------------------------------

def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> values, in order (systemd allows a key more than once)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key}", []).append(value)
    return settings


def test_unit_runs_the_agent_as_a_watched_notify_service():
    s = unit_settings(UNIT_SRC)
    expected = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30", "Restart": "always",
        "RestartSec": "5", "User": "clinic-agent", "SupplementaryGroups": "dialout",
        "ExecStart": "/opt/clinic-agent/venv/bin/clinic-agent run -c /etc/clinic-agent/agent.toml",
        "ExecReload": "/bin/kill -HUP $MAINPID", "StateDirectory": "clinic-agent",
        "ConfigurationDirectory": "clinic-agent", "RuntimeDirectory": "clinic-agent",
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "DevicePolicy": "closed", "CapabilityBoundingSet": "",
        "MemoryDenyWriteExecute": "yes", "UMask": "0027", "SystemCallArchitectures": "native",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    }
    for key, value in expected.items():
        assert s[f"Service.{key}"] == [value], key
    assert {"char-ttyUSB rw", "char-ttyACM rw"} <= set(s["Service.DeviceAllow"])
    assert s["Install.WantedBy"] == ["multi-user.target"]


def test_unit_verifies_clean_against_the_installed_root(installed, tmp_path):
    analyze = require_binary("systemd-analyze")
    root = copy_root(installed[0], tmp_path / "root")
    # verify --root needs the units the service depends on and ExecReload's /bin/kill in the root.
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(shutil.which("kill") or "/bin/kill", root / "usr/bin/kill")
    for link in ("bin", "sbin", "lib"):
        os.symlink(f"usr/{link}", root / link)
    res = run([analyze, "verify", f"--root={root}", "clinic-agent.service"], check=False)
    assert (res.returncode, res.stdout + res.stderr) == (0, "")
    # The same check must notice a missing program: it really looks inside the root.
    (root / "opt/clinic-agent/venv").unlink()
    res = run([analyze, "verify", f"--root={root}", "clinic-agent.service"], check=False)
    assert "/opt/clinic-agent/venv/bin/clinic-agent is not executable" in res.stderr


def test_unit_exposure_is_at_most_2():
    analyze = require_binary("systemd-analyze")
    res = run([analyze, "security", "--offline=yes", UNIT_SRC], check=False)
    found = re.search(r"Overall exposure level for clinic-agent\.service: ([0-9.]+)", res.stdout)
    assert found, res.stdout + res.stderr
    assert float(found.group(1)) <= EXPOSURE_MAX, res.stdout
