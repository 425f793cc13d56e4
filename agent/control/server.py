"""The running agent's local control socket, and the client the technician CLI uses to reach it.

The daemon owns the devices: an RS-485 bus has one master, and a second TCP connection to a
cheap gateway can knock the first one off. So while the agent runs, ``clinic-agent status``,
``poll-once``, ``tail``, ``buffer`` and ``doctor`` ask it over this socket instead of opening
connections of their own::

    CLI --ControlClient--> AF_UNIX stream socket --> ControlServer (in the agent's event loop)
                                                        |-- status    AgentControl.status
                                                        |-- poll_once AgentControl.poll_and_wait
                                                        |-- tail      AgentControl.watch_readings
                                                        |-- buffer    AgentControl.buffer_status
                                                        |-- summary   AgentControl.buffer_summary
                                                        |-- export    AgentControl.buffer_readings
                                                        '-- events    AgentControl.recent_events

The protocol is newline-delimited JSON: one request object per line, ``{"op": "status"}``,
``{"op": "poll_once", "device": "ups"}`` (device optional), ``{"op": "tail", "devices": [...]}``
(optional filter), ``{"op": "buffer"}``, ``{"op": "summary"}``, ``{"op": "events", "since": T}``,
``{"op": "export", "from": T, "to": T, "rejected": false}`` (times in seconds since 1970, or
null), and one answer line each, ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
CODE, "message": TEXT}``. ``tail`` answers once, then sends one line ``{"reading": {...}}`` per
reading polled until the client hangs up; ``export`` answers once, then sends one line ``{"r":
[seq, ts, device, metric, value, unit, flags, why]}`` per reading and ``{"end": N}``. The agent
holds its buffer file exclusively, so ``summary``, ``export`` and ``events`` are how the CLI reads
it while the agent runs. That list is fixed: the
socket reads state and asks for polls, it never changes the configuration.

The socket is created mode 0660 (the agent's user and group; put technicians in that group, or
use sudo). Its path is ``control_socket`` in the config, by default ``<state_dir>/control.sock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.control import requests as limits
from agent.control.api import AgentControl, UnknownDevice
from agent.control.requests import BadRequest, parse_request, read_request
from agent.readings import (
    REASON_CODE_METRIC,
    REASON_METRIC,
    STATUS_METRIC,
    Reading,
    decode_reason_code,
)

if TYPE_CHECKING:
    from agent.config import AgentConfig, DeviceConfig

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
SOCKET_MODE = 0o660
MAX_REQUEST_BYTES = limits.MAX_REQUEST_BYTES
EXPORT_SLICE = 2000               # readings per store call while exporting
TAIL_QUEUE_BATCHES = 1000         # a slow tail client loses readings; the agent never waits for it


def socket_path(cfg: AgentConfig) -> str:
    """Where the agent listens: ``control_socket`` from the config, else in the state dir."""
    return getattr(cfg, "control_socket", "") or os.path.join(cfg.state_dir, SOCKET_NAME)


def reading_doc(r: Reading) -> dict[str, Any]:
    return {"ts": r.ts, "device": r.device, "metric": r.metric, "value": r.value, "unit": r.unit,
            "flags": r.flags}


def poll_result(device: DeviceConfig[Any], readings: list[Reading]) -> dict[str, Any]:
    """One device's poll as the CLI shows it (the same shape whether polled here or directly)."""
    status = next((r.value for r in readings if r.metric == STATUS_METRIC), "unknown")
    reason = next((r.value for r in readings if r.metric == REASON_METRIC), "")
    result: dict[str, Any] = {
        "device": device.name, "kind": device.kind, "status": status, "reason": reason,
        "readings": [{"metric": r.metric, "value": r.value, "unit": r.unit} for r in readings]}
    code = next((decode_reason_code(r.value) for r in readings
                 if r.metric == REASON_CODE_METRIC), None)
    if code is not None:
        result["reason_code"] = code     # rendered in the reader's language by the CLI
    return result


# -- server ----------------------------------------------------------------------------------------

