"""``clinic-agent run``: the agent itself (what systemd starts). Imports the runtime and nothing of
the technician's or operator's commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from agent.cli.defaults import DEFAULT_CONFIG, EXIT_OK, EXIT_PROBLEM
from agent.config import load_config
from agent.i18n import Messages


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=t("help.opt.config", default=DEFAULT_CONFIG))
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    from agent.errors import StoreBusy
    from agent.runtime.daemon import Agent
    try:
        asyncio.run(Agent(cfg, config_path=args.config).run())
    except StoreBusy as exc:
        # One writer per buffer: the other agent keeps it (systemd tries again later).
        logging.getLogger("agent.runtime.daemon").error("not starting: %s", exc)
        return EXIT_PROBLEM
    return EXIT_OK
