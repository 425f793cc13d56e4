"""``clinic-agent scan modbus|snmp``: find devices that are not configured yet (agent.diagnose.scan)
and suggest their ``[[devices]]`` entry."""

from __future__ import annotations

import argparse
import asyncio
import os

from agent.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PROBLEM,
    Located,
    add_common,
    add_lang,
    print_json,
)
from agent.cli.common import term as make_term
from agent.control.server import ControlClient, NoPermission
from agent.i18n import Messages


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    add_lang(p, t)
    def show_help(args: argparse.Namespace) -> int:
        p.print_help()
        return EXIT_CONFIG

    p.set_defaults(func=show_help)
    ssub = p.add_subparsers(metavar="modbus|snmp", title=t("help.title.actions"))
    m = add_common(ssub.add_parser("modbus", help=t("help.scan.modbus"),
                                   description=t("help.scan.modbus")), t)
    where = m.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", dest="serial_port", metavar="DEV", help=t("help.scan.port"))
    where.add_argument("--host", metavar=t("help.meta.address"), help=t("help.scan.host"))
    m.add_argument("--tcp-port", type=int, default=502, metavar=t("help.meta.port"),
                   help=t("help.scan.tcp_port"))
    m.add_argument("--rtu-over-tcp", action="store_true", help=t("help.scan.rtu_over_tcp"))
    m.add_argument("--baud", default=None, metavar=t("help.meta.list"), help=t("help.scan.baud"))
    m.add_argument("--parity", default=None, metavar=t("help.meta.list"),
                   help=t("help.scan.parity"))
    m.add_argument("--units", default="1-247", metavar=t("help.meta.list"),
                   help=t("help.scan.units"))
    m.add_argument("--timeout", type=float, default=None, metavar=t("help.meta.seconds"),
                   help=t("help.scan.timeout_modbus"))
    m.add_argument("--all-settings", action="store_true", help=t("help.scan.all_settings"))
    m.set_defaults(func=cmd_scan_modbus)
    s = add_common(ssub.add_parser("snmp", help=t("help.scan.snmp"),
                                   description=t("help.scan.snmp")), t)
    s.add_argument("--target", metavar=t("help.meta.address"), help=t("help.scan.target"))
    s.add_argument("--port", type=int, default=161, metavar=t("help.meta.port"),
                   help=t("help.scan.snmp_port"))
    s.add_argument("--community", action="append", default=[], metavar=t("help.meta.name"),
                   help=t("help.scan.community"))
    s.add_argument("--timeout", type=float, default=1.0, metavar=t("help.meta.seconds"),
                   help=t("help.scan.timeout_snmp"))
    s.set_defaults(func=cmd_scan_snmp)


def cmd_scan_modbus(args: argparse.Namespace) -> int:
    from agent.diagnose import scan
    from agent.sources.modbus_link import BusParams
    term = make_term(args)
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
        print_json(term, {"where": result.where, "transport": result.transport,
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
        why = t("scan.modbus.unsupported", settings=result.unsupported_why)
        term.print(term.paint(why, "warn"))
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
    from agent.kinds import MODBUS
    mine = [s for d in loc.cfg.devices if d.enabled and (s := MODBUS.settings_of(d)) is not None]
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
    term = make_term(args)
    t = term.t
    target = args.target or scan.default_gateway()
    if not target:
        term.print(t("scan.snmp.no_gateway"), err=True)
        return EXIT_CONFIG
    loc = Located(args.config)
    configured = []
    if loc.cfg is not None:
        from agent.kinds import SNMP
        for d in loc.cfg.devices:
            snmp = SNMP.settings_of(d)
            community = snmp.community if snmp is not None else None
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
        print_json(term, {"target": target, "port": args.port, "error": result.error,
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
