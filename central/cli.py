"""``clinic-central``: the central ingest and its status.

Exit codes: 0 fine, 1 something is wrong (an ingest silent, ...), 2 bad config or command line
(``fleet``: see central.cli_fleet).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from agent.errors import ConfigError
from central import __version__
from central.config import load_config

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG = "/etc/clinic-central/central.toml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clinic-central", description=(
        "The central side of the clinic agents: every reading into VictoriaMetrics and every "
        "event, site status and loss into PostgreSQL, exactly once, acknowledged to the clinics "
        "end to end."))
    p.add_argument("--version", action="version", version=f"clinic-central {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    ing = sub.add_parser(
        "ingest", help="subscribe to every site and store what arrives (the systemd service)")
    ing.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    ing.set_defaults(func=cmd_ingest)

    st = sub.add_parser(
        "status", help="lag, readings/s, sites seen, gaps; exit 1 when something is wrong")
    st.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)

    al = sub.add_parser(
        "alerts", help="the clinics' events to Prometheus Alertmanager (a systemd service)")
    al.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    al.set_defaults(func=cmd_alerts)

    bud = sub.add_parser("budget", help="publish (or clear) the retained backlog drain budget "
                         "for the whole fleet or for some sites (docs/fleet.md)")
    bud.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    what = bud.add_mutually_exclusive_group(required=True)
    what.add_argument("--kbps", type=float, help="kbit/s each clinic may use for its backlog")
    what.add_argument("--clear", action="store_true", help="remove the budget")
    bud.add_argument("--site", nargs="+", default=[], metavar="SITE",
                     help="these sites only (default: the fleet-wide budget)")
    bud.set_defaults(func=cmd_budget)

    val = sub.add_parser("validate", help="check a config file and list every problem")
    val.add_argument("config", nargs="?", default=DEFAULT_CONFIG)
    val.set_defaults(func=cmd_validate)

    from central import ops_cli  # rollout, command, commands (changes to many clinics)
    ops_cli.register(sub)
    from central.cli_fleet import add_commands  # fleet, web, users, sites
    add_commands(sub)
    return p


def cmd_ingest(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)   # one line per request otherwise
    from central.service import Ingest
    Ingest(cfg).run()
    return EXIT_OK


def cmd_alerts(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg.alerts is None:
        print(f"{args.config}: no [alerts] section: nothing to send alerts to (docs/alerts.md)",
              file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from central.alerts_service import AlertsProcess
    AlertsProcess(cfg).run()
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    from central import pg, status
    from central.vm import StoreUnavailable
    try:
        conn = pg.connect(cfg.pg_dsn)
    except StoreUnavailable as exc:
        print(f"clinic-central status: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    with conn:
        st = status.collect(conn, live_s=cfg.ingest.ack_interval_s * 5 + 10)
    text, ok = status.render(st, live_s=cfg.ingest.ack_interval_s * 5 + 10)
    if args.json:
        print(json.dumps(st.as_dict(), default=str, indent=2))
    else:
        print(text)
    return EXIT_OK if ok else EXIT_PROBLEM


def cmd_budget(args: argparse.Namespace) -> int:
    from agent.publish.budget import Budget
    from agent.remote.fleet import FleetError
    from central.budget import budget_topics, publish_budget
    cfg = load_config(args.config)
    try:
        budget = None if args.clear else Budget(args.kbps)
        topics = budget_topics(cfg.mqtt.topic_prefix, args.site)
    except ValueError as exc:
        print(f"clinic-central budget: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        publish_budget(cfg, topics, budget)
    except FleetError as exc:
        print(f"clinic-central budget: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    done = "cleared" if budget is None else f"{budget.kbps:g} kbit/s"
    for topic in topics:
        print(f"{topic}: {done}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    sites = "any site" if cfg.sites is None else f"{len(cfg.sites)} site(s) in the inventory"
    print(f"{args.config}: OK: ingest {cfg.ingest_id}, broker {cfg.mqtt.host}:{cfg.mqtt.port}, "
          f"group {cfg.mqtt.group}, prefix {cfg.mqtt.topic_prefix}, {sites}")
    return EXIT_OK
