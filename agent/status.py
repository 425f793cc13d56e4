"""The agent's status: one typed model for the daemon, the control socket, ``status.json``,
remote diagnostics and the CLI.

``AgentStatus.to_doc()`` is the JSON document all of them exchange (its field names are the
contract scripts depend on: see docs/remote-management.md and the CLI's ``--json``);
``AgentStatus.from_doc()`` reads one back, tolerating fields an older agent did not send.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# What a device's ``status`` can be (poll.status, plus the CLI's unknown and disabled).
DEVICE_STATUSES = ("ok", "timeout", "refused", "bad_answer", "error", "unknown", "disabled")


@dataclass(frozen=True)
class DeviceStatus:
    """The latest outcome of one device's polls."""

    status: str = "unknown"        # ok, timeout, refused, bad_answer, error, unknown
    reason: str = ""                # in English (logs, scripts)
    # The reason as {"code": catalogue id, "args": {...}}, rendered in the reader's language.
    reason_code: dict[str, Any] | None = None
    last_poll: float | None = None
    last_ok: float | None = None
    overruns: int = 0
    kind: str = ""
    interval_s: float = 0.0
    consecutive_failures: int = 0


@dataclass
class LinkStatus:
    """The broker connection (``broker`` in the document; absent before the first attempt).
    The forwarder keeps one up to date; everyone else gets a copy."""

    connected: bool = False
    broker: str = ""
    since: float | None = None
    last_ack: float | None = None
    last_error: str = ""            # in English (logs, scripts)
    connects: int = 0
    sent_readings: int = 0
    sent_bytes: int = 0
    rejected_total: int = 0
    live_floor: int = 0
    backlog_cursor: int = 0
    backlog_kbps: float = 0.0       # the backlog limit in force: own and centre's; 0 = none
    # The last connection error as {"code": catalogue id, "args": {...}} (agent.catalogue.broker)
    last_error_code: dict[str, Any] | None = None
    attempts: int = 0               # connection attempts since start (connects counts successes)


@dataclass(frozen=True)
class BufferStatus:
    """The durable buffer, and what waits in memory while the disk refuses writes."""

    depth: int = 0
    first_seq: int | None = None
    last_seq: int = 0
    oldest_ts: float | None = None
    bytes_used: int = 0
    file_bytes: int = 0
    dropped_total: int = 0          # dropped by the caps or a full disk (on disk, ever)
    held_in_memory: int = 0
    dropped_in_memory: int = 0      # lost because the disk refused writes for too long
    path: str = ""


@dataclass(frozen=True)
class TaskState:
    """One supervised task."""

    alive: bool = True
    restarts: int = 0
    last_error: str = ""
    idle_s: float = 0.0


@dataclass(frozen=True)
class Problem:
    """A power or internet problem on now (an edge event's condition; docs/events.md)."""

    code: str                      # the condition, e.g. mains_lost, wan_down, voltage_low.l1
    device: str
    since: float                   # the clinic's own time it began
    args: dict[str, Any] = field(default_factory=dict)   # the values that raised it
    estimated: bool = False
    flapping: bool = False


@dataclass(frozen=True)
class AgentStatus:
    pid: int
    site_id: str
    boot_id: str
    written_at: float
    broker: LinkStatus | None
    buffer: BufferStatus
    devices: dict[str, DeviceStatus]
    remote: dict[str, Any]
    started_at: float = 0.0
    version: str = ""
    config_path: str | None = None
    state_dir: str = ""
    buffer_path: str = ""
    disabled: list[str] = field(default_factory=list)
    tail_dropped: int = 0
    tasks: dict[str, TaskState] = field(default_factory=dict)
    healthy: bool = True
    unhealthy_reason: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def held_in_memory(self) -> int:
        return self.buffer.held_in_memory

    def to_doc(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        # Kept at the top level too: scripts written for earlier agents read them there.
        doc["held_in_memory"] = self.buffer.held_in_memory
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> AgentStatus:
        """Read a document back (from the control socket or ``status.json``)."""
        broker = doc.get("broker")
        buffer = dict(doc.get("buffer") or {})
        buffer.setdefault("held_in_memory", doc.get("held_in_memory", 0))
        return cls(
            pid=int(doc.get("pid", 0)), site_id=str(doc.get("site_id", "")),
            boot_id=str(doc.get("boot_id", "")), written_at=float(doc.get("written_at", 0.0)),
            broker=_known(LinkStatus, broker) if isinstance(broker, dict) else None,
            buffer=_known(BufferStatus, buffer),
            devices={name: _known(DeviceStatus, d)
                     for name, d in (doc.get("devices") or {}).items()},
            remote=dict(doc.get("remote") or {}),
            started_at=float(doc.get("started_at") or 0.0), version=str(doc.get("version", "")),
            config_path=doc.get("config_path"), state_dir=str(doc.get("state_dir", "")),
            buffer_path=str(doc.get("buffer_path", "")), disabled=list(doc.get("disabled") or []),
            tail_dropped=int(doc.get("tail_dropped", 0)),
            tasks={n: _known(TaskState, t) for n, t in (doc.get("tasks") or {}).items()},
            healthy=bool(doc.get("healthy", True)),
            unhealthy_reason=str(doc.get("unhealthy_reason", "")),
            problems=[_known(Problem, p) for p in doc.get("problems") or []])


def _known(cls: type[Any], doc: dict[str, Any]) -> Any:
    """``cls`` from the fields of ``doc`` it knows (a newer agent may send more)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in doc.items() if k in names})
