"""The central broker for the fleet simulator: Mosquitto from the shipped
conf/central-mosquitto.conf, pointed at loopback and a temporary directory, with one account per
simulated clinic and the shipped ACL. It can be restarted on the same ports, and its log says
when each connection came.

Differences from the shipped file, all needed to run it unprivileged on loopback: the plain
listener moves to a free loopback port; the TLS listener (when asked for) to another, with a
certificate for 127.0.0.1 made here; log lines get epoch timestamps (the default) and only the
information level and above (per-message debug lines would cost the broker more than the fleet).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import re
import resource
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fleetsim.pki import ServerCerts, make_server_certs

ROOT = Path(__file__).resolve().parents[2]
BROKER_CONF = ROOT / "conf" / "central-mosquitto.conf"
ACL = ROOT / "conf" / "mosquitto-acl.example"
INGEST_USER = "central-ingest"
OPERATOR = "operator"
# The broker may need one descriptor per clinic and then some: 10x the fleet is 31,800.
BROKER_NOFILE = 200_000

_NEW_TCP = re.compile(r"^(\d+): New connection from ")
_NEW_CLIENT = re.compile(r"^(\d+): New client connected from \S+ as (\S+) ")


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2 password-file hash ($7$: PBKDF2-SHA512, 101 rounds), as mosquitto_passwd
    writes it; one hash for every simulated clinic saves 3,180 runs of mosquitto_passwd."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    return f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def find_mosquitto() -> str:
    for cand in ("/usr/sbin/mosquitto", "/sbin/mosquitto", "/usr/bin/mosquitto"):
        if os.access(cand, os.X_OK):
            return cand
    raise SystemExit("mosquitto is not installed (run scripts/setup.sh)")


def _raise_nofile() -> None:
    """In the broker's child process: as many descriptors as the system lets us have."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (BROKER_NOFILE, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            return
        except (ValueError, OSError):
            continue


@dataclass
class BrokerLog:
    """Connection attempts the broker saw, per second (from its log)."""

    tcp_per_s: Counter[int] = field(default_factory=Counter)       # every TCP connection
    mqtt_per_s: Counter[int] = field(default_factory=Counter)      # CONNECTs accepted
    per_client: dict[str, list[int]] = field(default_factory=dict)  # client id -> seconds


def parse_log(lines: Iterable[str], since: float = 0.0) -> BrokerLog:
    out = BrokerLog()
    for line in lines:
        m = _NEW_TCP.match(line)
        if m:
            t = int(m.group(1))
            if t >= since:
                out.tcp_per_s[t] += 1
            continue
        m = _NEW_CLIENT.match(line)
        if m:
            t = int(m.group(1))
            if t >= since:
                out.mqtt_per_s[t] += 1
                out.per_client.setdefault(m.group(2), []).append(t)
    return out


