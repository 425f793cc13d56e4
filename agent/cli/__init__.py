"""``clinic-agent``: run the daemon, validate a config, poll devices once.

Exit codes: 0 fine, 1 something is wrong (a device failing, ...), 2 the config is invalid or the
command line is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Sequence

from agent import __version__

from agent.cli import config as cli_config

from agent.cli import fleet as cli_fleet

from agent.cli import tech as cli_tech
from agent.cli import events as cli_events
from agent.config import load_config
from agent.errors import ConfigError

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

    cli_config.register(sub)
    cli_fleet.register(sub)
    cli_tech.register(sub)     # status, doctor, poll-once, tail, buffer, scan
    cli_events.register(sub)   # events
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
    from agent.runtime.daemon import Agent
    asyncio.run(Agent(cfg, config_path=args.config).run())
    return EXIT_OK


# -- validate --------------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    print(f"{args.config}: OK: site {cfg.site_id}, {len(cfg.devices)} device(s): "
          + ", ".join(f"{d.name} ({d.kind}, every {d.interval_s:g}s)" for d in cfg.devices))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
