"""Overlay pushes: a few tables or keys, merged onto each site's own config at the site.

    overlay TOML --parse_overlay--> Overlay (shape checked: devices by name, removals, no
                                    local-only keys)
    site's config in effect --site_base--> base document (local-only keys and credentials out)
    merge(base, overlay) --> merged document --to_toml--> text --load_effective--> AgentConfig

Merge rules (docs/remote-management.md, "Overlay pushes"):

* ``[overlay] remove = ["buffer.backlog_kbps", "devices.ups", "devices.ups.timeout_s"]`` is
  applied first, to the base; a path the base does not have is skipped (sites differ).
* Tables merge key by key, at any depth (``[events.mains_lost]`` changes one rule's keys).
* ``[[devices]]`` entries are matched by ``name``: a device the site has is merged key by key,
  a name the site does not have is added at the end. Removing ``devices.NAME`` and adding it
  again replaces the whole device.
* Everything else replaces what the base has: scalars, arrays, and arrays of tables other than
  ``devices`` (a device's ``[[devices.registers]]`` list is one unit).

The merged document is written back as TOML (``to_toml``) and from there goes through exactly the
checks of a whole-config push. The writer is ours, not a library's, so the site's wheelhouse does
not grow; it writes only what ``tomllib`` reads back as the same document (tests/fuzz).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.config import parse_toml_text
from agent.config.devices import DEVICE_NAME_PATTERN
from agent.errors import ConfigError

OVERLAY_TABLE = "overlay"     # the overlay's own instructions; never part of a config
MAX_REMOVALS = 200
MAX_PATH_PARTS = 4
# Only the site's local file may set these (agent.remote.push.LOCAL_ONLY*); an overlay that names
# them is refused outright instead of being checked against each site's value.
LOCAL_ONLY_PATHS = ("site_id", "state_dir", "secrets_file", "control_socket", "remote",
                     "buffer.path", "mqtt.password")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PATH_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")

Doc = dict[str, Any]


@dataclass(frozen=True)
class Overlay:
    """A parsed, shape-checked overlay: what to remove first, then what to merge."""

    changes: Mapping[str, Any]          # the TOML document without its [overlay] table
    remove: tuple[tuple[str, ...], ...]

    def device_names(self) -> list[str]:
        return [d["name"] for d in self.changes.get("devices", ())]


def parse_overlay(text: str, *, source: str = "overlay") -> Overlay:
    """Parse and shape-check an overlay's TOML. Raises ``ConfigError`` with every problem."""
    doc = parse_toml_text(text, source=source)
    problems: list[str] = []
    instructions = doc.pop(OVERLAY_TABLE, {})
    remove: list[tuple[str, ...]] = []
    if not isinstance(instructions, dict):
        problems.append(f"{OVERLAY_TABLE}: expected a table with remove = [...]")
        instructions = {}
    for key in instructions:
        if key != "remove":
            problems.append(f"{OVERLAY_TABLE}.{key}: unknown key (only remove)")
    paths = instructions.get("remove", [])
    if not isinstance(paths, list) or len(paths) > MAX_REMOVALS:
        problems.append(f"{OVERLAY_TABLE}.remove: expected a list of at most {MAX_REMOVALS} key "
                        "paths such as \"buffer.backlog_kbps\" or \"devices.ups\"")
        paths = []
    for i, path in enumerate(paths):
        parts = tuple(path.split(".")) if isinstance(path, str) else ()
        if not parts or len(parts) > MAX_PATH_PARTS \
                or not all(_PATH_PART.fullmatch(p) for p in parts):
            problems.append(f"{OVERLAY_TABLE}.remove[{i}]: not a key path such as "
                            "\"buffer.backlog_kbps\" or \"devices.ups\"")
            continue
        remove.append(parts)
    devices = doc.get("devices")
    if devices is not None:
        if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
            problems.append("devices: expected [[devices]] tables, each with its name")
        else:
            seen: set[str] = set()
            for i, d in enumerate(devices):
                name = d.get("name")
                if not isinstance(name, str) or not re.fullmatch(DEVICE_NAME_PATTERN, name):
                    problems.append(f"devices[{i}].name: every [[devices]] of an overlay names "
                                    "the device it changes or adds")
                elif name in seen:
                    problems.append(f"devices[{i}].name: {name!r} appears twice")
                else:
                    seen.add(name)
    for path in LOCAL_ONLY_PATHS:
        parts = tuple(path.split("."))
        if _has(doc, parts) or parts in remove or (len(parts) == 2 and (parts[0],) in remove):
            problems.append(f"{path}: set in the site's local file only; an overlay cannot "
                            "change or remove it")
    if problems:
        raise ConfigError(problems, source=source)
    return Overlay(doc, tuple(remove))


