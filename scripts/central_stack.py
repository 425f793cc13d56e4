#!/usr/bin/env python3
"""The central side on loopback, throwaway: Mosquitto (the shipped central config), VictoriaMetrics,
a PostgreSQL cluster, and the ingest; on demand the fleet web page, a Prometheus Alertmanager (the
shipped route) and ``clinic-central alerts``. For the demo, the benchmark and the tests.

    from central_stack import CentralStack
    with CentralStack(workdir) as stack:       # broker, VictoriaMetrics, PostgreSQL
        stack.start_ingest()                    # clinic-central ingest as a process
        stack.broker_port, stack.vm_url, stack.pg_dsn, stack.site_password("SITE001")
        stack.users_add("ana", password, "operator"); stack.import_sites(csv_file)
        stack.start_web(tz="America/Mexico_City")   # clinic-central web on a free port
        am = stack.start_alertmanager(alertmanager_config(hook_url, smtp_port, group_wait_s=1,
                                                          group_interval_s=2))
        stack.start_alerts(am.url, hold_s=5)    # clinic-central alerts

or ``.venv/bin/python scripts/central_stack.py --sites SITE001,SITE002`` to bring it up and print
the addresses until Ctrl-C. PostgreSQL refuses to run as root: as root the cluster is created and
run as the ``postgres`` user (``runuser``), in a directory it owns.
"""

from __future__ import annotations

import argparse
import getpass
import glob
import os
import re
import secrets
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import free_port, wait_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BROKER_CONF = ROOT / "conf" / "central-mosquitto.conf"
ACL = ROOT / "conf" / "mosquitto-acl.example"
ALERTMANAGER_CONF = ROOT / "conf" / "alertmanager.yml"
INGEST_USER = "central-ingest"


class StackError(RuntimeError):
    """A piece of the stack could not start (missing binary, crashed at start)."""


def find_binary(name: str, *globs: str) -> str | None:
    for cand in (shutil.which(name), *(p for g in globs for p in sorted(glob.glob(g), reverse=True))):
        if cand and os.access(cand, os.X_OK):
            return cand
    for d in ("/usr/sbin", "/sbin"):
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return None


def _need(name: str, *globs: str) -> str:
    path = find_binary(name, *globs)
    if path is None:
        raise StackError(f"{name} is not installed (run scripts/setup.sh)")
    return path


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Proc:
    """A child process that can be stopped, killed with SIGKILL and started again on the same port."""

    def __init__(self, argv: list[str], log: Path, port: int, *, env: dict[str, str] | None = None,
                 wait: bool = True) -> None:
        self.argv, self.log_path, self.port, self.env, self.wait = argv, log, port, env, wait
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Proc":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        if self.wait:
            try:
                wait_port(self.port, 30)
            except SystemExit as exc:
                raise StackError(f"{self.argv[0]} did not start: {self.log()[-2000:]}") from exc
        return self

    def stop(self) -> None:
        stop(self.proc)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def victoria_metrics(workdir: Path, *, port: int | None = None, retention: str = "100y") -> Proc:
    """VictoriaMetrics single node with the ingest's settings: 1 ms de-duplication (docs/central.md)."""
    port = port or free_port()
    data = workdir / "vm-data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [_need("victoria-metrics", "/usr/bin/victoria-metrics"), f"-storageDataPath={data}",
            f"-httpListenAddr=127.0.0.1:{port}", "-dedup.minScrapeInterval=1ms",
            f"-retentionPeriod={retention}", "-search.latencyOffset=0s", "-loggerLevel=WARN"]
    return Proc(argv, workdir / "vm.log", port)


