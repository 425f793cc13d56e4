"""``clinic-central rollout ...``, ``command`` and ``commands``: changes to many clinics.

    rollout create   a signed push, one bundle file (or CONFIG/--overlay + --key: checked once,
                     then signed as one envelope per --chunk-size sites) for sites chosen by
                     --site, --sites-file or an inventory filter
    rollout start    canary, then the rest; stops by itself (exit 1) when too many refuse
    rollout status   one rollout and each site's state (or every rollout), --json
    rollout rollback a signed revert to the sites that applied it
    command          a signed remote command (poll_now, diagnostics, resend); recorded with who
    commands         what sites answered (kept by the ingest), with who asked

Who: ``--actor`` (default: the OS user). The operator side speaks English, like ``fleet``.
Exit codes: 0 fine, 1 the rollout stopped / a site refused / no answer, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from agent.cli.fleet import _duration, _sites, chunk_size_arg
from agent.remote.bundle import DEFAULT_CHUNK_SIZE, parse_bundle, sign_bundle
from agent.remote.envelope import EnvelopeError, KeyFileError, load_private_key
from agent.remote.fleet import (
    BrokerOptions,
    FleetError,
    OperatorLink,
    config_payload,
    overlay_payload,
    revert_payload,
)
from agent.remote.presign import check_config, check_overlay
from central.config import CentralConfig, load_config

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIG = "/etc/clinic-central/central.toml"


def register(sub: Any) -> None:
    """Add the commands to ``clinic-central``'s subparsers."""
    ro = sub.add_parser("rollout", help="staged pushes to many clinics (canary first)")
    ro.set_defaults(func=lambda args: _usage(ro))
    rs = ro.add_subparsers(metavar="ACTION")

    p = rs.add_parser("create", help="record a rollout of one signed push")
    p.add_argument("push_file", nargs="?", metavar="CONFIG",
                   help="config or overlay TOML to check and sign (--key)")
    p.add_argument("--signed", metavar="BUNDLE", help="a bundle (or envelope) from "
                   "`clinic-agent fleet sign` instead (signed elsewhere)")
    p.add_argument("--overlay", action="store_true", help="CONFIG is an overlay")
    p.add_argument("--key", help="operator's private key, to sign CONFIG")
    p.add_argument("--version", type=int, help="push version (default: now in seconds)")
    p.add_argument("--valid-for", default="7d", metavar="DURATION")
    _chunk(p)
    p.add_argument("--site", action="append", dest="sites", default=[], metavar="SITE")
    p.add_argument("--sites-file", metavar="FILE", help="site ids, one a line")
    p.add_argument("--where-site-like", metavar="PATTERN", help="inventory: site LIKE PATTERN "
                   "(e.g. 'DFSSA%%')")
    p.add_argument("--where-status", choices=("online", "offline"), help="inventory: status")
    p.add_argument("--where-config-version", metavar="V", help="inventory: config in effect")
    p.add_argument("--canary-share", type=float, default=0.1, metavar="SHARE",
                   help="share of the sites in the first stage (default 0.1; at least one)")
    p.add_argument("--max-failure-share", type=float, default=0.1, metavar="SHARE",
                   help="stop when more than this share of a stage rejects or rolls back")
    p.add_argument("--stage-timeout", default="15m", metavar="DURATION",
                   help="how long a stage waits for its sites (default 15m)")
    p.add_argument("--note", help="why (kept with the rollout)")
    _common(p)
    p.set_defaults(func=cmd_create)

    p = rs.add_parser("start", help="run a rollout: canary, then the rest (resumes if stopped "
                      "half-way)")
    p.add_argument("id", type=int)
    _common(p)
    _broker(p)
    p.set_defaults(func=cmd_start)

    p = rs.add_parser("status", help="a rollout's progress and each site's outcome")
    p.add_argument("id", type=int, nargs="?", help="default: list the rollouts")
    _common(p)
    p.set_defaults(func=cmd_status)

    p = rs.add_parser("rollback", help="send a signed revert to the sites that applied it")
    p.add_argument("id", type=int)
    p.add_argument("--signed", metavar="BUNDLE", help="a revert from `clinic-agent fleet sign "
                   "--revert VERSION`")
    p.add_argument("--key", help="operator's private key, to sign the revert here")
    p.add_argument("--version", type=int, help="the revert's own version (default: now)")
    _chunk(p)
    p.add_argument("--wait", default="2m", metavar="DURATION",
                   help="wait this long for the sites to report (default 2m)")
    _common(p)
    _broker(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("command", help="send a signed remote command; answers are kept")
    p.add_argument("name", choices=("poll_now", "diagnostics", "resend"))
    p.add_argument("--key", required=True, help="operator's private key")
    p.add_argument("--site", action="append", dest="sites", default=[], metavar="SITE")
    p.add_argument("--sites-file", metavar="FILE")
    p.add_argument("--device", help="poll_now: only this device")
    p.add_argument("--first-seq", type=int)
    p.add_argument("--last-seq", type=int)
    p.add_argument("--wait", default="15s", metavar="DURATION",
                   help="wait this long for the answers to be stored (default 15s)")
    _common(p)
    _broker(p)
    p.set_defaults(func=cmd_command)

    p = sub.add_parser("commands", help="commands sent and what the sites answered")
    p.add_argument("--site")
    p.add_argument("--id", dest="command_id")
    p.add_argument("--limit", type=int, default=50)
    _common(p)
    p.set_defaults(func=cmd_commands)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="clinic-central's config "
                   "(PostgreSQL, broker address)")
    p.add_argument("--actor", default=None, help="who is doing this (default: the OS user; "
                   "under sudo, the user who ran sudo)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _chunk(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="N",
                   help="with --key: sign one envelope per N sites, each published only to its "
                   f"sites (default {DEFAULT_CHUNK_SIZE})")


