"""``clinic-agent buffer [export]``: what waits for the broker; ``export`` writes it as CSV.

The running agent holds its buffer file exclusively (agent.store.outbox), so while it runs both
ask it over the control socket (``summary``, ``export``); when it is stopped they read the file
themselves, read-only. ``clinic-agent events`` does the same (``with_agent``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from agent.cli.common import (
    DEFAULT_CONFIG,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PROBLEM,
    Located,
    add_common,
    add_lang,
    age,
    print_json,
)
from agent.cli.common import term as make_term
from agent.control.server import ControlClient, ControlError, NoPermission
from agent.errors import StoreBusy, StoreError
from agent.i18n import Messages
from agent.readings import StoredReading
from agent.store.outbox import BufferSummary
from agent.term import Term, ago, size

T = TypeVar("T")
EXPORT_SILENCE_S = 60.0     # an export from the agent that sends nothing for this long failed


class NoAgentAnswer(Exception):
    """The agent does not answer this request (not running, or an older agent without it)."""


def with_agent(loc: Located, ask: Callable[[ControlClient], T],
               read_file: Callable[[], T]) -> tuple[T, bool]:
    """``ask`` the running agent, or ``read_file`` when none answers; (result, agent_running).

    Raises ``StoreError`` from ``read_file``; a ``StoreBusy`` then means an agent holds the file
    but could not be asked (``unreadable`` says why, in the reader's language)."""
    try:
        client = ControlClient.connect(loc.socket, timeout=30)
    except NoPermission:
        client = None
    if client is not None:
        with client:
            try:
                return ask(client), True
            except (ControlError, NoAgentAnswer, OSError):
                pass      # an older agent (no such request) does not hold the file: read it
    return read_file(), False


def summary_of(doc: Any) -> BufferSummary:
    """The agent's answer to ``summary``; ``NoAgentAnswer`` when it is not one (fields a newer
    agent adds are left out)."""
    if not isinstance(doc, dict):
        raise NoAgentAnswer(f"not a buffer summary: {doc!r:.80}")
    try:
        return BufferSummary(**{f.name: doc[f.name] for f in dataclasses.fields(BufferSummary)
                                if f.name in doc})
    except TypeError as exc:     # a field missing
        raise NoAgentAnswer(f"not a buffer summary: {exc}") from exc


def unreadable(term: Term, loc: Located, exc: StoreError) -> int:
    """Say why the buffer could not be read, and what to do; the exit code."""
    t = term.t
    if isinstance(exc, StoreBusy):
        try:
            ControlClient.connect(loc.socket, timeout=5)
            refused = False
        except NoPermission:
            refused = True
        except OSError:
            refused = False
        if refused:
            term.print(t("buffer.held_no_permission", path=loc.buffer_path, socket=loc.socket),
                       err=True)
            term.print("  " + t("hint.no_permission"), err=True)
        else:
            term.print(t("buffer.held", path=loc.buffer_path, socket=loc.socket), err=True)
            term.print("  " + t("hint.buffer_held"), err=True)
        return EXIT_PROBLEM
    term.print(t("buffer.unreadable", path=loc.buffer_path, error=str(exc)), err=True)
    term.print("  " + t("hint.buffer_unreadable"), err=True)
    return EXIT_PROBLEM


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    add_common(p, t)
    p.set_defaults(func=cmd_buffer)
    bsub = p.add_subparsers(metavar="export", title=t("help.title.actions"))
    e = bsub.add_parser("export", help=t("help.buffer.export"), description=t("help.buffer.export"))
    e.add_argument("-c", "--config", default=argparse.SUPPRESS, metavar="FILE",
                   help=t("help.opt.config", default=DEFAULT_CONFIG))
    e.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help=t("help.opt.json"))
    add_lang(e, t)
    e.add_argument("--from", dest="start", metavar="ISO", help=t("help.export.from"))
    e.add_argument("--to", dest="end", metavar="ISO", help=t("help.export.to"))
    e.add_argument("--csv", required=True, metavar=t("help.meta.file"), help=t("help.export.csv"))
    e.add_argument("--rejected", action="store_true", help=t("help.export.rejected"))
    e.set_defaults(func=cmd_buffer_export)


