"""``clinic-agent fleet ...``: the operator's side of remote management (docs/remote-management.md).

    keygen   an Ed25519 key pair: NAME.key stays with the operator, NAME.pub goes to every site
    sign     a config push, signed into a bundle file (one envelope per --chunk-size sites; for
             signing away from the broker)
    push     sign (or take a signed bundle) and publish, retained, to each site's config/set the
             envelope that lists it
    command  poll_now | diagnostics | resend, signed, to one or more sites; prints the results
    status   one row per site seen on the broker: online, last seen, config, backlog, problems

Exit codes as ``clinic-agent``: 0 fine, 1 something is wrong (a site refused, broker down),
2 bad arguments or files.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import SITE_ID_PATTERN
from agent.publish.topics import Topics
from agent.remote.bundle import DEFAULT_CHUNK_SIZE, Bundle, parse_bundle, sign_bundle
from agent.remote.envelope import (
    MAX_SITES,
    KeyFileError,
    Malformed,
    generate_keypair,
    load_private_key,
    seal,
)
from agent.remote.fleet import (
    BrokerOptions,
    FleetError,
    FleetView,
    OperatorLink,
    command_payload,
    config_payload,
    format_table,
    overlay_payload,
    revert_payload,
)
from agent.remote.presign import check_config, check_overlay

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
DEFAULT_VALID_FOR = "7d"
FINAL_CONFIG_EVENTS = ("applied", "rejected", "rolled_back", "reverted")


def register(fleet: argparse.ArgumentParser, t: object = None) -> None:
    """Add the operator's actions to ``clinic-agent fleet`` (the operator's side speaks English)."""
    fleet.set_defaults(func=lambda args: _usage(fleet))
    sub = fleet.add_subparsers(metavar="ACTION")

    p = sub.add_parser("keygen", help="create an Ed25519 signing key pair")
    p.add_argument("--dir", default=".", help="where to write NAME.key and NAME.pub (default: .)")
    p.add_argument("--name", default="operator", help="file name stem (default: operator)")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("sign", help="check, then sign a config (or an overlay, or a revert) for "
                       "one or more sites into a bundle file (one envelope per --chunk-size "
                       "sites)")
    p.add_argument("config", nargs="?", help="the TOML config (or overlay) to push")
    _signing_args(p, version=True)
    _content_args(p)
    p.add_argument("-o", "--output", help="bundle file to write, one envelope a line "
                   "(default: stdout)")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("push", help="publish a signed config to sites (retained: offline sites "
                       "get it when they connect)")
    p.add_argument("config", nargs="?", help="the TOML config to sign and push")
    p.add_argument("--signed", metavar="BUNDLE", help="push this bundle (or envelope) from "
                   "`fleet sign` instead (its sites are the targets)")
    _signing_args(p, version=True)
    _content_args(p)
    _broker_args(p)
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for each site to report applied / rejected / rolled back")
    p.add_argument("--no-retain", action="store_true", help="only sites online now get it")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("command", help="send a signed remote command and print the results")
    p.add_argument("name", choices=("poll_now", "diagnostics", "resend"))
    _signing_args(p, version=False)
    p.add_argument("--device", help="poll_now: only this device")
    p.add_argument("--first-seq", type=int, help="resend: first sequence number")
    p.add_argument("--last-seq", type=int, help="resend: last sequence number")
    _broker_args(p)
    p.add_argument("--wait", type=float, default=15.0, metavar="SECONDS",
                   help="wait this long for the results (default: 15)")
    p.set_defaults(func=cmd_command)

    p = sub.add_parser("status",
                       help="every site seen on the broker: online, config, backlog, problems")
    _broker_args(p)
    p.add_argument("--listen", type=float, default=35.0, metavar="SECONDS",
                   help="listen this long for the sites' health readings, sent every "
                   "status_interval_s (default: 35; ends early once every online site reported)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _signing_args(p: argparse.ArgumentParser, *, version: bool) -> None:
    p.add_argument("--key", help="the operator's private key (NAME.key)")
    p.add_argument("--site", action="append", dest="sites", metavar="SITE", default=[],
                   help="a target site id; repeat for several sites")
    p.add_argument("--sites-file", metavar="FILE", help="target site ids, one a line "
                   "(# comments); with --site, both")
    if version:
        p.add_argument("--version", type=int, help="config version, higher than any pushed "
                       "before (default: the current time in seconds)")
        p.add_argument("--valid-for", default=DEFAULT_VALID_FOR, metavar="DURATION",
                       help="a site offline longer than this refuses the push (e.g. 12h, 7d; "
                       f"default {DEFAULT_VALID_FOR})")
        p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="N",
                       help="sign one envelope per N sites, each published only to its sites "
                       f"(default {DEFAULT_CHUNK_SIZE}; smaller: less for each site to download "
                       "and for the broker to keep)")


def _content_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overlay", action="store_true", help="CONFIG is an overlay: only the "
                   "tables and keys it sets change, merged onto each site's config at the site")
    p.add_argument("--revert", type=int, metavar="VERSION", help="instead of CONFIG: undo push "
                   "VERSION where it is in effect (each site goes back to its config before it)")
    p.add_argument("--check-against", action="append", default=[], metavar="SITE_CONFIG",
                   help="also check the push against this site's config file, as that site "
                   "will (repeat for several)")


def _sites(args: argparse.Namespace) -> list[str]:
    sites = list(args.sites or [])
    if getattr(args, "sites_file", None):
        try:
            lines = Path(args.sites_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise FleetError(f"--sites-file {args.sites_file}: {exc}") from exc
        sites += [w for line in lines if (w := line.split("#", 1)[0].strip())]
    bad = [s for s in sites if not re.fullmatch(SITE_ID_PATTERN, s)]
    if bad:
        raise FleetError(f"not site ids: {', '.join(bad[:5])}")
    if not sites:
        raise FleetError("no target site: give --site (repeatable) or --sites-file")
    args.sites = sorted(set(sites))
    args.sites_file = None
    return list(args.sites)


def _broker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, metavar="HOST[:PORT]", help="the central broker")
    p.add_argument("--username", help="the operator's broker account")
    p.add_argument("--password-file", help="file whose first line is the account's password")
    p.add_argument("--tls", action="store_true", help="connect with TLS (port 8883 by default)")
    p.add_argument("--ca-file", help="CA of the broker's certificate (default: system CAs)")
    p.add_argument("--prefix", default="clinics", help="topic prefix (default: clinics)")


# -- keygen / sign ---------------------------------------------------------------------------------

def cmd_keygen(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.name):
        return _fail("--name: letters, digits, '_', '.', '-' only", EXIT_USAGE)
    try:
        key_path, pub_path, kid = generate_keypair(args.dir, args.name)
    except (OSError, FileExistsError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    print(f"private key: {key_path} (keep it secret; never copy it to a site)")
    print(f"public key:  {pub_path} (install in every site's [remote] trusted_keys_dir)")
    print(f"key id:      {kid}")
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    try:
        bundle = _sign_config(args)
    except FleetError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if args.output:
        Path(args.output).write_bytes(bundle.to_bytes() + b"\n")
        shown = ", ".join(args.sites[:10]) + (f" and {len(args.sites) - 10} more"
                                              if len(args.sites) > 10 else "")
        print(f"{args.output}: {_what(args)} v{_version(args)} for {shown}: "
              f"{len(bundle.envelopes)} envelope(s) of at most {args.chunk_size} site(s), "
              f"the largest {bundle.largest:,} bytes", file=sys.stderr)
    else:
        sys.stdout.write(bundle.to_bytes().decode() + "\n")
    return EXIT_OK


def _what(args: argparse.Namespace) -> str:
    return "revert" if args.revert is not None else "overlay" if args.overlay else "config"


def _sign_config(args: argparse.Namespace) -> Bundle:
    """Check once, then sign one envelope per chunk of sites: nothing that every site would
    refuse gets a signature."""
    sites = _sites(args)
    if not args.key:
        raise FleetError("--key is needed to sign")
    chunk_size = chunk_size_arg(args.chunk_size)
    version, valid_for = _version(args), _duration(args.valid_for)
    if args.revert is not None:
        if args.config or args.overlay:
            raise FleetError("--revert takes no CONFIG and no --overlay")
        payload = revert_payload(args.revert, sites=sites, version=version, valid_for_s=valid_for)
        return sign_bundle(payload, _private_key(args.key), chunk_size=chunk_size)
    if not args.config:
        raise FleetError("give the CONFIG (or --overlay CONFIG, or --revert VERSION) to sign")
    try:
        text = Path(args.config).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetError(f"{args.config}: {exc}") from exc
    check = check_overlay if args.overlay else check_config
    found = check(text, sites, bases=args.check_against)
    if found.problems:
        listed = "\n".join(f"  {p}" for p in found.problems)
        raise FleetError(f"{args.config}: not signed: {len(found.problems)} problem(s) every "
                         f"site would refuse it for:\n{listed}")
    for note in found.site_only:
        print(f"{args.config}: checked at each site only: {note}", file=sys.stderr)
    make = overlay_payload if args.overlay else config_payload
    payload = make(text, sites=sites, version=version, valid_for_s=valid_for)
    return sign_bundle(payload, _private_key(args.key), chunk_size=chunk_size)


def chunk_size_arg(n: int) -> int:
    """``--chunk-size``, checked (shared with ``clinic-central rollout``)."""
    if not 1 <= n <= MAX_SITES:
        raise FleetError(f"--chunk-size must be 1 to {MAX_SITES}, got {n}")
    return n


def _version(args: argparse.Namespace) -> int:
    if args.version is None:
        args.version = int(time.time())
    if args.version < 1:
        raise FleetError("--version must be 1 or more")
    version: int = args.version
    return version


def _private_key(path: str) -> Ed25519PrivateKey:
    try:
        return load_private_key(path)
    except KeyFileError as exc:
        raise FleetError(str(exc)) from exc


def _duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if not m:
        raise FleetError(f"{text!r}: expected a duration such as 90s, 30m, 12h or 7d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


# -- push ------------------------------------------------------------------------------------------

def cmd_push(args: argparse.Namespace) -> int:
    try:
        if args.signed:
            if args.config:
                raise FleetError("give either CONFIG or --signed, not both")
            bundle = parse_bundle(Path(args.signed).read_bytes(), source=args.signed)
            payload = bundle.first.payload
            if payload.kind != "config":
                raise FleetError(f"{args.signed}: not a config push")
            sites, version = list(bundle.sites), payload.body.get("version")
            success = "reverted" if "revert" in payload.body else "applied"
        else:
            bundle = _sign_config(args)
            sites, version = args.sites, args.version
            success = "reverted" if args.revert is not None else "applied"
        opts = _broker_options(args)
    except (FleetError, OSError, Malformed) as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        with OperatorLink(opts) as link:
            if args.wait > 0:
                link.subscribe([Topics(opts.prefix, s).config_state for s in sites])
                link.sync()
            for site in sites:
                link.publish(Topics(opts.prefix, site).config_set, bundle.for_site(site),
                             retain=not args.no_retain)
            print(f"config v{version} published to {len(sites)} site(s)")
            if args.wait <= 0:
                return EXIT_OK
            outcomes = _await_config(link, opts.prefix, sites, version, args.wait)
    except FleetError as exc:
        return _fail(str(exc), EXIT_PROBLEM)
    for site in sites:
        event = outcomes.get(site)
        if event is None:
            print(f"{site}: no answer within {args.wait:g} s "
                  "(offline? it gets the push when it connects)")
        else:
            extra = "".join(f"\n    {p}" for p in event.get("problems", ()))
            print(f"{site}: {event['type']}" + (f" ({event.get('reason')}: {event.get('detail')})"
                                                if event["type"] != success else "") + extra)
    ok = all(outcomes.get(s, {}).get("type") == success for s in sites)
    return EXIT_OK if ok else EXIT_PROBLEM


def _await_config(link: OperatorLink, prefix: str, sites: list[str], version: Any,
                  wait_s: float) -> dict[str, dict[str, Any]]:
    """Each site's final event about ``version``, as published on its config state topic."""
    by_topic = {Topics(prefix, s).config_state: s for s in sites}
    outcomes: dict[str, dict[str, Any]] = {}
    for topic, payload, _ in _messages(link, wait_s, until=lambda: len(outcomes) == len(sites)):
        site = by_topic.get(topic)
        try:
            event = json.loads(payload)["event"]
        except (ValueError, KeyError, TypeError):
            continue
        if site and isinstance(event, dict) and event.get("version") == version \
                and event.get("type") in FINAL_CONFIG_EVENTS:
            outcomes[site] = event
    return outcomes


