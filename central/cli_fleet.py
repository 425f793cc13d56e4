"""``clinic-central fleet``, ``web``, ``users`` and ``sites``: the fleet for scripts, the web page,
its accounts and the inventory's names and places.

``fleet`` exit codes, for cron: 0 no clinic matches, 1 some clinic matches (listed), 2 bad command
line or config, 3 a store did not answer (PostgreSQL; without VictoriaMetrics the answer stands,
charge, runtime and backlog unknown, and a warning says so).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

from central import fleet
from central.config import SITE_PATTERN, load_config

EXIT_NONE, EXIT_SOME, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3
DEFAULT_CONFIG = "/etc/clinic-central/central.toml"
DEFAULT_SECRET = "/etc/clinic-central/web-secret"


def add_commands(sub: Any) -> None:
    """Register the subcommands on ``clinic-central``'s subparsers."""
    f = sub.add_parser("fleet", help="which clinics are offline, on battery, without internet... "
                                     "now; exit 1 when any matches (for cron)")
    f.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    f.add_argument("--show", default="problems", choices=("all", "problems", *fleet.STATES),
                   help="which clinics: every one with a problem (default), one condition, or all")
    f.add_argument("--for", dest="for_", metavar="DURATION",
                   help="only those in that condition for at least this long (90s, 15m, 1h, 2d)")
    f.add_argument("--state", help="only clinics of this state (the inventory's)")
    f.add_argument("--municipality", help="only clinics of this municipality")
    f.add_argument("--json", action="store_true", help="machine-readable output")
    f.add_argument("-q", "--quiet", action="store_true", help="no output; the exit code says")
    f.set_defaults(func=cmd_fleet)

    w = sub.add_parser("web", help="serve the fleet web page (login required)")
    w.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    w.add_argument("--listen", default="127.0.0.1:8080", help="address:port (default %(default)s)")
    w.add_argument("--secret-file", default=DEFAULT_SECRET,
                   help="key that signs session cookies; made (0600) if missing")
    w.add_argument("--tz", default="America/Mexico_City", help="time zone of the times shown")
    w.add_argument("--cookie-secure", action="store_true",
                   help="cookies only over HTTPS (set when a TLS proxy serves the page)")
    w.add_argument("--proxy-user-header", metavar="HEADER",
                   help="trust this header (e.g. X-Remote-User) set by an authenticating reverse "
                        "proxy instead of the login form; listen on 127.0.0.1 only then")
    w.add_argument("--poll-s", type=float, default=3.0, help="fleet page refresh (seconds)")
    w.add_argument("--broker-username", metavar="USER",
                   help="the broker's operator account (may write config/set): lets operators "
                        "start created rollouts from the page (broker address, TLS: the config)")
    w.add_argument("--broker-password-file", metavar="FILE", help="its password (first line)")
    w.set_defaults(func=cmd_web)

    u = sub.add_parser("users", help="accounts of the web page: add, passwd, role, list")
    u.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    us = u.add_subparsers(metavar="ACTION")
    ua = us.add_parser("add", help="a new account (the password is asked, or read from stdin)")
    _config_again(ua)
    ua.add_argument("name")
    ua.add_argument("--role", choices=("read-only", "operator"), default="read-only")
    ua.add_argument("--password-stdin", action="store_true")
    ua.set_defaults(func=cmd_users_add)
    up = us.add_parser("passwd", help="a new password (ends the account's sessions)")
    _config_again(up)
    up.add_argument("name")
    up.add_argument("--password-stdin", action="store_true")
    up.set_defaults(func=cmd_users_passwd)
    ur = us.add_parser("role", help="change the role, disable or enable an account")
    _config_again(ur)
    ur.add_argument("name")
    ur.add_argument("--role", choices=("read-only", "operator"))
    ur.add_argument("--disable", action="store_true")
    ur.add_argument("--enable", action="store_true")
    ur.set_defaults(func=cmd_users_role)
    ul = us.add_parser("list", help="the accounts (never their passwords)")
    _config_again(ul)
    ul.add_argument("--json", action="store_true")
    ul.set_defaults(func=cmd_users_list)

    s = sub.add_parser("sites", help="the inventory's clinic names, states and municipalities")
    s.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    ss = s.add_subparsers(metavar="ACTION")
    si = ss.add_parser("import", help="CSV with a header: site,name,state,municipality")
    _config_again(si)
    si.add_argument("file")
    si.set_defaults(func=cmd_sites_import)


