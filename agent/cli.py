"""``clinic-agent``: run the daemon, validate a config, poll devices once.

Exit codes: 0 fine, 1 something is wrong (a device failing, ...), 2 the config is invalid or the
command line is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any, Sequence

from . import __version__, cli_config, cli_fleet
from .clock import ClockGuard
from .config import AgentConfig, load_config
from .errors import ConfigError

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG = "/etc/clinic-agent/agent.toml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        return args.func(args)
    except ConfigError as exc:
        _print_config_error(exc)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clinic-agent", description=(
        "Reports a clinic's power (UPS, meter) and internet (router) health to the central team."))
    p.add_argument("--version", action="version", version=f"clinic-agent {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", help="run the agent (what the systemd service starts)")
    run.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    run.set_defaults(func=cmd_run)

    val = sub.add_parser("validate", help="check a config file and list every problem")
    val.add_argument("config", nargs="?", default=DEFAULT_CONFIG)
    val.set_defaults(func=cmd_validate)

    poll = sub.add_parser("poll-once", help="poll devices once and print what they answer")
    poll.add_argument("device", nargs="?", help="only this device (default: all)")
    poll.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    poll.add_argument("--json", action="store_true", help="machine-readable output")
    poll.set_defaults(func=cmd_poll_once)
    cli_config.register(sub)
    cli_fleet.register(sub)
    return p


def _print_config_error(exc: ConfigError) -> None:
    print(f"{exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


# -- run -------------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    from .daemon import Agent
    asyncio.run(Agent(cfg, config_path=args.config).run())
    return EXIT_OK


# -- validate --------------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    print(f"{args.config}: OK: site {cfg.site_id}, {len(cfg.devices)} device(s): "
          + ", ".join(f"{d.name} ({d.kind}, every {d.interval_s:g}s)" for d in cfg.devices))
    return EXIT_OK


# -- poll-once -------------------------------------------------------------------------------------

def cmd_poll_once(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(message)s")
    devices = [d for d in cfg.devices if args.device in (None, d.name)]
    if not devices:
        print(f"no device named {args.device!r}; devices: "
              + ", ".join(d.name for d in cfg.devices), file=sys.stderr)
        return EXIT_CONFIG
    results = asyncio.run(_poll_devices(cfg, devices))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        _print_poll_table(results)
    return EXIT_OK if all(r["status"] == "ok" for r in results) else EXIT_PROBLEM


async def _poll_devices(cfg: AgentConfig, devices) -> list[dict[str, Any]]:
    from .poller import poll_once
    from .sources.factory import SourceFactory
    factory = SourceFactory(state_dir=cfg.state_dir)
    clock = ClockGuard()
    sources = [factory.build(d) for d in devices]
    try:
        outcomes = await asyncio.gather(*(poll_once(d, s, clock) for d, s in zip(devices, sources)))
    finally:
        for s in sources:
            await s.close()
        await factory.close()
    return [{"device": d.name, "kind": d.kind, "status": status, "reason": reason,
             "readings": [{"metric": r.metric, "value": r.value, "unit": r.unit} for r in readings]}
            for d, (readings, status, reason) in zip(devices, outcomes)]


def _print_poll_table(results: list[dict[str, Any]]) -> None:
    for res in results:
        head = f"{res['device']} ({res['kind']}): {res['status'].upper()}"
        if res["reason"]:
            head += f" - {res['reason']}"
        print(head)
        rows = [r for r in res["readings"] if not r["metric"].startswith("poll.")]
        width = max((len(r["metric"]) for r in rows), default=0)
        for r in rows:
            print(f"  {r['metric']:<{width}}  {_fmt(r['value'])} {r['unit']}".rstrip())
        print()


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
