#!/usr/bin/env python3
"""Simulated clinic router for demos: net-snmp snmpd on 127.0.0.1, serving this machine's IF-MIB.

    python scripts/sim_router.py --port 1161 --community demo-clinic --workdir /tmp/router
    python scripts/sim_router.py --port 1161 --community demo-clinic --workdir /tmp/router \\
        --v3-user agent --v3-auth-key auth-pass-123 --v3-priv-key priv-pass-123
    python scripts/sim_router.py --port 1161 --community demo-clinic --print-config

It writes ``snmpd.conf`` into the work directory and then *becomes* snmpd (exec, foreground), so
stopping this process stops the router. It only ever listens on 127.0.0.1 and is read-only. The
interfaces are this machine's (``lo``, ``eth0``...): traffic on them is what the agent will see.
v3 users get SHA authentication and AES-128 privacy. It does not import the agent.

``--wan-switch COMMUNITY`` plays the router's WAN port with ``lo``: its ifOperStatus (and that
one value only) may be set with SNMP SET under that community, so a demo or a test can take the
WAN down (2) and up (1), and the agent (``wan_interface = "lo"``, in ``--print-config``) reports
it as ``if.wan.oper_up``::

    snmpset -v2c -c COMMUNITY 127.0.0.1:PORT .1.3.6.1.2.1.2.2.1.8.IFINDEX i 2

(``IFINDEX``: /sys/class/net/lo/ifindex, which ``wan_oid()`` reads.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

IF_OPER_STATUS = ".1.3.6.1.2.1.2.2.1.8"
WAN_INTERFACE = "lo"


def wan_oid() -> str:
    """ifOperStatus of the interface that plays the WAN (``lo``) in this machine's IF-MIB."""
    index = int(Path(f"/sys/class/net/{WAN_INTERFACE}/ifindex").read_text())
    return f"{IF_OPER_STATUS}.{index}"


def find_snmpd() -> str:
    path = shutil.which("snmpd") or next(
        (p for p in ("/usr/sbin/snmpd", "/usr/local/sbin/snmpd") if os.access(p, os.X_OK)), None)
    if path is None:
        raise SystemExit("snmpd not found: install net-snmp (apt install snmpd) or run scripts/setup.sh")
    return path


def conf_text(args: argparse.Namespace) -> str:
    lines = [
        "# Written by scripts/sim_router.py; regenerated on every start.",
        f"agentAddress udp:127.0.0.1:{args.port}",
        f"rocommunity {args.community} 127.0.0.1",
        f"sysName {args.sys_name}",
        "sysLocation Demo clinic",
        "sysContact it@example.org",
        "dontLogTCPWrappersConnects yes",
    ]
    if args.v3_user:
        lines.append(f'createUser {args.v3_user} SHA "{args.v3_auth_key}" AES "{args.v3_priv_key}"')
        lines.append(f"rouser {args.v3_user} priv")
    if args.wan_switch:
        # Writable: this one value, with this community, from loopback.
        lines.append(f"rwcommunity {args.wan_switch} 127.0.0.1 {wan_oid()}")
        lines.append(f"override -rw {wan_oid()} integer 1")
    return "\n".join(lines) + "\n"


def device_toml(args: argparse.Namespace) -> str:
    out = ['[[devices]]', 'name = "router"', 'kind = "snmp"', 'host = "127.0.0.1"',
           f"port = {args.port}"]
    if args.v3_user:
        out += ['version = "3"', f'user = "{args.v3_user}"', 'auth_protocol = "sha"',
                f'auth_key = "{args.v3_auth_key}"', 'priv_protocol = "aes128"',
                f'priv_key = "{args.v3_priv_key}"']
    else:
        out += ['version = "2c"', f'community = "{args.community}"']
    if args.wan_switch:
        out.append(f'wan_interface = "{WAN_INTERFACE}"')
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="UDP port on 127.0.0.1")
    parser.add_argument("--community", required=True, help="read-only v2c community")
    parser.add_argument("--workdir", type=Path, help="where snmpd.conf, the log and state go")
    parser.add_argument("--sys-name", default="clinic-router", help="sysName to report")
    parser.add_argument("--v3-user", help="also accept this SNMPv3 user (SHA/AES)")
    parser.add_argument("--v3-auth-key", default="", help="its auth passphrase (>= 8 characters)")
    parser.add_argument("--v3-priv-key", default="", help="its privacy passphrase (>= 8 characters)")
    parser.add_argument("--wan-switch", metavar="COMMUNITY",
                        help="let SNMP SETs with this community take the WAN (lo) down and up")
    parser.add_argument("--print-config", action="store_true",
                        help="print the agent's [[devices]] entry for this router and exit")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error("--port must be 1-65535")
    if args.community == "public":
        parser.error('pick a community other than "public"; the agent refuses it')
    if args.wan_switch is not None and args.wan_switch in ("", "public", args.community):
        parser.error("--wan-switch needs a community of its own")
    if args.v3_user and (len(args.v3_auth_key) < 8 or len(args.v3_priv_key) < 8):
        parser.error("--v3-auth-key and --v3-priv-key need at least 8 characters")
    if args.print_config:
        sys.stdout.write(device_toml(args))
        return
    if args.workdir is None:
        parser.error("--workdir is required (unless --print-config)")

    workdir = args.workdir.resolve()
    (workdir / "persist").mkdir(parents=True, exist_ok=True)
    conf = workdir / "snmpd.conf"
    conf.write_text(conf_text(args))
    env = dict(os.environ, SNMP_PERSISTENT_DIR=str(workdir / "persist"),
               # No MIB files needed to serve; without this snmpd logs pages of parse errors.
               MIBS="", MIBDIRS=str(workdir / "no-mibs"))
    files = [str(conf)]
    persisted = workdir / "persist" / "snmpd.conf"
    if persisted.exists():
        # -C skips default files, the persistent one included; naming it keeps the v3 engine
        # ID and boot counter across restarts, like a real router.
        files.append(str(persisted))
    snmpd = find_snmpd()
    command = [snmpd, "-f", "-C", "-c", ",".join(files), "-Lf", str(workdir / "snmpd.log")]
    print(f"sim_router: snmpd on udp 127.0.0.1:{args.port}, log {workdir / 'snmpd.log'}",
          file=sys.stderr, flush=True)
    os.execve(snmpd, command, env)


if __name__ == "__main__":
    main()