def _config_again(p: argparse.ArgumentParser) -> None:
    # -c after the action too (`users add NAME -c FILE`); SUPPRESS keeps one given before it
    p.add_argument("-c", "--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _connect(config: str) -> Any:
    from central import pg
    from central.vm import StoreUnavailable
    cfg = load_config(config)
    try:
        conn = pg.connect(cfg.pg_dsn)
    except StoreUnavailable as exc:
        print(f"clinic-central: {exc}", file=sys.stderr)
        return cfg, None
    fleet.migrate(conn)
    return cfg, conn


# -- fleet -----------------------------------------------------------------------------------------

def cmd_fleet(args: argparse.Namespace) -> int:
    try:
        for_s = fleet.parse_duration(args.for_) if args.for_ else None
    except ValueError as exc:
        print(f"clinic-central fleet: --for: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cfg, conn = _connect(args.config)
    if conn is None:
        return EXIT_STORE
    flt = fleet.Filter(show=None if args.show == "all" else args.show, state=args.state,
                       municipality=args.municipality, for_s=for_s)
    with conn:
        data = fleet.load(conn, cfg.vm_url, flt)
    if not data.metrics_ok:
        print("clinic-central fleet: VictoriaMetrics did not answer: charge, runtime and backlog "
              "unknown", file=sys.stderr)
    if args.json:
        print(json.dumps({"now": data.now.isoformat(), "metrics_ok": data.metrics_ok,
                          "clinics": [c.as_dict() for c in data.clinics]}, indent=2))
    elif not args.quiet:
        for c in data.clinics:
            print(_line(c, data.now))
        if not data.clinics:
            print("no clinic matches")
    return EXIT_SOME if data.clinics else EXIT_NONE


def _ago(t: Any, now: Any) -> str:
    if t is None:
        return "never seen"
    m = int((now - t).total_seconds() // 60)
    dur = f"{m} min" if m < 60 else f"{m // 60} h {m % 60} min" if m < 1440 else \
        f"{m // 1440} d {m % 1440 // 60} h"
    return f"since {t.astimezone().strftime('%Y-%m-%d %H:%M %Z')} ({dur})"


def _line(c: fleet.ClinicState, now: Any) -> str:
    parts = [f"{c.site:<16} {c.status:<11} {_ago(c.since, now) if c.status != 'ok' else ''}"]
    if c.on_battery_since and c.status != "on_battery":
        parts.append(f"on battery {_ago(c.on_battery_since, now)}")
    if c.charge_pct is not None and c.on_battery_since:
        parts.append(f"charge {c.charge_pct:.0f} %")
    if c.runtime_s is not None and c.on_battery_since:
        parts.append(f"runtime {c.runtime_s / 60:.0f} min")
    if c.wan_down_since and c.status != "wan_down":
        parts.append(f"internet down {_ago(c.wan_down_since, now)}")
    if c.devices_down:
        parts.append("not answering: " + ", ".join(d for d, _ in c.devices_down))
    if c.backlog:
        parts.append(f"backlog {c.backlog}")
    return "; ".join(p.rstrip() for p in parts)


# -- web -------------------------------------------------------------------------------------------

def read_secret(path: str) -> bytes:
    """The cookie-signing key; a new random one (0600) when the file does not exist yet."""
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    key = p.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the key must have at least 32 characters")
    return key.encode()


def cmd_web(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from central.web.app import WebSettings, build
    cfg = load_config(args.config)
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"clinic-central web: --listen: expected address:port, got {args.listen}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        secret = read_secret(args.secret_file)
    except (OSError, ValueError) as exc:
        print(f"clinic-central web: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from central import pg
    from central.vm import StoreUnavailable
    try:
        with pg.connect(cfg.pg_dsn) as conn:
            fleet.migrate(conn)
    except StoreUnavailable as exc:
        print(f"clinic-central web: {exc}", file=sys.stderr)
        return EXIT_STORE
    broker = None
    if args.broker_username:
        from agent.remote.fleet import BrokerOptions
        password = None
        if args.broker_password_file:
            try:
                password = Path(args.broker_password_file).read_text(
                    encoding="utf-8").splitlines()[0]
            except (OSError, UnicodeDecodeError, IndexError) as exc:
                print(f"clinic-central web: --broker-password-file: cannot read a password "
                      f"({exc.__class__.__name__})", file=sys.stderr)
                return EXIT_USAGE
        broker = BrokerOptions(host=cfg.mqtt.host, port=cfg.mqtt.port,
                               username=args.broker_username, password=password,
                               tls=cfg.mqtt.tls, ca_file=cfg.mqtt.ca_file,
                               prefix=cfg.mqtt.topic_prefix)
    settings = WebSettings(pg_dsn=cfg.pg_dsn, vm_url=cfg.vm_url, secret=secret, tz=args.tz,
                           cookie_secure=args.cookie_secure,
                           proxy_user_header=args.proxy_user_header, poll_s=args.poll_s,
                           broker=broker)
    uvicorn.run(build(settings), host=host.strip("[]"), port=int(port), log_level="warning",
                access_log=False, proxy_headers=False)
    return 0


# -- users -----------------------------------------------------------------------------------------

def _password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _users(args: argparse.Namespace, action: Any) -> int:
    from central.web.users import UserError
    _, conn = _connect(args.config)
    if conn is None:
        return EXIT_STORE
    with conn:
        try:
            action(conn)
        except (UserError, ValueError) as exc:
            print(f"clinic-central users: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    from central.web import users
    password = _password(args)

    def act(conn: Any) -> None:
        users.add(conn, args.name, password, args.role)
        print(f"user {args.name} added ({args.role})")
    return _users(args, act)


def cmd_users_passwd(args: argparse.Namespace) -> int:
    from central.web import users
    password = _password(args)

    def act(conn: Any) -> None:
        users.set_password(conn, args.name, password)
        print(f"password of {args.name} changed; its sessions ended")
    return _users(args, act)


def cmd_users_role(args: argparse.Namespace) -> int:
    from central.web import users
    disabled = True if args.disable else False if args.enable else None

    def act(conn: Any) -> None:
        users.set_role(conn, args.name, args.role, disabled)
        print(f"user {args.name} changed; its sessions ended")
    return _users(args, act)


def cmd_users_list(args: argparse.Namespace) -> int:
    from central.web import users

    def show(conn: Any) -> None:
        rows = users.listing(conn)
        if args.json:
            print(json.dumps(rows, indent=2))
            return
        for r in rows:
            print(f"{r['name']:<24} {r['role']:<10} {'disabled' if r['disabled'] else ''}")
    return _users(args, show)


# -- sites -----------------------------------------------------------------------------------------

def cmd_sites_import(args: argparse.Namespace) -> int:
    """All or nothing: a file with a bad line changes nothing, and every bad line is listed."""
    try:
        with open(args.file, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        print(f"clinic-central sites import: {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problems = []
    if "site" not in header:
        problems.append("the first line must name the columns: site,name,state,municipality")
    good = []
    for n, row in enumerate(rows, start=2):
        site = (row.get("site") or "").strip()
        if not re.fullmatch(SITE_PATTERN, site):
            problems.append(f"line {n}: not a valid site id: {site!r}")
            continue
        vals = [((row.get(k) or "").strip() or None) for k in ("name", "state", "municipality")]
        if any(v is not None and len(v) > 200 for v in vals):
            problems.append(f"line {n}: a value longer than 200 characters")
            continue
        good.append((site, *vals))
    if problems:
        print(f"{args.file}: {len(problems)} problem(s), nothing imported:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return EXIT_USAGE
    _, conn = _connect(args.config)
    if conn is None:
        return EXIT_STORE
    with conn, conn.transaction():
        for site, name, state, muni in good:
            conn.execute(
                """INSERT INTO site_inventory (site, name, state, municipality)
                   VALUES (%s, %s, %s, %s) ON CONFLICT (site) DO UPDATE SET name = excluded.name,
                   state = excluded.state, municipality = excluded.municipality,
                   updated_at = now()""", (site, name, state, muni))
    print(f"{len(good)} site(s) imported")
    return 0