def cmd_buffer(args: argparse.Namespace) -> int:
    from agent.store.outbox import summarize
    term = make_term(args)
    t = term.t
    loc = Located(args.config)
    held = 0

    def ask(client: ControlClient) -> BufferSummary:
        nonlocal held
        summary = summary_of(client.request("summary"))
        held = int(client.request("buffer").get("held_in_memory", 0))
        return summary
    try:
        summary, running = with_agent(loc, ask, lambda: summarize(loc.buffer_path))
    except StoreError as exc:
        return unreadable(term, loc, exc)
    now = time.time()
    doc: dict[str, Any] = {"path": summary.path, "depth": summary.depth,
                           "oldest_ts": summary.oldest_ts,
                           "oldest_age_s": age(now, summary.oldest_ts),
                           "dropped_total": summary.dropped_total, "rejected": summary.rejected,
                           "file_bytes": summary.file_bytes, "last_seq": summary.last_seq,
                           "agent_running": running, "held_in_memory": held}
    if args.json:
        print_json(term, doc)
        return EXIT_OK
    term.print(term.paint(t("buffer.title", path=summary.path), "bold"))
    oldest = t("buffer.oldest_value", age=ago(doc["oldest_age_s"], t),
               when=_utc(summary.oldest_ts)) if summary.oldest_ts is not None else "-"
    rows: list[list[Any]] = [
        [t("buffer.waiting"), t("buffer.readings", n=summary.depth)],
        [t("buffer.oldest"), oldest],
        [t("buffer.dropped"), t("buffer.dropped_value", n=summary.dropped_total)],
        [t("buffer.rejected"), t("buffer.rejected_value", n=summary.rejected)],
        [t("buffer.size"), size(summary.file_bytes)]]
    if doc["held_in_memory"]:
        rows.append([t("buffer.in_memory"),
                     (t("buffer.readings", n=doc["held_in_memory"]), "fail")])
    term.table(rows)
    return EXIT_OK


def _exported(client: ControlClient, start: float | None, end: float | None,
              rejected: bool) -> Iterator[tuple[StoredReading, str]]:
    """The agent's ``export`` stream. Asks at once (an older agent's refusal is raised here, not
    while the CSV is being written); raises ``StoreError`` if the stream stops before its end."""
    lines = client.stream("export", **{"from": start, "to": end, "rejected": rejected})
    first = next(lines, None)     # raises ControlError for an agent without ``export``
    client.sock.settimeout(EXPORT_SILENCE_S)    # a stream, but not one that may stall for ever

    def rows() -> Iterator[tuple[StoredReading, str]]:
        doc = first
        try:
            while doc is not None:
                if "end" in doc:
                    return
                seq, ts, device, metric, value, unit, flags, why = doc["r"]
                yield StoredReading(seq, device, metric, value, unit, ts, flags), why
                doc = next(lines, None)
        except OSError as exc:
            raise StoreError(f"the agent stopped answering ({exc})") from exc
        raise StoreError("the agent stopped sending before the export was complete")
    return rows()


def cmd_buffer_export(args: argparse.Namespace) -> int:
    from agent.store.outbox import readings_between
    term = make_term(args)
    t = term.t
    loc = Located(getattr(args, "config", DEFAULT_CONFIG))
    try:
        start = _parse_when(args.start) if args.start else None
        end = _parse_when(args.end) if args.end else None
    except ValueError as exc:
        term.print(t("export.bad_time", text=str(exc)), err=True)
        return EXIT_CONFIG
    to_stdout = args.csv == "-"
    client: ControlClient | None = None
    try:
        client = ControlClient.connect(loc.socket, timeout=30)
    except (NoPermission, OSError):
        pass
    try:
        try:
            if client is None:
                raise NoAgentAnswer
            rows = _exported(client, start, end, args.rejected)
        except (ControlError, NoAgentAnswer, OSError):
            # No agent running (or an older one, which does not hold the file): read the file.
            rows = iter(readings_between(loc.buffer_path, start, end, rejected=args.rejected))
            first = next(rows, None)      # opens the file now: an error before the CSV exists
            rows = itertools.chain([first] if first is not None else [], rows)
    except StoreError as exc:
        if client is not None:
            client.close()
        return unreadable(term, loc, exc)
    try:
        out = sys.stdout if to_stdout else \
            open(args.csv, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        if client is not None:
            client.close()
        term.print(t("buffer.unreadable", path=args.csv, error=str(exc)), err=True)
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
        term.print(t("export.incomplete", n=n, error=str(exc)), err=True)
        return EXIT_PROBLEM
    finally:
        if client is not None:
            client.close()
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
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")