def site_base(doc: Mapping[str, Any]) -> Doc:
    """The document an overlay is merged onto: the config in effect at the site, without what a
    push inherits from the local file anyway (site id, paths, ``[remote]``, credentials)."""
    base = copy.deepcopy(dict(doc))
    for key in ("site_id", "state_dir", "secrets_file", "control_socket", "remote"):
        base.pop(key, None)
    if isinstance(base.get("buffer"), dict):
        base["buffer"].pop("path", None)
    if isinstance(base.get("mqtt"), dict):
        # Inherited again from the local file (agent.remote.push.inherit_local).
        base["mqtt"].pop("username", None)
        base["mqtt"].pop("password", None)
    return base


def merge(base: Mapping[str, Any], overlay: Overlay) -> Doc:
    """``base`` with ``overlay`` applied (neither is changed)."""
    out = copy.deepcopy(dict(base))
    for path in overlay.remove:
        _remove(out, path)
    _merge_tables(out, copy.deepcopy(dict(overlay.changes)), top=True)
    return out


def _has(doc: Mapping[str, Any], parts: tuple[str, ...]) -> bool:
    node: Any = doc
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return False
        node = node[p]
    return True


def _remove(doc: Doc, parts: tuple[str, ...]) -> None:
    if parts[0] == "devices" and len(parts) >= 2:
        devices = doc.get("devices")
        if not isinstance(devices, list):
            return
        if len(parts) == 2:
            doc["devices"] = [d for d in devices
                              if not (isinstance(d, dict) and d.get("name") == parts[1])]
            return
        for d in devices:
            if isinstance(d, dict) and d.get("name") == parts[1]:
                _remove_in(d, parts[2:])
        return
    _remove_in(doc, parts)


def _remove_in(node: Any, parts: tuple[str, ...]) -> None:
    for p in parts[:-1]:
        if not isinstance(node, dict):
            return
        node = node.get(p)
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def _merge_tables(into: Doc, changes: Mapping[str, Any], *, top: bool = False) -> None:
    for key, value in changes.items():
        if top and key == "devices" and isinstance(value, list):
            into["devices"] = _merge_devices(into.get("devices"), value)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge_tables(into[key], value)
        else:
            into[key] = value


def _merge_devices(base: Any, changes: list[Any]) -> list[Any]:
    devices = list(base) if isinstance(base, list) else []
    index = {d.get("name"): i for i, d in enumerate(devices) if isinstance(d, dict)}
    for change in changes:
        i = index.get(change.get("name"))
        if i is None:
            index[change.get("name")] = len(devices)
            devices.append(change)
        else:
            merged = dict(devices[i])
            _merge_tables(merged, change)
            devices[i] = merged
    return devices


def apply_overlay(base_doc: Mapping[str, Any], overlay: Overlay) -> str:
    """The TOML text of ``overlay`` merged onto the config in effect (``base_doc``)."""
    return to_toml(merge(site_base(base_doc), overlay))


# -- a TOML writer for configuration documents -----------------------------------------------------

def to_toml(doc: Mapping[str, Any]) -> str:
    """TOML text that ``tomllib`` reads back as ``doc`` (tables as headers, the rest inline)."""
    lines: list[str] = []
    _write_table(lines, (), doc)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _write_table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    subtables = []
    for k, v in table.items():
        if isinstance(v, dict) or _is_table_array(v):
            subtables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in subtables:
        sub = (*path, k)
        header = ".".join(_key(p) for p in sub)
        if isinstance(v, dict):
            lines.extend(["", f"[{header}]"])
            _write_table(lines, sub, v)
        else:
            for item in v:
                lines.extend(["", f"[[{header}]]"])
                _write_table(lines, sub, item)


def _key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _string(k)


def _string(s: str) -> str:
    # A JSON string is a TOML basic string once DEL (allowed raw in JSON, not in TOML) is escaped.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