class Postgres:
    """A throwaway PostgreSQL cluster (initdb in a temporary directory) on a loopback port."""

    def __init__(self, *, port: int | None = None) -> None:
        bindir = os.path.dirname(_need("initdb", "/usr/lib/postgresql/*/bin/initdb"))
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="clinic-pg-"))   # /tmp/...: reachable by postgres
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = [_need("runuser"), "-u", "postgres", "--"]
        self.password = secrets.token_hex(12)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run([*self.as_user, f"{bindir}/initdb", "-D", str(self.data), "-U", "central",
                        "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-instructions"],
                       check=True, capture_output=True)
        self.proc = Proc([*self.as_user, f"{bindir}/postgres", "-D", str(self.data), "-p", str(self.port),
                          "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                          "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "shared_buffers=128MB",
                          "-c", "max_connections=50"],
                         self.root / "postgres.log", self.port)

    @property
    def dsn(self) -> str:
        return f"postgresql://central:{self.password}@127.0.0.1:{self.port}/postgres"

    def start(self) -> "Postgres":
        self.proc.start()
        return self

    def stop(self) -> None:
        self.proc.stop()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class CentralBroker:
    """Mosquitto from conf/central-mosquitto.conf: passwords per site and for the ingest, the ACL."""

    def __init__(self, workdir: Path, sites: Sequence[str], *, port: int | None = None,
                 extra_conf: str = "") -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.passwords = {u: secrets.token_hex(12) for u in (*sites, INGEST_USER, "operator")}
        pwfile = workdir / "passwd"
        binary = _need("mosquitto_passwd")
        for i, (user, pw) in enumerate(self.passwords.items()):
            subprocess.run([binary, *(["-c"] if i == 0 else []), "-b", str(pwfile), user, pw],
                           check=True, capture_output=True)
        pwfile.chmod(0o600)
        acl = workdir / "clinics.acl"
        acl.write_text(ACL.read_text())
        conf = BROKER_CONF.read_text()
        # The shipped file, pointed at this directory: no TLS listener, a free port.
        conf = re.sub(r"(?m)^listener 1883 127.0.0.1$", f"listener {self.port} 127.0.0.1", conf)
        conf = re.sub(r"(?m)^(listener 8883|certfile .*|keyfile .*|cafile .*)$", r"# \1", conf)
        conf = conf.replace("/etc/mosquitto/passwd", str(pwfile)).replace("/etc/mosquitto/clinics.acl", str(acl))
        conf = conf.replace("/var/lib/mosquitto/", f"{workdir}/")
        conf += f"\nuser {getpass.getuser()}\nlog_dest file {workdir / 'mosquitto.log'}\n{extra_conf}\n"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(conf)
        self.proc = Proc([_need("mosquitto"), "-c", str(self.conf)], workdir / "mosquitto.out", self.port)

    def start(self) -> "CentralBroker":
        self.proc.start()
        return self

    def stop(self) -> None:
        self.proc.stop()

    def kill9(self) -> None:
        self.proc.kill9()


def ingest_config(*, broker_port: int, password: str, vm_url: str, pg_dsn: str, client_id: str = "ingest-1",
                  sites: Sequence[str] | None = None, extra: str = "", shared: bool = True) -> str:
    inventory = "" if sites is None else "[inventory]\nsites = [" + ", ".join(f'"{s}"' for s in sites) + "]\n"
    return f"""log_level = "info"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
username = "{INGEST_USER}"
password = "{password}"
client_id = "{client_id}"
shared = {"true" if shared else "false"}
[victoriametrics]
url = "{vm_url}"
[postgres]
dsn = "{pg_dsn}"
[ingest]
ack_interval_s = 0.5
{extra}
{inventory}"""


def alertmanager_config(webhook_url: str, smtp_port: int, *, group_wait_s: int,
                        group_interval_s: int) -> str:
    """The shipped conf/alertmanager.yml with another web hook URL and mail relay (a receiver on
    this machine that keeps what it gets: a demo or a test never mails anyone), and short timings
    (the shipped 30 s and 2 min would keep them waiting). Nothing else changes."""
    text = ALERTMANAGER_CONF.read_text()
    text = text.replace("http://127.0.0.1:9099/clinic-alerts", webhook_url)
    text = re.sub(r'smtp_smarthost: "[^"]*"', f'smtp_smarthost: "127.0.0.1:{smtp_port}"', text)
    text = re.sub(r"(?m)^(\s+)group_wait: 30s$", rf"\g<1>group_wait: {group_wait_s}s", text)
    text = re.sub(r"(?m)^(\s+)group_interval: 2m$", rf"\g<1>group_interval: {group_interval_s}s",
                  text)
    if (f"group_wait: {group_wait_s}s" not in text
            or f"group_interval: {group_interval_s}s" not in text):
        raise StackError(f"{ALERTMANAGER_CONF}: group_wait 30s and group_interval 2m not found")
    return text