def _broker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", metavar="HOST[:PORT]", help="default: the config's [mqtt]")
    p.add_argument("--username", help="an operator account of the broker (may write config/set "
                   "and cmd)")
    p.add_argument("--password-file", help="file whose first line is its password")


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return EXIT_USAGE


def _actor(args: argparse.Namespace) -> str:
    # Run as `sudo -u clinic-central clinic-central ...` (the config and PostgreSQL's peer
    # authentication are that user's), the person is the one who ran sudo.
    return str(args.actor or os.environ.get("SUDO_USER") or getpass.getuser())


def _fail(msg: str, code: int) -> int:
    print(f"clinic-central: {msg}", file=sys.stderr)
    return code


def _connect(cfg: CentralConfig) -> Any:
    from central import pg
    conn = pg.connect(cfg.pg_dsn)
    pg.migrate(conn)     # idempotent; the tables may be newer than the running ingest
    return conn


def _link(args: argparse.Namespace, cfg: CentralConfig) -> OperatorLink:
    host, port = cfg.mqtt.host, cfg.mqtt.port
    if args.broker:
        host, _, p = args.broker.rpartition(":") if ":" in args.broker else (args.broker, "", "")
        port = int(p) if p.isdigit() else port
    password = None
    if args.password_file:
        try:
            password = Path(args.password_file).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            raise FleetError(f"--password-file: cannot read a password "
                             f"({exc.__class__.__name__})") from None
    return OperatorLink(BrokerOptions(host=host, port=port, username=args.username,
                                      password=password, tls=cfg.mqtt.tls,
                                      ca_file=cfg.mqtt.ca_file, prefix=cfg.mqtt.topic_prefix))


def _key(path: str) -> Any:
    try:
        return load_private_key(path)
    except KeyFileError as exc:
        raise FleetError(str(exc)) from exc


def _print(doc: Any, args: argparse.Namespace, text: str) -> None:
    print(json.dumps(doc, indent=2, default=str) if args.json else text)


# -- rollout ---------------------------------------------------------------------------------------

