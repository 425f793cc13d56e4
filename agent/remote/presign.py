"""Checks on the operator's side, before anything is signed (``fleet sign``/``push``, rollouts).

A signature is a promise to every site listed; a config that every site will refuse should never
get one. What can be known without a site's own file is checked here, with the site's words:

* a whole config: everything the site checks (``load_effective``, the one validator), against a
  stand-in local file that has only the site id and the default state directory; local-only keys
  and credentials are refused exactly as a site refuses them.
* an overlay: its shape (``parse_overlay``: device names, removals, no local-only keys), and the
  schema of every table it sets, merged onto a minimal stand-in (an ``[mqtt]`` host only). A
  ``[[devices]]`` entry without ``kind`` changes part of a device each site has: its keys can
  only be checked at the site, against that device (listed in ``Checked.site_only``).
* both, for several sites: no ``mqtt.client_id`` or ``mqtt.username``, which would give every
  site the same identity on the broker (they would throw each other off).
* with ``bases`` (site files the operator has, e.g. a copy of a site's agent.toml): the whole
  check that site will make, on that file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import parse_config, parse_toml_text
from agent.errors import ConfigError
from agent.remote.overlay import (
    LOCAL_ONLY_PATHS,
    Overlay,
    apply_overlay,
    merge,
    parse_overlay,
    to_toml,
)
from agent.remote.push import LocalBasis, load_effective

STAND_IN_STATE_DIR = "/var/lib/clinic-agent"
STAND_IN_BROKER = "broker.invalid"
_DEVICE_INDEX = re.compile(r"^devices\[(\d+)\]")


@dataclass
class Checked:
    """What the operator-side check found; ``problems`` empty means it may be signed."""

    problems: list[str] = field(default_factory=list)
    site_only: list[str] = field(default_factory=list)   # what only each site can check


def check_config(text: str, sites: Sequence[str], *,
                 bases: Iterable[str | Path] = ()) -> Checked:
    """A whole config for ``sites``: every problem a site would report that does not depend on
    its own file."""
    out = Checked()
    try:
        doc = parse_toml_text(text, source="config")
    except ConfigError as exc:
        out.problems.extend(exc.problems)
        return out
    _shared_identity(doc, sites, out)
    for key_path in LOCAL_ONLY_PATHS:
        parts = key_path.split(".")
        table = doc.get(parts[0]) if len(parts) == 2 else doc
        if isinstance(table, dict) and parts[-1] in table:
            del table[parts[-1]]
            out.problems.append(f"{key_path}: set in each site's local file only; a push cannot "
                                "change it (take it out of the pushed file)")
    stand_in = LocalBasis({"site_id": sites[0] if sites else "SITE", "state_dir":
                           STAND_IN_STATE_DIR}, None, "stand-in")
    try:
        load_effective(to_toml(doc), stand_in, source="config")
    except ConfigError as exc:
        out.problems.extend(exc.problems)
    for path in bases:
        _against_base(path, lambda local: load_effective(text, local, source="config"), out)
    return out


def check_overlay(text: str, sites: Sequence[str], *,
                  bases: Iterable[str | Path] = ()) -> Checked:
    """An overlay for ``sites``: its shape, and the schema of what it sets, as far as that can be
    known without each site's config."""
    out = Checked()
    try:
        overlay = parse_overlay(text)
    except ConfigError as exc:
        out.problems.extend(exc.problems)
        return out
    _shared_identity(dict(overlay.changes), sites, out)
    out.problems.extend(_schema(overlay, sites[0] if sites else "SITE", out))
    for path in bases:
        def check(local: LocalBasis) -> object:
            return load_effective(apply_overlay(local.doc, overlay), local, source="merged")
        _against_base(path, check, out)
    return out


def _schema(overlay: Overlay, site: str, out: Checked) -> list[str]:
    complete = [d for d in overlay.changes.get("devices", ()) if "kind" in d]
    partial = [d["name"] for d in overlay.changes.get("devices", ()) if "kind" not in d]
    for name in partial:
        out.site_only.append(f"devices.{name}: changes part of the site's own device (checked "
                             "at each site, against it)")
    for parts in overlay.remove:
        out.site_only.append(f"{'.'.join(parts)}: removed where the site has it")
    changes = {k: v for k, v in overlay.changes.items() if k != "devices"}
    if complete:
        changes["devices"] = complete
    stand_in = merge({"site_id": site, "mqtt": {"host": STAND_IN_BROKER}},
                     Overlay(changes, ()))
    try:
        parse_config(stand_in, source="overlay")
    except ConfigError as exc:
        names = [d["name"] for d in complete]
        return [_device_path(p, names) for p in exc.problems]
    return []


def _device_path(problem: str, names: list[str]) -> str:
    """``devices[0].port`` of the stand-in is the overlay's device ``ups``: say so."""
    m = _DEVICE_INDEX.match(problem)
    if m and int(m.group(1)) < len(names):
        return f"devices.{names[int(m.group(1))]}{problem[m.end():]}"
    return problem


def _shared_identity(doc: dict[str, object], sites: Sequence[str], out: Checked) -> None:
    mqtt = doc.get("mqtt")
    if len(set(sites)) > 1 and isinstance(mqtt, dict):
        for key in ("client_id", "username"):
            if key in mqtt:
                out.problems.append(
                    f"mqtt.{key}: one value for {len(set(sites))} sites would give them all the "
                    "same identity on the broker (each would throw the others off); leave it to "
                    "each site's local file")


def _against_base(path: str | Path, check: Callable[[LocalBasis], object], out: Checked) -> None:
    try:
        local = LocalBasis.read(path)
        check(local)
    except ConfigError as exc:
        out.problems.extend(f"{path}: {p}" for p in exc.problems)