class ControlServer:
    """Serves the fixed list of requests for one agent. Never stops the agent: a socket
    that cannot be created is logged once and the agent runs on without it."""

    def __init__(self, agent: AgentControl) -> None:
        self.agent = agent
        self.path: Path | None = None
        self.started_at = time.time()
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._tails: set[asyncio.Queue[list[Reading]]] = set()
        self.tail_dropped = 0
        self._unwatch: Callable[[], None] | None = None

    async def start(self) -> None:
        path = Path(socket_path(self.agent.config))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() or path.is_symlink():
                if _answers(path):
                    log.error("control socket %s: another agent is answering on it; this one "
                              "runs without a control socket", path)
                    return
                if not stat.S_ISSOCK(path.lstat().st_mode):
                    # Never delete what is not a socket: a wrong control_socket could name the
                    # buffer or the state file.
                    log.error("control socket %s: something that is not a socket is there (%s); "
                              "it is left alone and this agent runs without a control socket: "
                              "move it away or set control_socket to another path",
                              path, _file_kind(path))
                    return
                path.unlink()   # left behind by an agent that was killed
            self._server = await asyncio.start_unix_server(self._serve, path=str(path),
                                                           limit=MAX_REQUEST_BYTES)
            self._unwatch = self.agent.watch_readings(self.readings)
            os.chmod(path, SOCKET_MODE)
            self._inode = path.stat().st_ino
        except OSError as exc:
            log.error("control socket %s: cannot create it (%s); the CLI will not reach this "
                      "agent", path, exc.strerror or exc)
            await self.close()
            return
        self.path = path
        log.info("control socket listening on %s", path)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        if self.path is not None:
            # Only our own socket: a newer agent may have replaced it meanwhile.
            with contextlib.suppress(OSError):
                if self.path.stat().st_ino == self._inode:
                    self.path.unlink()
            self.path = None

    def readings(self, batch: list[Reading]) -> None:
        """Every poll comes here; tail clients get a copy, never blocking the agent."""
        for queue in self._tails:
            try:
                queue.put_nowait(batch)
            except asyncio.QueueFull:
                self.tail_dropped += len(batch)

    # -- one client ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._clients) >= limits.MAX_CLIENTS:
            await _refuse(writer, _error("busy", f"already {limits.MAX_CLIENTS} connections "
                                                 "to this agent; try again later"))
            return
        self._clients.add(task)
        try:
            while True:
                try:
                    line = await read_request(reader)
                    if line is None:
                        return
                    request = parse_request(line)
                except BadRequest as exc:
                    await _send(writer, _error(exc.code, exc.message))
                    if exc.fatal:
                        return
                    continue
                op = request["op"]
                if op == "tail":
                    await self._tail(request, reader, writer)
                    return
                if op == "export":
                    await self._export(request, writer)
                    return
                try:
                    answer = await getattr(self, f"_op_{op}")(request)
                except Exception:   # a bug here must not take the agent down
                    log.exception("control socket: %s failed", op)
                    answer = _error("internal", f"{op} failed inside the agent; see its log")
                await _send(writer, answer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass          # TimeoutError: the client stopped reading its answers
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _op_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "result": (await self.agent.status()).to_doc()}

    async def _op_buffer(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "result": dataclasses.asdict(await self.agent.buffer_status())}

    async def _op_summary(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "result": dataclasses.asdict(await self.agent.buffer_summary())}

    async def _op_events(self, request: dict[str, Any]) -> dict[str, Any]:
        since = request.get("since")
        events, active = await self.agent.recent_events(
            float(since) if since is not None else 0.0)
        return {"ok": True, "result": {"events": [e.to_dict() for e in events],
                                       "active": [dataclasses.asdict(a) for a in active]}}

    async def _export(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        """Stream the readings in slices: the store thread is never held for long, and the
        agent never holds more than a slice for a client that reads slowly."""
        start, end = request.get("from"), request.get("to")
        rejected = bool(request.get("rejected", False))
        after, n = 0, 0
        try:
            rows = await self.agent.buffer_readings(start, end, rejected=rejected, after=after,
                                                    limit=EXPORT_SLICE)
        except Exception:   # a bug or a failing disk must not take the agent down
            log.exception("control socket: export failed")
            await _send(writer, _error("internal", "export failed inside the agent; see its log"))
            return
        await _send(writer, {"ok": True, "result": "streaming"})
        while rows:
            for r, why in rows:
                writer.write(_line({"r": [r.seq, r.ts, r.device, r.metric, r.value, r.unit,
                                          r.flags, why]}))
            n += len(rows)
            after = rows[-1][0].seq
            async with asyncio.timeout(limits.WRITE_TIMEOUT_S):
                await writer.drain()
            if len(rows) < EXPORT_SLICE:
                break
            try:
                rows = await self.agent.buffer_readings(start, end, rejected=rejected,
                                                        after=after, limit=EXPORT_SLICE)
            except Exception:
                log.exception("control socket: export failed")
                return      # no end line: the client reports an incomplete export
        await _send(writer, {"end": n})

    async def _op_poll_once(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            outcomes = await self.agent.poll_and_wait(request.get("device"))
        except UnknownDevice as exc:
            return _error("unknown_device", str(exc))
        results = []
        for o in outcomes:
            if o.readings is None:
                results.append({"device": o.device.name, "kind": o.device.kind,
                                "status": "timeout",
                                "reason": "the agent's poll did not finish in time",
                                "readings": []})
            else:
                results.append(poll_result(o.device, o.readings))
        return {"ok": True, "result": results}

    async def _tail(self, request: dict[str, Any], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        devices = request.get("devices") or None
        queue: asyncio.Queue[list[Reading]] = asyncio.Queue(TAIL_QUEUE_BATCHES)
        self._tails.add(queue)
        # The client says nothing more; its hang-up ends the stream even while no polls come.
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await _send(writer, {"ok": True, "result": "streaming"})
            while True:
                get = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    return
                for r in get.result():
                    if devices is None or r.device in devices:
                        writer.write(_line({"reading": reading_doc(r)}))
                await writer.drain()
        finally:
            self._tails.discard(queue)
            gone.cancel()


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": code, "message": message}


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), default=str).encode() + b"\n"


async def _send(writer: asyncio.StreamWriter, doc: dict[str, Any]) -> None:
    writer.write(_line(doc))
    async with asyncio.timeout(limits.WRITE_TIMEOUT_S):
        await writer.drain()


async def _refuse(writer: asyncio.StreamWriter, doc: dict[str, Any]) -> None:
    """Answer once and close, without ever waiting long on the client."""
    with contextlib.suppress(ConnectionError, TimeoutError):
        writer.write(_line(doc))
        async with asyncio.timeout(1.0):
            await writer.drain()
    writer.close()


def _file_kind(path: Path) -> str:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


# -- client ----------------------------------------------------------------------------------------

class ControlError(Exception):
    """The agent answered a request with an error (``code``: unknown_device, ...)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class NotRunning(Exception):
    """Nothing answers on the control socket: the agent is not running."""


class NoPermission(Exception):
    """The agent is there, but this user may not use its socket (mode 0660)."""


class ControlClient:
    """A connection to the running agent's control socket (blocking; the CLI is synchronous)."""

    def __init__(self, path: str, *, timeout: float = 10.0) -> None:
        self.path = path
        self._open(timeout)

    def _open(self, timeout: float | None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except PermissionError as exc:
            self.sock.close()
            raise NoPermission(self.path) from exc
        except OSError as exc:
            self.sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                raise NotRunning(self.path) from exc
            raise
        self._file = self.sock.makefile("rb")

    @classmethod
    def connect(cls, path: str, *, timeout: float = 10.0) -> ControlClient | None:
        """A client if the agent runs; None if it does not. Raises ``NoPermission``."""
        try:
            return cls(path, timeout=timeout)
        except NotRunning:
            return None

    def request(self, op: str, *, timeout: float | None = None, **args: Any) -> Any:
        """Send one request and return its ``result``; raises ``ControlError``."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        data = _line({"op": op, **args})
        line = self._exchange(data)
        if not line or _idle_close(line):
            # The agent closes a connection idle for IDLE_TIMEOUT_S (doctor keeps one open while
            # it checks the broker): connect again and ask once more.
            timeout_now = self.sock.gettimeout()
            self.close()
            try:
                self._open(timeout_now)
            except NotRunning:
                raise ControlError("closed", "the agent closed the connection (is it "
                                   "stopping?)") from None
            line = self._exchange(data)
        return self._result(line)

    def _exchange(self, data: bytes) -> bytes:
        try:
            self.sock.sendall(data)
            return self._file.readline()
        except (BrokenPipeError, ConnectionResetError):
            return b""

    def stream(self, op: str, **args: Any) -> Iterator[dict[str, Any]]:
        """Send a streaming request (tail) and yield each line after the first answer."""
        self.sock.settimeout(None)
        self.sock.sendall(_line({"op": op, **args}))
        self._result(self._file.readline())
        for line in self._file:
            yield json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
            self.sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _result(line: bytes) -> Any:
        if not line:
            raise ControlError("closed", "the agent closed the connection (is it stopping?)")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise ControlError(answer.get("error", "error"), answer.get("message", ""))
        return answer.get("result")


def _idle_close(line: bytes) -> bool:
    try:
        return bool(json.loads(line).get("error") == "idle")
    except (ValueError, AttributeError):
        return False


def is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