def cmd_create(args: argparse.Namespace) -> int:
    from central import rollout
    cfg = load_config(args.config)
    try:
        plan = rollout.Plan(canary_share=args.canary_share,
                            max_failure_share=args.max_failure_share,
                            stage_timeout_s=_duration(args.stage_timeout))
        with _connect(cfg) as conn:
            sites = _chosen(args, conn)
            if args.signed:
                if args.push_file or args.key:
                    raise FleetError("give either --signed or CONFIG with --key, not both")
                envelope = Path(args.signed).read_bytes()
                if not sites:
                    try:
                        sites = list(parse_bundle(envelope, source=args.signed).sites)
                    except EnvelopeError as exc:
                        raise FleetError(str(exc)) from exc
            else:
                envelope = _sign(args, sites)
            rid = rollout.create(conn, envelope, sites, actor=_actor(args), plan=plan,
                                 note=args.note)
            st = rollout.status(conn, rid)
    except (FleetError, rollout.RolloutError, OSError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    _print(st, args, f"rollout {rid}: {st['kind']} v{st['version']} to {len(st['sites'])} "
           f"site(s) from {st['envelopes']} signed envelope(s), {st['counts']} ; canary "
           f"{sum(s['stage'] == 1 for s in st['sites'])}")
    return EXIT_OK


def _chosen(args: argparse.Namespace, conn: Any) -> list[str]:
    from central import rollout
    sites: list[str] = []
    if args.sites or args.sites_file:
        sites = _sites(args)
    if args.where_site_like or args.where_status or args.where_config_version:
        found = rollout.sites_from_inventory(conn, like=args.where_site_like,
                                             status=args.where_status,
                                             config_version=args.where_config_version)
        sites = sorted(set(sites) & set(found)) if sites else found
        if not sites:
            raise FleetError("no site of the inventory matches")
    return sites


def _sign(args: argparse.Namespace, sites: list[str]) -> bytes:
    if not (args.push_file and args.key):
        raise FleetError("give CONFIG and --key (or --signed ENVELOPE)")
    if not sites:
        raise FleetError("choose the sites: --site, --sites-file or --where-...")
    text = Path(args.push_file).read_text(encoding="utf-8")
    found = (check_overlay if args.overlay else check_config)(text, sites)
    if found.problems:
        raise FleetError(f"{args.push_file}: not signed: " + "; ".join(found.problems))
    version = args.version if args.version is not None else int(time.time())
    make = overlay_payload if args.overlay else config_payload
    payload = make(text, sites=sites, version=version, valid_for_s=_duration(args.valid_for))
    return sign_bundle(payload, _key(args.key),
                       chunk_size=chunk_size_arg(args.chunk_size)).to_bytes()


def cmd_start(args: argparse.Namespace) -> int:
    from central import rollout
    cfg = load_config(args.config)
    seen: dict[str, str] = {}

    def progress(st: dict[str, Any]) -> None:
        if args.json:
            return
        for s in st["sites"]:
            if seen.get(s["site"]) != s["state"]:
                seen[s["site"]] = s["state"]
                if s["state"] not in ("pending", "sent"):
                    why = f" ({s['reason']}: {s['detail']})" if s["reason"] else ""
                    print(f"  {s['site']} (stage {s['stage']}): {s['state']}{why}", flush=True)
    try:
        with _connect(cfg) as conn, _link(args, cfg) as link:
            st = rollout.start(conn, args.id, link, actor=_actor(args),
                               prefix=cfg.mqtt.topic_prefix, progress=progress)
    except (FleetError, rollout.RolloutError) as exc:
        return _fail(str(exc), EXIT_PROBLEM)
    _print(st, args, f"rollout {args.id}: {st['state']}" + (
        f": {st['stopped_reason']}" if st["stopped_reason"] else "") + f" {st['counts']}")
    return EXIT_OK if st["state"] == "done" else EXIT_PROBLEM


def cmd_status(args: argparse.Namespace) -> int:
    from central import rollout
    cfg = load_config(args.config)
    try:
        with _connect(cfg) as conn:
            if args.id is None:
                rows = rollout.list_rollouts(conn)
                _print(rows, args, "\n".join(
                    f"{r['id']:>5}  {r['state']:<8} {r['kind']:<7} v{r['version']}  "
                    f"by {r['created_by']}  {r['counts']}" for r in rows) or "no rollout")
                return EXIT_OK
            rollout.refresh(conn, args.id)
            st = rollout.status(conn, args.id)
    except rollout.RolloutError as exc:
        return _fail(str(exc), EXIT_USAGE)
    lines = [f"rollout {st['id']}: {st['state']} ({st['kind']} v{st['version']}, by "
             f"{st['created_by']}){': ' + st['stopped_reason'] if st['stopped_reason'] else ''}",
             f"  {st['counts']}"]
    lines += [f"  {s['site']:<16} stage {s['stage']}  {s['state']}"
              + (f" ({s['reason']}: {s['detail']})" if s["reason"] else "")
              for s in st["sites"]]
    _print(st, args, "\n".join(lines))
    return EXIT_OK if st["state"] in ("done", "created", "canary", "rest") else EXIT_PROBLEM


def cmd_rollback(args: argparse.Namespace) -> int:
    from central import rollout
    cfg = load_config(args.config)
    try:
        with _connect(cfg) as conn:
            r = rollout.status(conn, args.id)
            if args.signed:
                envelope = Path(args.signed).read_bytes()
            elif args.key:
                applied = [s["site"] for s in r["sites"] if s["state"] == "applied"]
                if not applied:
                    raise FleetError(f"rollout {args.id}: no site applied it; nothing to revert")
                version = args.version if args.version is not None else int(time.time())
                envelope = sign_bundle(
                    revert_payload(r["version"], sites=applied, version=version,
                                   valid_for_s=7 * 86400), _key(args.key),
                    chunk_size=chunk_size_arg(args.chunk_size)).to_bytes()
            else:
                raise FleetError("give --key (sign the revert here) or --signed ENVELOPE")
            with _link(args, cfg) as link:
                st = rollout.rollback(conn, args.id, envelope, link, actor=_actor(args),
                                      prefix=cfg.mqtt.topic_prefix,
                                      wait_s=_duration(args.wait))
    except (FleetError, rollout.RolloutError, OSError) as exc:
        return _fail(str(exc), EXIT_PROBLEM)
    _print(st, args, f"rollout {args.id}: revert v{st['revert_version']}: {st['counts']}")
    ok = not any(s["state"] in ("reverting", "revert_refused", "revert_no_answer")
                 for s in st["sites"])
    return EXIT_OK if ok else EXIT_PROBLEM


# -- commands --------------------------------------------------------------------------------------

def cmd_command(args: argparse.Namespace) -> int:
    from central import commands
    cfg = load_config(args.config)
    cmd_args: dict[str, Any] = {}
    if args.device:
        cmd_args["device"] = args.device
    if args.first_seq is not None or args.last_seq is not None:
        cmd_args.update(first_seq=args.first_seq, last_seq=args.last_seq)
    try:
        sites = _sites(args)
        key = _key(args.key)
        with _connect(cfg) as conn:
            with _link(args, cfg) as link:
                cid = commands.send(conn, link, key, name=args.name, args=cmd_args, sites=sites,
                                    actor=_actor(args), prefix=cfg.mqtt.topic_prefix)
            deadline = time.monotonic() + _duration(args.wait)
            while True:
                rows = commands.list_commands(conn, command_id=cid)
                answered = [r for r in rows if r["leaf"] == "cmd/result" and r["ok"] is not None]
                if len(answered) >= len(sites) or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
    except FleetError as exc:
        return _fail(str(exc), EXIT_PROBLEM)
    _print(rows, args, "\n".join(
        f"{r['site']}: {r['command']} {_verdict(r['ok'])}"
        for r in rows if r["leaf"] == "cmd/result") + f"\n(command id {cid}; "
        f"`clinic-central commands --id {cid}` shows the answers later)")
    return EXIT_OK if len(answered) == len(sites) and all(r["ok"] for r in answered) \
        else EXIT_PROBLEM


def _verdict(ok: bool | None) -> str:
    return "no answer" if ok is None else "ok" if ok else "failed"


def cmd_commands(args: argparse.Namespace) -> int:
    from central import commands
    cfg = load_config(args.config)
    with _connect(cfg) as conn:
        rows = commands.list_commands(conn, site=args.site, command_id=args.command_id,
                                      limit=args.limit)
    _print(rows, args, "\n".join(
        f"{r['site']:<16} {r['leaf']:<11} {r['command'] or '-':<12} "
        f"{'ok' if r['ok'] else '-' if r['ok'] is None else 'FAILED'}  id {r['command_id']}  "
        f"by {(r['sent'] or {}).get('actor', '?')}" for r in rows) or "nothing stored")
    return EXIT_OK