def _messages(link: OperatorLink, wait_s: float, *,
              until: Callable[[], bool]) -> Iterator[tuple[str, bytes, bool]]:
    """Every message held by ``link.sync()``, then new ones until ``until()`` or ``wait_s``
    passes."""
    deadline = time.monotonic() + wait_s
    while link.pending:
        yield link.pending.pop(0)
    while not until():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            yield link.inbox.get(timeout=remaining)
        except queue.Empty:
            return


# -- command ---------------------------------------------------------------------------------------

def cmd_command(args: argparse.Namespace) -> int:
    cmd_args: dict[str, Any] = {}
    if args.device:
        cmd_args["device"] = args.device
    if args.first_seq is not None or args.last_seq is not None:
        cmd_args.update(first_seq=args.first_seq, last_seq=args.last_seq)
    try:
        if not args.key:
            raise FleetError("--key is needed to sign")
        payload = command_payload(args.name, cmd_args, sites=_sites(args))
        envelope = seal(payload, _private_key(args.key))
        opts = _broker_options(args)
    except FleetError as exc:
        return _fail(str(exc), EXIT_USAGE)
    sites = payload["sites"]
    results: dict[str, dict[str, Any]] = {}
    try:
        with OperatorLink(opts) as link:
            topics = {Topics(opts.prefix, s).command_result: s for s in sites}
            link.subscribe(topics)
            for site in sites:
                link.publish(Topics(opts.prefix, site).command, envelope,
                             expires_at=payload["not_after"])
            for topic, raw, _ in _messages(link, args.wait,
                                           until=lambda: len(results) == len(sites)):
                try:
                    doc = json.loads(raw)
                except ValueError:
                    continue
                if topic in topics and isinstance(doc, dict) and doc.get("id") == payload["id"]:
                    results[topics[topic]] = doc
    except FleetError as exc:
        return _fail(str(exc), EXIT_PROBLEM)
    print(json.dumps({s: results.get(s) for s in sites}, indent=2))
    return EXIT_OK if len(results) == len(sites) and all(r.get("ok") for r in results.values()) \
        else EXIT_PROBLEM