class Alertmanager(Proc):
    """Prometheus Alertmanager on a loopback port; clustering off (it listens on every address)."""

    def __init__(self, workdir: Path, config: str, *, port: int | None = None,
                 log_level: str = "info") -> None:
        binary = find_binary("alertmanager") or _need("prometheus-alertmanager")
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        conf = workdir / "alertmanager.yml"
        conf.write_text(config)
        port = port or free_port()
        super().__init__([binary, f"--config.file={conf}", f"--storage.path={workdir / 'data'}",
                          f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                          f"--log.level={log_level}"], workdir / "alertmanager.log", port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        """Returns once it answers ``/-/ready`` (its port opens before it has read its config)."""
        super().start()
        import httpx
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if not self.alive():
                break
            time.sleep(0.1)
        raise StackError(f"Alertmanager did not get ready: {self.log()[-2000:]}")


def smtp_sink(keep: Callable[[bytes], None]) -> socketserver.ThreadingTCPServer:
    """Just enough SMTP on a free loopback port for Alertmanager's e-mail notifier: each message's
    data goes to ``keep``. Serve it with ``serve_forever`` in a thread."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"220 sink ESMTP\r\n")
            while line := self.rfile.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    self.wfile.write(b"354 go on\r\n")
                    data = b""
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    keep(data)
                    self.wfile.write(b"250 kept\r\n")
                elif verb == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 ok\r\n")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True

    return Server(("127.0.0.1", 0), Handler)


class CentralStack:
    """Broker + VictoriaMetrics + PostgreSQL on loopback; ingest processes on demand."""

    def __init__(self, workdir: Path, sites: Sequence[str] = ("DFSSA001234",), *,
                 ingest_extra: str = "") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sites = list(sites)
        self.ingest_extra = ingest_extra
        self.mqtt_shared = True
        self.broker = CentralBroker(self.workdir, self.sites)
        self.vm = victoria_metrics(self.workdir)
        self.pg = Postgres()
        self.ingests: list[Proc] = []
        self.services: list[Proc] = []    # web page, alerts, Alertmanager: stopped first

    @property
    def broker_port(self) -> int:
        return self.broker.port

    @property
    def vm_url(self) -> str:
        return f"http://127.0.0.1:{self.vm.port}"

    @property
    def pg_dsn(self) -> str:
        return self.pg.dsn

    def site_password(self, site: str) -> str:
        return self.broker.passwords[site]

    def start(self) -> "CentralStack":
        self.pg.start()
        self.vm.start()
        self.broker.start()
        return self

    def ingest_config(self, client_id: str = "ingest-1") -> Path:
        path = self.workdir / f"{client_id}.toml"
        path.write_text(ingest_config(broker_port=self.broker.port, password=self.broker.passwords[INGEST_USER],
                                      vm_url=self.vm_url, pg_dsn=self.pg_dsn, client_id=client_id,
                                      extra=self.ingest_extra, shared=self.mqtt_shared))
        path.chmod(0o600)
        return path

    def start_ingest(self, client_id: str = "ingest-1", *, wait: bool = True) -> Proc:
        """``clinic-central ingest`` as its own process; with ``wait``, returns once it subscribed."""
        cfg = self.ingest_config(client_id)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = Proc([sys.executable, "-m", "central", "ingest", "-c", str(cfg)],
                 self.workdir / f"{client_id}.log", 0, env=env, wait=False).start()
        self.ingests.append(p)
        if wait:
            self.wait_ingest(client_id, p)
        return p

    def wait_ingest(self, client_id: str, proc: Proc, timeout: float = 30) -> None:
        """Until the ingest reports itself subscribed (its stats row in PostgreSQL says connected)."""
        import psycopg
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.pg_dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                if not proc.alive():
                    raise StackError(f"ingest {client_id} exited: {proc.log()[-3000:]}")
                try:
                    row = conn.execute("SELECT stats->>'connected', updated_at > now() - interval '3 s' "
                                       "FROM ingest_stats WHERE ingest_id = %s", (client_id,)).fetchone()
                except psycopg.errors.UndefinedTable:
                    row = None
                if row and row[0] == "true" and row[1]:
                    return
                time.sleep(0.1)
        raise StackError(f"ingest {client_id} did not subscribe within {timeout}s: {proc.log()[-3000:]}")

    def _central(self, *args: str, stdin: str = "") -> str:
        """``clinic-central ARGS`` as an operator runs it; its output, or StackError."""
        r = subprocess.run([sys.executable, "-m", "central", *args], input=stdin,
                           capture_output=True, text=True, timeout=60, cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
        if r.returncode != 0:
            raise StackError(f"clinic-central {args[0]} {args[1]}: {r.stderr.strip()[-2000:]}")
        return r.stdout

    def users_add(self, name: str, password: str, role: str = "read-only") -> None:
        """An account of the fleet web page (the password by stdin, never on a command line)."""
        self._central("users", "add", name, "--role", role, "--password-stdin",
                      "-c", str(self.ingest_config("web")), stdin=password + "\n")

    def import_sites(self, csv_file: Path) -> None:
        """``clinic-central sites import``: the inventory's names, states, municipalities."""
        self._central("sites", "import", str(csv_file), "-c", str(self.ingest_config("web")))

    def start_web(self, *, port: int | None = None, tz: str = "America/Mexico_City",
                  poll_s: float = 3.0) -> Proc:
        """``clinic-central web`` on a loopback port (the ingest's [postgres] and
        [victoriametrics]); returns once it listens. Its URL: ``http://127.0.0.1:{proc.port}``."""
        cfg = self.ingest_config("web")
        port = port or free_port()
        p = Proc([sys.executable, "-m", "central", "web", "-c", str(cfg),
                  "--listen", f"127.0.0.1:{port}", "--tz", tz, "--poll-s", str(poll_s),
                  "--secret-file", str(self.workdir / "web-secret")],
                 self.workdir / "web.log", port, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.services.append(p)
        return p.start()

    def start_alertmanager(self, config: str, *, log_level: str = "info") -> Alertmanager:
        """Alertmanager with ``config`` (see ``alertmanager_config``); returns once it is ready."""
        am = Alertmanager(self.workdir / "alertmanager", config, log_level=log_level)
        self.services.append(am)
        return am.start()

    def start_alerts(self, am_url: str, *, hold_s: float, timezone: str = "America/Mexico_City",
                     report_ended: bool = True, repost_s: float = 60, tick_s: float = 1) -> Proc:
        """``clinic-central alerts`` to ``am_url``; returns once it holds the lock, so events stored
        from then on are told (docs/alerts.md, "From the first start on")."""
        cfg = self.ingest_config("alerts-1")
        cfg.write_text(cfg.read_text() + f"""
[alerts]
url = "{am_url}"
report_ended = {"true" if report_ended else "false"}
timezone = "{timezone}"
hold_s = {hold_s}
repost_s = {repost_s}
tick_s = {tick_s}
""")
        p = Proc([sys.executable, "-m", "central", "alerts", "-c", str(cfg)],
                 self.workdir / "alerts-1.log", 0, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                 wait=False).start()
        self.services.append(p)
        deadline = time.monotonic() + 30
        while "holding the lock" not in p.log():
            if not p.alive() or time.monotonic() > deadline:
                raise StackError(f"clinic-central alerts did not start: {p.log()[-2000:]}")
            time.sleep(0.1)
        return p

    def close(self) -> None:
        for p in reversed(self.services):
            p.stop()
        for p in self.ingests:
            p.stop()
        self.broker.stop()
        self.vm.stop()
        self.pg.remove()

    def __enter__(self) -> "CentralStack":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def main() -> int:
    ap = argparse.ArgumentParser(description="Bring up the central side on loopback until Ctrl-C.")
    ap.add_argument("--dir", help="working directory (default: a new temporary one)")
    ap.add_argument("--sites", default="DFSSA001234", help="comma-separated site ids given broker accounts")
    args = ap.parse_args()
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="clinic-central-"))
    with CentralStack(workdir, args.sites.split(",")) as stack:
        stack.start_ingest()
        print(f"broker          127.0.0.1:{stack.broker_port}  (ingest user {INGEST_USER})")
        for s in stack.sites:
            print(f"  site {s}: password {stack.site_password(s)}")
        print(f"VictoriaMetrics {stack.vm_url}   e.g. curl '{stack.vm_url}/api/v1/query?query=clinic_value'")
        print(f"PostgreSQL      {stack.pg_dsn}")
        print(f"ingest config   {workdir / 'ingest-1.toml'}  (log {workdir / 'ingest-1.log'})")
        print("Ctrl-C stops everything.", flush=True)
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
