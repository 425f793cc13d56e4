"""systemd notifications: the agent says when it is ready, pings the watchdog from its event loop
(so a hung loop gets it restarted), and says when it reloads and stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import wait_until, run
from agent.runtime.sdnotify import Notifier, watchdog_loop


@dataclass
class Datagram:
    text: str
    pid: int


class NotifySocket:
    """What systemd does with NOTIFY_SOCKET: a datagram socket that records every message and
    the sender's pid (SO_PASSCRED), as NotifyAccess=main checks it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.setblocking(False)
        self.received: list[Datagram] = []

    def drain(self) -> list[Datagram]:
        """Everything that arrived so far (kept in ``received`` too)."""
        new = []
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                break
            pid = 0
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            new.append(Datagram(data.decode(), pid))
        self.received.extend(new)
        return new

    def texts(self) -> list[str]:
        self.drain()
        return [d.text for d in self.received]

    def wait_for(self, text: str, *, after: int = 0, timeout: float = 20.0) -> int:
        """Index of the first message at or after ``after`` containing the line ``text``."""
        def found():
            for i, msg in enumerate(self.texts()[after:], start=after):
                if text in msg.split("\n"):
                    return i + 1
            return 0
        return wait_until(found, timeout=timeout, what=f"{text} on NOTIFY_SOCKET") - 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket():
    # A short directory of our own: AF_UNIX paths are limited to 107 bytes.
    d = tempfile.mkdtemp(prefix="sdnotify-")
    sink = NotifySocket(os.path.join(d, "notify"))
    yield sink
    sink.close()
    os.unlink(sink.address)
    os.rmdir(d)


# -- the client ----------------------------------------------------------------------------------

def test_outside_systemd_every_call_is_a_harmless_no_op():
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.watchdog_interval_s is None
    assert n.ready() is False and n.watchdog() is False and n.stopping() is False
    run(asyncio.wait_for(watchdog_loop(n), 1))   # returns at once: no watchdog asked for


def test_messages_reach_a_socket_path(notify_socket):
    n = Notifier.from_env({"NOTIFY_SOCKET": notify_socket.address})
    assert n.ready("polling 3 device(s)")
    assert n.status("line one\nline two")
    assert n.reloading()
    assert n.stopping()
    texts = wait_until(lambda: len(notify_socket.texts()) >= 4 and notify_socket.texts())
    assert texts[0] == "READY=1\nSTATUS=polling 3 device(s)"
    assert texts[1] == "STATUS=line one line two", "a newline would end the message early"
    reloading = texts[2].split("\n")
    assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
    assert texts[3] == "STOPPING=1"
    assert {d.pid for d in notify_socket.received} == {os.getpid()}


def test_messages_reach_an_abstract_socket():
    sink = NotifySocket(f"@clinic-agent-test-{uuid.uuid4().hex}")
    try:
        assert Notifier.from_env({"NOTIFY_SOCKET": sink.address}).watchdog()
        assert wait_until(sink.texts) == ["WATCHDOG=1"]
    finally:
        sink.close()


def test_watchdog_interval_is_half_the_timeout_and_only_for_the_named_process():
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(env).watchdog_interval_s == 15.0
    assert Notifier.from_env({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval_s == 15.0
    assert Notifier.from_env({**env, "WATCHDOG_PID": "1"}).watchdog_interval_s is None
    assert Notifier.from_env({**env, "WATCHDOG_USEC": "soon"}).watchdog_interval_s is None


def test_a_vanished_socket_is_logged_once_and_never_raises(tmp_path, caplog):
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.watchdog() is False
    assert n.watchdog() is False
    warnings = [r for r in caplog.records if "cannot notify systemd" in r.getMessage()]
    assert len(warnings) == 1


def test_a_blocked_event_loop_stops_the_watchdog_pings(notify_socket):
    """The reason the ping is sent from the event loop: a hang must silence it."""
    interval = 0.02
    loop = asyncio.new_event_loop()
    notifier = Notifier(notify_socket.address, watchdog_usec=1_000_000)
    task = loop.create_task(watchdog_loop(notifier, interval))
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    entered, release = threading.Event(), threading.Event()

    def hang():   # what a blocking call in the agent would do to its loop
        entered.set()
        release.wait(30)

    try:
        wait_until(lambda: notify_socket.texts().count("WATCHDOG=1") >= 3, what="pings")
        loop.call_soon_threadsafe(hang)
        assert entered.wait(10)
        notify_socket.drain()          # pings sent before the hang
        before = len(notify_socket.received)
        # 15 intervals without a single ping (systemd would kill the agent after 50).
        notify_socket.sock.settimeout(15 * interval)
        with pytest.raises(socket.timeout):
            notify_socket.sock.recv(4096)
        notify_socket.sock.setblocking(False)
        assert len(notify_socket.texts()) == before
        release.set()
        wait_until(lambda: notify_socket.texts()[before:].count("WATCHDOG=1") >= 2,
                   what="pings to resume once the loop runs again")
    finally:
        release.set()
        loop.call_soon_threadsafe(task.cancel)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()


# -- the real agent under a pretend systemd ---------------------------------------------------------

def host_config(broker_port: int, state_dir: Path) -> str:
    return f"""
site_id = "TEST001"
state_dir = "{state_dir}"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
tls = false
reconnect_max_s = 1
[[devices]]
name = "pc"
kind = "host"
interval_s = 0.5
"""


def test_the_agent_reports_ready_pings_the_watchdog_reloads_and_stops(
        broker, agent_process, notify_socket, tmp_path):
    agent = agent_process(host_config(broker.port, tmp_path / "state"), start=False)
    agent.start(("NOTIFY_SOCKET", notify_socket.address), ("WATCHDOG_USEC", "1000000"))

    ready = notify_socket.wait_for("READY=1")
    assert "STATUS=polling 1 device(s)" in notify_socket.texts()[ready].split("\n")
    # WATCHDOG_USEC=1 s: a ping every 0.5 s, and they keep coming while the agent runs.
    wait_until(lambda: notify_socket.texts()[ready:].count("WATCHDOG=1") >= 4, timeout=15,
               what="repeated WATCHDOG=1 after READY=1")

    agent.signal(signal.SIGHUP)
    reloading = notify_socket.wait_for("RELOADING=1", after=ready + 1)
    notify_socket.wait_for("READY=1", after=reloading + 1)

    assert agent.stop() == 0
    notify_socket.wait_for("STOPPING=1", timeout=5)
    # NotifyAccess=main: systemd ignores messages from any other process.
    assert {d.pid for d in notify_socket.received} == {agent.proc.pid}
