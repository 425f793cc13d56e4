"""``clinic-agent poll-once [DEVICE]``: poll the devices once and print what they answer.

Through the running agent when there is one (it owns the devices: a bus has one master), else
directly from this process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from agent.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PROBLEM,
    Located,
    add_common,
    config_or_exit,
    connect,
    fmt_value,
    print_json,
)
from agent.cli.common import term as make_term
from agent.cli.status import reason_of, status_word
from agent.config import AgentConfig, DeviceConfig
from agent.control.server import ControlError, poll_result
from agent.i18n import Messages
from agent.term import Term


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    add_common(p, t)
    p.add_argument("device", nargs="?", metavar=t("help.meta.device"), help=t("help.poll.device"))
    p.set_defaults(func=cmd_poll_once)


def cmd_poll_once(args: argparse.Namespace) -> int:
    term = make_term(args)
    t = term.t
    loc = Located(args.config)
    client, code = connect(term, loc)
    if code is not None:
        return code
    if client is not None:
        with client:
            try:
                results = client.request(
                    "poll_once", device=args.device, timeout=_poll_timeout(loc))
            except ControlError as exc:
                term.print(t("poll.agent_refused", error=str(exc)), err=True)
                return EXIT_CONFIG if exc.code == "unknown_device" else EXIT_PROBLEM
        via = "agent"
    else:
        cfg = config_or_exit(term, loc)
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
        print_json(term, results)
    else:
        term.print(term.paint(t(f"poll.via.{via}"), "dim"))
        term.print()
        _render_poll(term, results)
    return EXIT_OK if all(r["status"] == "ok" for r in results) else EXIT_PROBLEM


def _poll_timeout(loc: Located) -> float:
    from agent.runtime.poller import hard_deadline
    devices = loc.cfg.devices if loc.cfg else ()
    return max((hard_deadline(d) for d in devices), default=60.0) * 2 + 10


def poll_directly(cfg: AgentConfig, devices: list[DeviceConfig[Any]]) -> list[dict[str, Any]]:
    """Poll ``devices`` from this process (only when the agent is not running)."""
    # Sources log what they find once; the result already says it, keep the terminal clean.
    logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr,
                        format="%(levelname)s %(message)s")
    return asyncio.run(_poll_devices(cfg, devices))


async def _poll_devices(cfg: AgentConfig, devices: list[DeviceConfig[Any]]) -> list[dict[str, Any]]:
    from agent.clock import ClockGuard
    from agent.runtime.poller import poll_once
    from agent.sources.factory import SourceFactory
    factory = SourceFactory(state_dir=cfg.state_dir)
    clock = ClockGuard()
    sources = [factory.build(d) for d in devices]
    try:
        # gather keeps order and length, so each device meets its own source and outcome
        pairs = zip(devices, sources, strict=True)
        outcomes = await asyncio.gather(*(poll_once(d, s, clock) for d, s in pairs))
    finally:
        for s in sources:
            await s.close()
        await factory.close()
    return [poll_result(d, outcome.readings)
            for d, outcome in zip(devices, outcomes, strict=True)]


def _render_poll(term: Term, results: list[dict[str, Any]]) -> None:
    for res in results:
        style = "ok" if res["status"] == "ok" else "fail"
        head = f"{term.paint(res['device'], 'bold')} ({res['kind']}): " \
               f"{term.paint(status_word(res['status'], term.t).upper(), style)}"
        reason = reason_of(res, term.t)
        if reason:
            head += f" - {reason}"
        term.print(head)
        rows = [[r["metric"], f"{fmt_value(r['value'], term)} {r['unit']}".rstrip()]
                for r in res["readings"] if not r["metric"].startswith("poll.")]
        term.table(rows)
        term.print()