class SimBroker:
    """Mosquitto for ``sites``; ``port`` plain, ``tls_port`` TLS (None: no TLS listener).

    ``extra_ports``: more listeners like the clinics' one. One loopback address reaches one
    port from at most ~28,000 ephemeral ports (net.ipv4.ip_local_port_range), so a fleet larger
    than that is spread over several ports (each connection needs its own 4-tuple).
    """

    def __init__(self, workdir: Path, sites: list[str], *, tls: bool, port: int,
                 tls_port: int | None, password: str, extra_ports: tuple[int, ...] = ()) -> None:
        self.workdir = workdir
        self.port = port
        self.tls_port = tls_port if tls else None
        self.password = password
        self.ingest_password = secrets.token_hex(12)
        self.operator_password = secrets.token_hex(12)
        self.certs: ServerCerts | None = make_server_certs(workdir) if tls else None
        pwfile = workdir / "passwd"
        clinic_hash = mosquitto_hash(password)
        with open(pwfile, "w") as f:
            for site in sites:
                f.write(f"{site}:{clinic_hash}\n")
            f.write(f"{INGEST_USER}:{mosquitto_hash(self.ingest_password)}\n")
            f.write(f"{OPERATOR}:{mosquitto_hash(self.operator_password)}\n")
        pwfile.chmod(0o600)
        acl = workdir / "clinics.acl"
        acl.write_text(ACL.read_text())
        conf = BROKER_CONF.read_text()
        conf = re.sub(r"(?m)^listener 1883 127.0.0.1$", f"listener {port} 127.0.0.1", conf)
        if self.certs is not None and tls_port is not None:
            conf = re.sub(r"(?m)^listener 8883$", f"listener {tls_port} 127.0.0.1", conf)
            conf = conf.replace("/etc/mosquitto/certs/broker.crt", str(self.certs.cert))
            conf = conf.replace("/etc/mosquitto/certs/broker.key", str(self.certs.key))
            conf = conf.replace("/etc/mosquitto/certs/ca.crt", str(self.certs.ca))
        else:
            conf = re.sub(r"(?m)^(listener 8883|certfile .*|keyfile .*|cafile .*)$", r"# \1",
                          conf)
        conf = conf.replace("/etc/mosquitto/passwd", str(pwfile))
        conf = conf.replace("/etc/mosquitto/clinics.acl", str(acl))
        conf = conf.replace("/var/lib/mosquitto/", f"{workdir}/")
        self.log_path = workdir / "mosquitto.log"
        for extra in extra_ports:
            conf += f"\nlistener {extra} 127.0.0.1\n"
            if self.certs is not None:
                conf += (f"certfile {self.certs.cert}\nkeyfile {self.certs.key}\n"
                         f"cafile {self.certs.ca}\n")
        self.extra_ports = extra_ports
        conf += (f"\nuser {getpass.getuser()}\nlog_dest file {self.log_path}\n"
                 "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = find_mosquitto()
        self.host = "127.0.0.1"
        self.operator_user = OPERATOR
        self.ca_file = str(self.certs.ca) if self.certs is not None else None

    @property
    def clinic_port(self) -> int:
        return self.tls_port if self.tls_port is not None else self.port

    @property
    def clinic_ports(self) -> tuple[int, ...]:
        return (self.clinic_port, *self.extra_ports)

    def start(self, timeout: float = 30.0) -> None:
        with open(self.workdir / "mosquitto.out", "ab") as out:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=out,
                                         stderr=subprocess.STDOUT, preexec_fn=_raise_nofile)
        wait_port(self.port, timeout)
        for port in self.clinic_ports:
            wait_port(port, timeout)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: Mosquitto saves its persistence file and exits."""
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def read_log(self, since: float = 0.0) -> BrokerLog:
        if not self.log_path.exists():
            return BrokerLog()
        with open(self.log_path, errors="replace") as f:
            return parse_log(f, since)


def wait_port(port: int, timeout: float, host: str = "127.0.0.1") -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the broker did not listen on {host}:{port} within {timeout:g}s")


class ExternalBroker:
    """A broker someone else runs, at ``host:port`` (the same surface as ``SimBroker``).

    Clinics log in as their site id with one shared password; the observer with the account
    given. ``stop()``/``start()`` run the given shell commands (e.g. ``systemctl stop
    mosquitto``); without them the restart scenario cannot run. CPU and RSS are sampled on the
    process listening on ``port`` (found with psutil, which needs root for other users'
    processes); the per-second attempt counts need its log (``log_path``, Mosquitto's format).
    """

    def __init__(self, host: str, port: int, *, tls: bool, ca_file: str | None, password: str,
                 observer_port: int, observer_user: str, observer_password: str,
                 stop_cmd: str = "", start_cmd: str = "", log_path: str = "") -> None:
        self.host = host
        self.port = observer_port
        self.clinic_port = port
        self.clinic_ports = (port,)
        self.tls_port = port if tls else None
        self.ca_file = ca_file
        self.password = password
        self.operator_user = observer_user
        self.operator_password = observer_password
        self.ingest_password = ""
        self.stop_cmd, self.start_cmd = stop_cmd, start_cmd
        self.log_path = Path(log_path) if log_path else Path("/nonexistent")
        self._pid: int | None = None

    def start(self, timeout: float = 30.0) -> None:
        if self.start_cmd:
            subprocess.run(self.start_cmd, shell=True, check=True)
            wait_port(self.clinic_port, timeout, self.host)
        self._pid = None

    def stop(self) -> None:
        if not self.stop_cmd:
            raise SystemExit("--stop-cmd and --start-cmd are needed to restart an external broker")
        subprocess.run(self.stop_cmd, shell=True, check=True)
        self._pid = None

    @property
    def pid(self) -> int | None:
        import psutil
        if self._pid is not None and psutil.pid_exists(self._pid):
            return self._pid
        try:
            for c in psutil.net_connections("tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.clinic_port:
                    self._pid = c.pid
                    return c.pid
        except psutil.Error:
            pass
        return None

    def read_log(self, since: float = 0.0) -> BrokerLog:
        if not self.log_path.exists():
            return BrokerLog()
        with open(self.log_path, errors="replace") as f:
            return parse_log(f, since)
