"""The field technician's commands: status, doctor, poll-once, tail, buffer, scan.

    clinic-agent status | poll-once | tail | doctor
        agent running?  yes -> ask it over its control socket (agent.control): the daemon owns
                               the devices, a bus has one master
                        no  -> poll-once and doctor talk to the devices themselves
    clinic-agent buffer [export]   reads the buffer file read-only (WAL allows it beside the agent)
    clinic-agent scan modbus|snmp  probes devices that are not configured yet (agent.scan)

Every message comes from one catalogue (agent.i18n), in Spanish when the locale is Spanish;
``--json`` gives the same facts to scripts. Exit codes: 0 fine, 1 something is wrong, 2 usage
or config.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, load_config, parse_toml_text
from agent.diagnose.doctor import device_hint
from agent.control.server import (ControlClient, ControlError, NoPermission, SOCKET_NAME, poll_result,
                      socket_path)
from agent.errors import ConfigError, StoreError
from agent.term import Term, ago, size

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2
DEFAULT_STATE_DIR = "/var/lib/clinic-agent"
STATUS_MARK = {"ok": "ok", "warn": "warn", "fail": "fail", "skip": "skip"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the technician's subcommands to ``clinic-agent``'s parser."""
    from agent.cli import DEFAULT_CONFIG

    def common(p: argparse.ArgumentParser, *, config: bool = True) -> argparse.ArgumentParser:
        if config:
            p.add_argument("-c", "--config", default=DEFAULT_CONFIG)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = common(sub.add_parser("status", help="is everything working? (exit 1 if not)"))
    p.set_defaults(func=cmd_status)

    p = common(sub.add_parser("doctor", help="check config, network, broker, TLS, login and "
                                             "devices step by step, with hints"))
    p.set_defaults(func=cmd_doctor)

    p = common(sub.add_parser("poll-once", help="poll devices once and print what they answer "
                                                "(through the agent when it runs)"))
    p.add_argument("device", nargs="?", help="only this device (default: all)")
    p.set_defaults(func=cmd_poll_once)

    p = common(sub.add_parser("tail", help="show readings live as the agent polls them "
                                           "(Ctrl-C stops)"))
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="only these devices")
    p.set_defaults(func=cmd_tail)

    p = common(sub.add_parser("buffer", help="readings waiting for the broker: depth, age, "
                                             "drops; 'buffer export' to CSV"))
    p.set_defaults(func=cmd_buffer)
    bsub = p.add_subparsers(metavar="export")
    e = bsub.add_parser("export", help="export buffered readings of a time range to CSV")
    e.add_argument("-c", "--config", default=argparse.SUPPRESS)
    e.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    e.add_argument("--from", dest="start", metavar="ISO", help="from this time (local unless "
                                                               "it has a zone, e.g. 2026-11-20T08:00)")
    e.add_argument("--to", dest="end", metavar="ISO", help="up to (not including) this time")
    e.add_argument("--csv", required=True, metavar="FILE", help="CSV file to write, - for stdout")
    e.add_argument("--rejected", action="store_true",
                   help="export the readings the broker refused (set aside) instead")
    e.set_defaults(func=cmd_buffer_export)

    p = sub.add_parser("scan", help="find Modbus units on a bus, or an SNMP agent")
    ssub = p.add_subparsers(metavar="modbus|snmp")
    m = common(ssub.add_parser("modbus", help="try baud rates, parities and unit ids on a "
                                              "serial port, or unit ids behind a TCP gateway"))
    where = m.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", dest="serial_port", metavar="DEV", help="serial port, e.g. "
                                                                         "/dev/ttyUSB0")
    where.add_argument("--host", help="Modbus TCP gateway address")
    m.add_argument("--tcp-port", type=int, default=502, help="gateway port (default 502)")
    m.add_argument("--rtu-over-tcp", action="store_true",
                   help="the gateway passes RTU frames through (a plain serial server)")
    m.add_argument("--baud", default=None, help="baud rates to try, e.g. 9600,19200 "
                                                "(default: the common ones)")
    m.add_argument("--parity", default=None, help="parities to try, e.g. N,E (default N,E,O)")
    m.add_argument("--units", default="1-247", help="unit ids, e.g. 1-10,100 (default 1-247)")
    m.add_argument("--timeout", type=float, default=None,
                   help="seconds to wait per unit (default 0.15 serial, 0.3 TCP)")
    m.add_argument("--all-settings", action="store_true",
                   help="keep trying line settings after one got answers")
    m.set_defaults(func=cmd_scan_modbus)
    s = common(ssub.add_parser("snmp", help="probe a router's SNMP agent (default: the "
                                            "default gateway) with common communities"))
    s.add_argument("--target", help="address to probe (default: the default gateway)")
    s.add_argument("--port", type=int, default=161)
    s.add_argument("--community", action="append", default=[],
                   help="community to try (repeatable; the configured ones and public, "
                        "private are tried too)")
    s.add_argument("--timeout", type=float, default=1.0, help="seconds per attempt")
    s.set_defaults(func=cmd_scan_snmp)