# -- status ----------------------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    try:
        opts = _broker_options(args)
    except FleetError as exc:
        return _fail(str(exc), EXIT_USAGE)
    view = FleetView(opts.prefix)
    try:
        with OperatorLink(opts) as link:
            link.subscribe(f"{opts.prefix}/+/{leaf}" for leaf in
                           ("status", "config/state", "readings", "backlog"))
            link.sync()
            # The retained state of every site is in; now the health readings, sent live.
            print(f"listening for up to {args.listen:g} s for the sites' health readings",
                  file=sys.stderr, flush=True)
            for topic, payload, retained in _messages(
                    link, args.listen,
                    until=lambda: bool(view.sites) and not view.waiting_for_health()):
                view.observe(topic, payload, retained=retained, now=time.time())
    except FleetError as exc:
        return _fail(str(exc), EXIT_PROBLEM)
    rows = view.rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows, now=time.time()) if rows
              else "no site has published on this broker")
    return EXIT_OK


def _broker_options(args: argparse.Namespace) -> BrokerOptions:
    host, _, port = args.broker.rpartition(":") if ":" in args.broker else (args.broker, "", "")
    if port and not port.isdigit():
        raise FleetError(f"--broker {args.broker!r}: expected HOST or HOST:PORT")
    password = None
    if args.password_file:
        try:
            password = Path(args.password_file).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            raise FleetError(f"--password-file {args.password_file}: cannot read a password "
                             f"({exc.__class__.__name__})") from None
    return BrokerOptions(host=host, port=int(port) if port else (8883 if args.tls else 1883),
                         username=args.username, password=password, tls=args.tls,
                         ca_file=args.ca_file, prefix=args.prefix.rstrip("/"))


def _fail(message: str, code: int) -> int:
    print(f"clinic-agent fleet: {message}", file=sys.stderr)
    return code
