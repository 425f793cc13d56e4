"""Set a few keys in a TOML file the technician may have edited, keeping everything else.

Only plain ``key = value`` lines of the top level or of a ``[table]`` are changed (a commented-out
``# key = ...`` line of that table is taken over, otherwise the key is added to the table). The
result is read back with ``tomllib``: if the keys do not hold exactly the new values (a dotted
key, an inline table, a value over several lines), ``EditError`` is raised and nothing is written.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from agent.errors import AgentError

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


class EditError(AgentError):
    """The file cannot be edited safely; ``keys`` are the ones to set by hand."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        super().__init__(", ".join(keys))


def literal(value: Any) -> str:
    """A TOML literal for a str, bool or int (a JSON string is a valid TOML basic string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _span(lines: list[str], table: str) -> tuple[int, int] | None:
    """[start, end) of the lines of ``table`` ("" = top level), headers excluded."""
    start = 0 if table == "" else None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if not m:
            continue
        if start is not None:
            return start, i
        if m.group(1) == "[" and m.group(2).strip() == table:
            start = i + 1
    return (start, len(lines)) if start is not None else None


def set_keys(text: str, changes: Mapping[tuple[str, str], Any]) -> str:
    """``text`` with each ``(table, key)`` set to its value; ``EditError`` if that is unsafe."""
    lines = text.splitlines()
    for (table, key), value in changes.items():
        new_line = f"{key} = {literal(value)}"
        span = _span(lines, table)
        if span is None:
            if lines and lines[-1].strip():
                lines.append("")
            lines += [f"[{table}]", new_line]
            continue
        start, end = span
        active = re.compile(rf"^\s*{re.escape(key)}\s*=")
        commented = re.compile(rf"^\s*#\s*{re.escape(key)}\s*=")
        hit = next((i for i in range(start, end) if active.match(lines[i])), None)
        if hit is None:
            hit = next((i for i in range(start, end) if commented.match(lines[i])), None)
        if hit is not None:
            lines[hit] = new_line
            continue
        # After the table's last setting (not after the comments that introduce the next one).
        at = start
        for i in range(start, end):
            if lines[i].strip() and not lines[i].lstrip().startswith("#"):
                at = i + 1
        if table == "" and at == 0:
            at = next((i for i in range(start, end) if not lines[i].lstrip().startswith("#")), end)
        lines.insert(at, new_line)
    result = "\n".join(lines) + "\n"
    check(result, changes)
    return result


def check(text: str, changes: Mapping[tuple[str, str], Any]) -> None:
    """Raise ``EditError`` unless ``text`` parses and holds every change exactly."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise EditError([_name(t, k) for t, k in changes]) from None
    wrong = []
    for (table, key), value in changes.items():
        holder = data if table == "" else data.get(table)
        if not isinstance(holder, dict) or holder.get(key) != value:
            wrong.append(_name(table, key))
    if wrong:
        raise EditError(wrong)


def _name(table: str, key: str) -> str:
    return f"{table}.{key}" if table else key