# -- shared ------------------------------------------------------------------------------------

def _term() -> Term:
    # The CLI is the edge: the environment is read here and nowhere below.
    return Term.from_env(os.environ, sys.stdout, sys.stderr)


def _print_json(term: Term, doc: Any) -> None:
    term.print(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


class Located:
    """Where things are, from the config file; from its raw TOML when it does not validate."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.cfg: AgentConfig | None = None
        self.problems: list[str] = []
        try:
            self.cfg = load_config(config_path)
        except ConfigError as exc:
            self.problems = exc.problems
        raw = self._raw() if self.cfg is None else {}
        cfg = self.cfg
        self.state_dir = cfg.state_dir if cfg else str(raw.get("state_dir") or DEFAULT_STATE_DIR)
        self.socket = socket_path(cfg) if cfg else \
            str(raw.get("control_socket") or os.path.join(self.state_dir, SOCKET_NAME))
        buf = raw.get("buffer") if isinstance(raw.get("buffer"), dict) else {}
        self.buffer_path = cfg.buffer.path if cfg else \
            str(buf.get("path") or os.path.join(self.state_dir, "buffer.sqlite"))

    def _raw(self) -> dict[str, Any]:
        try:
            data = parse_toml_text(Path(self.config_path).read_text(encoding="utf-8"),
                                   source=self.config_path)
        except (OSError, UnicodeDecodeError, ConfigError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, (str, dict))}


def _connect(term: Term, loc: Located) -> tuple[ControlClient | None, int | None]:
    """The running agent, or None; an exit code when it is there but out of reach."""
    try:
        return ControlClient.connect(loc.socket, timeout=15), None
    except NoPermission:
        term.print(term.t("agent.no_permission", path=loc.socket), err=True)
        term.print("  " + term.t("hint.no_permission"), err=True)
        return None, EXIT_PROBLEM


def _config_or_exit(term: Term, loc: Located) -> AgentConfig | None:
    if loc.cfg is None:
        term.print(term.t("config.invalid", path=loc.config_path, n=len(loc.problems)), err=True)
        for problem in loc.problems:
            term.print(f"  {problem}", err=True)
    return loc.cfg


# -- status ------------------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    term = _term()
    t = term.t
    loc = Located(args.config)
    doc: dict[str, Any] = {"site": loc.cfg.site_id if loc.cfg else None,
                           "agent": {"running": False, "socket": loc.socket},
                           "broker": None, "buffer": None, "devices": [],
                           "config": _config_state(loc), "problems": []}
    problems: list[tuple[str, str | None]] = []   # (message, hint)
    snap = None
    try:
        client = ControlClient.connect(loc.socket, timeout=15)
    except NoPermission:
        client = None
        problems.append((t("agent.no_permission", path=loc.socket), t("hint.no_permission")))
    if client is not None:
        with client:
            try:
                snap = client.request("status")
            except (ControlError, OSError) as exc:
                problems.append((t("status.agent_error", error=str(exc)), None))
    now = time.time()
    if snap is not None:
        doc["site"] = snap.get("site_id") or doc["site"]
        doc["agent"].update(running=True, pid=snap.get("pid"),
                            uptime_s=round(now - snap["started_at"], 1) if snap.get("started_at") else None)
        link = snap.get("broker") or {}
        doc["broker"] = {"connected": bool(link.get("connected")), "broker": link.get("broker", ""),
                         "since": link.get("since"), "last_error": link.get("last_error", ""),
                         "last_publish": link.get("last_ack"),
                         "last_publish_age_s": _age(now, link.get("last_ack"))}
        buf = snap.get("buffer") or {}
        doc["buffer"] = {"depth": buf.get("depth", 0), "oldest_age_s": _age(now, buf.get("oldest_ts")),
                         "dropped_total": buf.get("dropped_total", 0),
                         "file_bytes": buf.get("file_bytes", 0),
                         "held_in_memory": snap.get("held_in_memory", 0)}
        for name, d in snap.get("devices", {}).items():
            doc["devices"].append({"name": name, "kind": d.get("kind", ""), "status": d["status"],
                                   "reason": d.get("reason", ""), "last_ok": d.get("last_ok"),
                                   "last_ok_age_s": _age(now, d.get("last_ok")),
                                   "last_poll_age_s": _age(now, d.get("last_poll"))})
        for name in snap.get("disabled", []):
            doc["devices"].append({"name": name, "kind": "", "status": "disabled", "reason": "",
                                   "last_ok": None, "last_ok_age_s": None, "last_poll_age_s": None})
        if not link.get("connected"):
            problems.append((t("status.problem.broker", error=link.get("last_error") or "-"),
                             t("hint.agent_disconnected")))
        for d in doc["devices"]:
            if d["status"] not in ("ok", "disabled", "unknown"):
                problems.append((t("status.problem.device", device=d["name"], status=d["status"],
                                   reason=d["reason"]), t(device_hint(d["kind"], d["status"]))))
        if snap.get("held_in_memory"):
            problems.append((t("status.problem.store", n=snap["held_in_memory"]), None))
    elif client is None and not problems:
        problems.append((t("status.problem.not_running"), t("hint.agent_stopped")))
    if doc["buffer"] is None or snap is not None:
        try:
            summary = _buffer_summary(loc.buffer_path)
        except StoreError:
            summary = None
        if summary is not None:
            if doc["buffer"] is None:
                doc["buffer"] = {"depth": summary.depth,
                                 "oldest_age_s": _age(now, summary.oldest_ts),
                                 "dropped_total": summary.dropped_total,
                                 "file_bytes": summary.file_bytes, "held_in_memory": 0}
            doc["buffer"]["rejected"] = summary.rejected
    if loc.problems:
        problems.append((t("status.problem.config", path=loc.config_path, n=len(loc.problems)),
                         t("hint.config")))
    doc["problems"] = [p for p, _ in problems]
    doc["ok"] = not problems
    if args.json:
        _print_json(term, doc)
    else:
        _render_status(term, doc, problems)
    return EXIT_OK if not problems else EXIT_PROBLEM


def _config_state(loc: Located) -> dict[str, Any]:
    """Which configuration is in effect: the local file, or a pushed version (agent.remote)."""
    state: dict[str, Any] = {"file": loc.config_path, "valid": loc.cfg is not None,
                             "problems": loc.problems, "source": "local", "version": None,
                             "state": "local"}
    try:
        remote = json.loads((Path(loc.state_dir) / "remote_state.json").read_text())
    except (OSError, ValueError):
        return state
    if not isinstance(remote, dict):
        return state
    active = remote.get("active") if isinstance(remote.get("active"), dict) else None
    state["highest_version"] = remote.get("highest_version")
    if active:
        state.update(source="pushed", version=active.get("version"),
                     applied_at=active.get("applied_at"),
                     state="confirming" if remote.get("confirming") else "applied")
    if isinstance(remote.get("set_aside"), dict):
        state["set_aside_version"] = remote["set_aside"].get("version")
    return state


def _render_status(term: Term, doc: dict[str, Any], problems: list[tuple[str, str | None]]) -> None:
    t = term.t
    term.print(term.paint(t("status.title", site=doc["site"] or "?"), "bold"))
    rows: list[list[Any]] = []
    agent = doc["agent"]
    if agent["running"]:
        rows.append([t("status.agent"), t("status.agent.running", pid=agent.get("pid"),
                                            up=ago(agent.get("uptime_s"), t)), _mark(term, "ok")])
    else:
        rows.append([t("status.agent"), t("status.agent.stopped"), _mark(term, "fail")])
    broker = doc["broker"]
    if broker is not None:
        if broker["connected"]:
            rows.append([t("status.broker"), t("status.broker.connected", broker=broker["broker"]),
                         _mark(term, "ok")])
        else:
            rows.append([t("status.broker"), t("status.broker.disconnected",
                                                error=broker["last_error"] or "-"),
                         _mark(term, "fail")])
        last = broker["last_publish_age_s"]
        rows.append([t("status.last_publish"),
                     t("time.ago", when=ago(last, t)) if last is not None else t("time.never"), ""])
    buf = doc["buffer"]
    if buf is not None:
        if buf["depth"]:
            text = t("status.buffer.value", n=buf["depth"], oldest=ago(buf["oldest_age_s"], t),
                     dropped=buf["dropped_total"], size=size(buf["file_bytes"]))
        else:
            text = t("status.buffer.empty", dropped=buf["dropped_total"],
                     size=size(buf["file_bytes"]))
        if buf.get("rejected"):
            text += "; " + t("status.buffer.rejected", n=buf["rejected"])
        rows.append([t("status.buffer"), text, ""])
    cfg = doc["config"]
    if cfg["source"] == "pushed":
        text = t("status.config.pushed", version=cfg["version"], state=t(f"status.config.{cfg['state']}"))
    else:
        text = t("status.config.local", path=cfg["file"])
    rows.append([t("status.config"), text, _mark(term, "ok" if cfg["valid"] else "fail")])
    term.table(rows)
    if doc["devices"]:
        term.print(term.paint(t("status.devices"), "bold"))
        drows = []
        for d in doc["devices"]:
            style = "ok" if d["status"] == "ok" else "skip" if d["status"] == "disabled" else "fail"
            last = t("time.ago", when=ago(d["last_ok_age_s"], t)) if d["last_ok_age_s"] is not None \
                else t("time.never")
            drows.append([d["name"], d["kind"], (d["status"], style),
                          last if d["status"] != "disabled" else "-", d["reason"]])
        term.table(drows, header=[t("col.device"), t("col.kind"), t("col.status"),
                                  t("col.last_good"), t("col.reason")])
    term.print()
    if not problems:
        term.print(term.paint(t("status.all_ok"), "ok"))
        return
    term.print(term.paint(t("status.problems", n=len(problems)), "fail"))
    for message, hint in problems:
        term.print(f"  - {message}")
        if hint:
            term.print(f"    {term.paint(t('hint.label'), 'warn')} {hint}")


def _mark(term: Term, status: str) -> tuple[str, str]:
    return (term.t(f"mark.{status}"), STATUS_MARK.get(status, status))


def _age(now: float, ts: float | None) -> float | None:
    return None if ts is None else round(now - ts, 1)


# -- poll-once ---------------------------------------------------------------------------------

def cmd_poll_once(args: argparse.Namespace) -> int:
    term = _term()
    t = term.t
    loc = Located(args.config)
    client, code = _connect(term, loc)
    if code is not None:
        return code
    if client is not None:
        with client:
            try:
                results = client.request("poll_once", device=args.device, timeout=_poll_timeout(loc))
            except ControlError as exc:
                term.print(t("poll.agent_refused", error=str(exc)), err=True)
                return EXIT_CONFIG if exc.code == "unknown_device" else EXIT_PROBLEM
        via = "agent"
    else:
        cfg = _config_or_exit(term, loc)
        if cfg is None:
            return EXIT_CONFIG
        devices = [d for d in cfg.devices if args.device in (None, d.name)]
        if not devices:
            term.print(t("poll.no_device", device=args.device,
                         names=", ".join(d.name for d in cfg.devices)), err=True)
            return EXIT_CONFIG
        results = poll_directly(cfg, devices)
        via = "direct"
    if args.json:
        _print_json(term, results)
    else:
        term.print(term.paint(t(f"poll.via.{via}"), "dim"))
        term.print()
        _render_poll(term, results)
    return EXIT_OK if all(r["status"] == "ok" for r in results) else EXIT_PROBLEM


def _poll_timeout(loc: Located) -> float:
    from agent.runtime.poller import hard_deadline
    devices = loc.cfg.devices if loc.cfg else ()
    return max((hard_deadline(d) for d in devices), default=60.0) * 2 + 10


def poll_directly(cfg: AgentConfig, devices: list) -> list[dict[str, Any]]:
    """Poll ``devices`` from this process (only when the agent is not running)."""
    # Sources log what they find once; the result already says it, keep the terminal clean.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(message)s")
    return asyncio.run(_poll_devices(cfg, devices))


async def _poll_devices(cfg: AgentConfig, devices) -> list[dict[str, Any]]:
    from agent.clock import ClockGuard
    from agent.runtime.poller import poll_once
    from agent.sources.factory import SourceFactory
    factory = SourceFactory(state_dir=cfg.state_dir)
    clock = ClockGuard()
    sources = [factory.build(d) for d in devices]
    try:
        outcomes = await asyncio.gather(*(poll_once(d, s, clock) for d, s in zip(devices, sources)))
    finally:
        for s in sources:
            await s.close()
        await factory.close()
    return [poll_result(d, readings) for d, (readings, _, _) in zip(devices, outcomes)]


def _render_poll(term: Term, results: list[dict[str, Any]]) -> None:
    for res in results:
        style = "ok" if res["status"] == "ok" else "fail"
        head = f"{term.paint(res['device'], 'bold')} ({res['kind']}): " \
               f"{term.paint(res['status'].upper(), style)}"
        if res["reason"]:
            head += f" - {res['reason']}"
        term.print(head)
        rows = [[r["metric"], f"{_fmt(r['value'], term)} {r['unit']}".rstrip()]
                for r in res["readings"] if not r["metric"].startswith("poll.")]
        term.table(rows)
        term.print()


def _fmt(v: Any, term: Term) -> str:
    if isinstance(v, bool):
        return term.t("value.yes") if v else term.t("value.no")
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


# -- tail --------------------------------------------------------------------------------------

def cmd_tail(args: argparse.Namespace) -> int:
    term = _term()
    t = term.t
    loc = Located(args.config)
    client, code = _connect(term, loc)
    if code is not None:
        return code
    if client is None:
        term.print(t("tail.not_running"), err=True)
        term.print("  " + t("hint.agent_stopped"), err=True)
        return EXIT_PROBLEM
    with client:
        known = list((client.request("status").get("devices") or {}).keys())
        unknown = [d for d in args.devices if d not in known]
        if unknown:
            term.print(t("poll.no_device", device=", ".join(unknown), names=", ".join(known)),
                       err=True)
            return EXIT_CONFIG
        width = max((len(n) for n in (args.devices or known)), default=6)
        if not args.json:
            term.print(term.paint(t("tail.header"), "dim"), err=True)
        try:
            for msg in client.stream("tail", devices=args.devices or None):
                r = msg.get("reading")
                if r is None:
                    continue
                if args.json:
                    term.print(json.dumps(r, ensure_ascii=False, default=str))
                else:
                    term.print(_tail_line(term, r, width))
        except KeyboardInterrupt:
            if not args.json:
                term.print("", err=True)
            return EXIT_OK
        except (ControlError, OSError):
            pass
    term.print(t("tail.agent_stopped"), err=True)
    return EXIT_PROBLEM


def _tail_line(term: Term, r: dict[str, Any], width: int) -> str:
    when = datetime.fromtimestamp(r["ts"]).strftime("%H:%M:%S")
    value = f"{_fmt(r['value'], term)} {r['unit']}".rstrip()
    if r["metric"] == "poll.status":
        value = term.paint(value, "ok" if r["value"] == "ok" else "fail")
    elif r["metric"] == "poll.reason":
        value = term.paint(value, "warn")
    return f"{term.paint(when, 'dim')}  {r['device']:<{width}}  {r['metric']:<28}  {value}"


# -- buffer ------------------------------------------------------------------------------------

def _buffer_summary(path: str):
    from agent.store.outbox import summarize
    return summarize(path)


def cmd_buffer(args: argparse.Namespace) -> int:
    term = _term()
    t = term.t
    loc = Located(args.config)
    try:
        summary = _buffer_summary(loc.buffer_path)
    except StoreError as exc:
        term.print(t("buffer.unreadable", path=loc.buffer_path, error=str(exc)), err=True)
        term.print("  " + t("hint.buffer_unreadable"), err=True)
        return EXIT_PROBLEM
    now = time.time()
    doc: dict[str, Any] = {"path": summary.path, "depth": summary.depth,
                           "oldest_ts": summary.oldest_ts,
                           "oldest_age_s": _age(now, summary.oldest_ts),
                           "dropped_total": summary.dropped_total, "rejected": summary.rejected,
                           "file_bytes": summary.file_bytes, "last_seq": summary.last_seq,
                           "agent_running": False, "held_in_memory": 0}
    try:
        client = ControlClient.connect(loc.socket, timeout=10)
    except NoPermission:
        client = None
    if client is not None:
        with client:
            try:
                live = client.request("buffer")
                doc.update(agent_running=True, held_in_memory=live.get("held_in_memory", 0))
            except (ControlError, OSError):
                pass
    if args.json:
        _print_json(term, doc)
        return EXIT_OK
    term.print(term.paint(t("buffer.title", path=summary.path), "bold"))
    oldest = t("buffer.oldest_value", age=ago(doc["oldest_age_s"], t),
               when=_utc(summary.oldest_ts)) if summary.oldest_ts is not None else "-"
    rows = [[t("buffer.waiting"), t("buffer.readings", n=summary.depth)],
            [t("buffer.oldest"), oldest],
            [t("buffer.dropped"), t("buffer.dropped_value", n=summary.dropped_total)],
            [t("buffer.rejected"), t("buffer.rejected_value", n=summary.rejected)],
            [t("buffer.size"), size(summary.file_bytes)]]
    if doc["held_in_memory"]:
        rows.append([t("buffer.in_memory"), (t("buffer.readings", n=doc["held_in_memory"]), "fail")])
    term.table(rows)
    return EXIT_OK


def cmd_buffer_export(args: argparse.Namespace) -> int:
    from agent.cli import DEFAULT_CONFIG
    from agent.store.outbox import readings_between
    term = _term()
    t = term.t
    loc = Located(getattr(args, "config", DEFAULT_CONFIG))
    try:
        start = _parse_when(args.start) if args.start else None
        end = _parse_when(args.end) if args.end else None
    except ValueError as exc:
        term.print(t("export.bad_time", text=str(exc)), err=True)
        return EXIT_CONFIG
    to_stdout = args.csv == "-"
    try:
        rows = readings_between(loc.buffer_path, start, end, rejected=args.rejected)
        out = sys.stdout if to_stdout else open(args.csv, "w", newline="", encoding="utf-8")
    except (StoreError, OSError) as exc:
        term.print(t("buffer.unreadable", path=loc.buffer_path if isinstance(exc, StoreError)
                     else args.csv, error=str(exc)), err=True)
        return EXIT_PROBLEM
    n = 0
    try:
        writer = csv.writer(out)
        header = ["seq", "time_utc", "ts", "device", "metric", "value", "unit", "flags"]
        writer.writerow(header + (["why"] if args.rejected else []))
        for reading, why in rows:
            value = reading.value
            if isinstance(value, bool):
                value = "true" if value else "false"
            row = [reading.seq, _utc_iso(reading.ts), f"{reading.ts:.3f}", reading.device,
                   reading.metric, "" if value is None else value, reading.unit, reading.flags]
            writer.writerow(row + ([why] if args.rejected else []))
            n += 1
    except StoreError as exc:
        term.print(t("buffer.unreadable", path=loc.buffer_path, error=str(exc)), err=True)
        return EXIT_PROBLEM
    finally:
        if not to_stdout:
            out.close()
        else:
            out.flush()
    if getattr(args, "json", False):
        term.print(json.dumps({"exported": n, "csv": args.csv}), err=to_stdout)
    else:
        term.print(t("export.done", n=n, file=args.csv if not to_stdout else "stdout"), err=True)
    return EXIT_OK


def _parse_when(text: str) -> float:
    """ISO 8601 date or date-time; without a zone it is the PC's local time."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(text) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.timestamp()


def _utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


# -- doctor ------------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.diagnose import doctor
    term = _term()
    t = term.t
    checks = []
    if not args.json:
        term.print(term.paint(t("doctor.title"), "bold"))
    loc = Located(args.config)
    for check in doctor.run(args.config, poll_direct=poll_directly,
                            fallback_socket=lambda: loc.socket):
        checks.append(check)
        if not args.json:
            _render_check(term, check)
    failed = [c for c in checks if c.status == "fail"]
    if args.json:
        _print_json(term, {"ok": not failed, "checks": [
            {"step": c.step, "subject": c.subject, "status": c.status, "id": c.msg,
             "message": t(c.msg, **c.params), "details": c.details,
             "hint_id": c.hint, "hint": t(c.hint, **c.params) if c.hint else None}
            for c in checks]})
    else:
        term.print()
        if failed:
            term.print(term.paint(t("doctor.failed", n=len(failed)), "fail"))
        else:
            term.print(term.paint(t("doctor.all_ok"), "ok"))
    return EXIT_PROBLEM if failed else EXIT_OK


def _render_check(term: Term, check) -> None:
    t = term.t
    mark = f"[{t(f'mark.{check.status}')}]"
    label = t(f"step.{check.step}")
    # Padded as plain text, then painted: escape codes take no room on the screen.
    term.print(f"  {term.paint(mark, STATUS_MARK[check.status])}{' ' * (10 - len(mark))} "
               f"{label:<12} {t(check.msg, **check.params)}")
    indent = " " * 16
    for detail in check.details:
        term.print(f"{indent}{detail}")
    if check.hint and check.status in ("fail", "warn"):
        term.print(f"{indent}{term.paint(t('hint.label'), 'warn')} {t(check.hint, **check.params)}")


# -- scan --------------------------------------------------------------------------------------

def cmd_scan_modbus(args: argparse.Namespace) -> int:
    from agent.diagnose import scan
    from agent.sources.modbus_link import BusParams
    term = _term()
    t = term.t
    try:
        units = scan.parse_units(args.units)
        bauds = tuple(int(b) for b in args.baud.split(",")) if args.baud else scan.COMMON_BAUDRATES
        parities = tuple(p.strip().upper() for p in args.parity.split(",")) if args.parity \
            else scan.COMMON_PARITIES
        if not units or any(p not in ("N", "E", "O") for p in parities):
            raise ValueError(args.units)
    except ValueError:
        term.print(t("scan.bad_args"), err=True)
        return EXIT_CONFIG
    loc = Located(args.config)
    busy = _bus_in_use(loc, args)
    if busy == "serial":
        term.print(t("scan.modbus.port_busy", port=args.serial_port), err=True)
        term.print("  " + t("hint.scan_port_busy"), err=True)
        return EXIT_PROBLEM
    if busy == "tcp" and not args.json:
        term.print(term.paint(t("scan.modbus.gateway_shared", where=f"{args.host}:{args.tcp_port}"),
                              "warn"), err=True)
    if args.serial_port:
        if not os.path.exists(args.serial_port):
            term.print(t("scan.modbus.no_port", port=args.serial_port,
                         ports=", ".join(scan.serial_ports()) or "-"), err=True)
            return EXIT_PROBLEM
        settings = scan.serial_settings(args.serial_port, bauds, parities)
        timeout = args.timeout or 0.15
    else:
        transport = "rtu_over_tcp" if args.rtu_over_tcp else "tcp"
        settings = [BusParams(transport, host=args.host, port=args.tcp_port)]
        timeout = args.timeout or 0.3
    if not args.json:
        term.print(term.paint(t("scan.modbus.title", where=settings[0].where, n=len(units),
                                settings=len(settings)), "bold"))
    bar = term.progress(len(settings) * len(units))
    try:
        result = asyncio.run(scan.scan_modbus(settings, units, timeout=timeout,
                                              progress=lambda d, n, text: bar.update(d, text, n),
                                              all_settings=args.all_settings))
    except KeyboardInterrupt:
        bar.done()
        term.print(t("scan.interrupted"), err=True)
        return 130
    bar.done()
    comments = {"registers": t("scan.modbus.registers_comment")}
    entries = {f.unit: scan.modbus_entry(f, name=f"modbus-{f.unit}", comments=comments)
               for f in result.found}
    if args.json:
        _print_json(term, {"where": result.where, "transport": result.transport,
                           "tried": result.tried, "noise": result.noise, "error": result.error,
                           "unsupported": result.unsupported,
                           "found": [{"unit": f.unit, "line": f.params.line if f.params.is_serial
                                      else None, "table": f.table, "address": f.address,
                                      "value": f.value, "exception": f.exception,
                                      "suggested_entry": entries[f.unit]} for f in result.found]})
        return EXIT_OK if result.found else EXIT_PROBLEM
    if result.error:
        term.print(term.paint(t("scan.modbus.cannot_open", where=result.where, error=result.error),
                              "fail"))
        return EXIT_PROBLEM
    term.print(t("scan.modbus.tried", settings=", ".join(result.tried)))
    if result.unsupported:
        term.print(term.paint(t("scan.modbus.unsupported", settings="; ".join(result.unsupported)),
                              "warn"))
    if not result.found:
        term.print(term.paint(t("scan.modbus.nothing"), "fail"))
        if result.noise:
            term.print("  " + t("scan.modbus.noise", settings=", ".join(result.noise)))
        term.print(f"  {term.paint(t('hint.label'), 'warn')} "
                   + t("hint.scan_modbus_serial" if args.serial_port else "hint.scan_modbus_tcp"))
        return EXIT_PROBLEM
    term.print(term.paint(t("scan.modbus.found", n=len(result.found)), "ok"))
    serial = bool(args.serial_port)
    rows = []
    for f in result.found:
        answer = t("scan.modbus.value", table=t(f"table.{f.table}"), address=f.address,
                   value=f.value) if f.table else t("scan.modbus.exception", exception=f.exception)
        rows.append([str(f.unit), f.params.line, answer] if serial else [str(f.unit), answer])
    term.table(rows, header=[t("col.unit"), t("col.line"), t("col.answer")] if serial
               else [t("col.unit"), t("col.answer")])
    term.print()
    term.print(t("scan.suggest"))
    for f in result.found:
        term.print()
        term.print(entries[f.unit].rstrip())
    return EXIT_OK


def _bus_in_use(loc: Located, args: argparse.Namespace) -> str | None:
    """"serial" if the running agent polls this serial port (a second master is not allowed),
    "tcp" if it polls this gateway (allowed, but they share it)."""
    if loc.cfg is None:
        return None
    mine = [d.settings for d in loc.cfg.devices if d.kind == "modbus" and d.enabled]
    if args.serial_port:
        target = os.path.realpath(args.serial_port)
        used = any(s.serial_port and os.path.realpath(s.serial_port) == target for s in mine)
    else:
        used = any(s.host == args.host and s.port == args.tcp_port for s in mine)
    if not used:
        return None
    try:
        client = ControlClient.connect(loc.socket, timeout=5)
    except NoPermission:
        client = None
        running = True   # it is there: assume the worst
    else:
        running = client is not None
        if client is not None:
            client.close()
    if not running:
        return None
    return "serial" if args.serial_port else "tcp"


def cmd_scan_snmp(args: argparse.Namespace) -> int:
    from agent.diagnose import scan
    term = _term()
    t = term.t
    target = args.target or scan.default_gateway()
    if not target:
        term.print(t("scan.snmp.no_gateway"), err=True)
        return EXIT_CONFIG
    loc = Located(args.config)
    configured = []
    if loc.cfg is not None:
        for d in loc.cfg.devices:
            community = getattr(d.settings, "community", None) if d.kind == "snmp" else None
            if community is not None:
                configured.append(community.reveal())
    communities = list(dict.fromkeys([*args.community, *configured, *scan.COMMON_COMMUNITIES]))
    if not args.json:
        term.print(term.paint(t("scan.snmp.title", target=target, port=args.port,
                                n=len(communities)), "bold"))
    bar = term.progress(len(communities) * 2 + 1)
    try:
        result = asyncio.run(scan.scan_snmp(target, args.port, communities, timeout=args.timeout,
                                            progress=lambda d, n, text: bar.update(d, text)))
    except KeyboardInterrupt:
        bar.done()
        term.print(t("scan.interrupted"), err=True)
        return 130
    bar.done()
    comments = {"community": t("scan.snmp.community_comment")}
    suggestions = [scan.snmp_entry(f, host=target, port=args.port, name="router", comments=comments)
                   for f in result.found[:1]]
    if args.json:
        _print_json(term, {"target": target, "port": args.port, "error": result.error,
                           "v3": result.v3, "found": [
                               {"version": f.version, "community": f.community,
                                "sys_name": f.sys_name, "sys_descr": f.sys_descr,
                                "sys_object_id": f.sys_object_id, "uptime_s": f.uptime_s}
                               for f in result.found],
                           "suggested_entry": suggestions[0][0] if suggestions else None,
                           "suggested_secrets": suggestions[0][1] if suggestions else None})
        return EXIT_OK if result.found else EXIT_PROBLEM
    if result.error:
        term.print(term.paint(t("scan.snmp.error", error=result.error), "fail"))
        return EXIT_PROBLEM
    if result.found:
        term.print(term.paint(t("scan.snmp.found", n=len(result.found)), "ok"))
        term.table([[f"v{f.version}", f.community, f.sys_name or "-", f.sys_descr or "-"]
                    for f in result.found],
                   header=[t("col.version"), t("col.community"), "sysName", "sysDescr"])
    else:
        term.print(term.paint(t("scan.snmp.nothing", tried=len(communities)), "fail"))
    if result.v3 is not None:
        term.print(t("scan.snmp.v3_yes" if result.v3 else "scan.snmp.v3_no"))
    if not result.found:
        term.print(f"  {term.paint(t('hint.label'), 'warn')} {t('hint.scan_snmp')}")
        return EXIT_PROBLEM
    if any(f.community == "public" for f in result.found):
        term.print(term.paint(t("scan.snmp.public_warning"), "warn"))
    entry, secret = suggestions[0]
    term.print()
    term.print(t("scan.suggest"))
    term.print()
    term.print(entry.rstrip())
    term.print()
    term.print(t("scan.snmp.secrets_part"))
    term.print()
    term.print(secret.rstrip())
    return EXIT_OK
