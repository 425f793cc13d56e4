"""``clinic-central web`` as a process on the central test stack, its accounts, and a logged-in
HTTP client; the site's side speaks MQTT to the real broker and the real ingest stores it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from fixtures.central import mqtt_client
from helpers import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"ana": "operadora-segura-1", "luis": "solo-lectura-22"}
ROLES = {"ana": "operator", "luis": "read-only"}
ARTIFACTS = ROOT / "test-artifacts" / "web"


def cli(cfg: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``clinic-central ARGS`` as a process (the way an operator or cron runs it)."""
    return subprocess.run([sys.executable, "-m", "central", *args[:1], "-c", str(cfg), *args[1:]],
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)


@dataclass
class Web:
    stack: Any
    cfg: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=20, follow_redirects=False)
        self.clients.append(c)
        return c

    def login(self, user: str, password: str | None = None) -> httpx.Client:
        c = self.client()
        r = login(c, user, PASSWORDS[user] if password is None else password)
        assert r.status_code == 303, r.text
        return c

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(c: httpx.Client, user: str, password: str, nxt: str = "/") -> httpx.Response:
    page = c.get("/login")
    return c.post("/login", data={"user": user, "password": password, "next": nxt,
                                  "csrf": csrf_of(page.text)})


def start_web(stack: Any, workdir: Path, *extra: str) -> Web:
    cfg = stack.ingest_config("web")
    web = Web(stack, cfg, free_port())
    for name, password in PASSWORDS.items():
        r = cli(cfg, "users", "add", name, "--role", ROLES[name], "--password-stdin",
                stdin=password + "\n")
        assert r.returncode == 0 or "exists already" in r.stderr, r.stderr
    web.log_path = workdir / f"web-{web.port}.log"
    with open(web.log_path, "wb") as log:
        web.proc = subprocess.Popen(
            [sys.executable, "-m", "central", "web", "-c", str(cfg), "--listen",
             f"127.0.0.1:{web.port}", "--secret-file", str(workdir / "web-secret"),
             "--poll-s", "1", "--tz", "America/Mexico_City", *extra],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
            cwd=ROOT)
    try:
        wait_port(web.port, timeout=30)
    except Exception:
        print(web.log())
        raise
    return web


def stop_web(web: Web) -> None:
    for c in web.clients:
        c.close()
    stop_process(web.proc)


@pytest.fixture
def web(central: Any, tmp_path: Path) -> Iterator[Web]:
    """The stack with one ingest, and the page served with accounts ana (operator) and luis
    (read-only)."""
    central.start_ingest()
    w = start_web(central, tmp_path)
    yield w
    stop_web(w)
    if w.proc is not None and w.proc.returncode not in (0, -15, None):
        print(f"--- web log ---\n{w.log()[-4000:]}")


class Site:
    """A clinic's retained documents and events, published on the real broker as the site."""

    def __init__(self, stack: Any, site: str) -> None:
        self.site = site
        self.c = mqtt_client(stack, site)
        self.next_id = 1

    def publish(self, sub: str, doc: dict[str, Any], *, retain: bool = False) -> None:
        info = self.c.publish(f"clinics/{self.site}/{sub}", json.dumps(doc), qos=1, retain=retain)
        info.wait_for_publish(10)

    def online(self, version: str = "0.1.0", ts: float | None = None) -> None:
        self.publish("status", {"state": "online", "boot": "00112233445566ff", "version": version,
                                "ts": time.time() if ts is None else ts}, retain=True)

    def config(self, version: int) -> None:
        self.publish("config/state", {"v": 1, "site": self.site, "ts": time.time(),
                                      "state": "applied",
                                      "config": {"source": "push", "version": version},
                                      "highest_version": version, "latest_push": None,
                                      "set_aside": None, "event": None}, retain=True)

    def active(self, active: list[dict[str, Any]], ts: float | None = None) -> None:
        self.publish("events/active", {"v": 1, "site": self.site,
                                       "ts": time.time() if ts is None else ts,
                                       "active": active}, retain=True)

    def raise_event(self, cond: str, dev: str, start: float, values: dict[str, Any]) -> dict[
            str, Any]:
        """A raise event and the active list with it (what the agent sends)."""
        eid = self.next_id
        self.next_id += 1
        self.publish("events", {"v": 1, "site": self.site, "boot": "00112233445566ff", "e": [
            {"id": eid, "kind": "raise", "cond": cond, "dev": dev, "start": start, "end": None,
             "dur_s": None, "est": False, "values": values, "flags": 0}]})
        return {"id": eid, "cond": cond, "dev": dev, "start": start, "values": values}

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()
