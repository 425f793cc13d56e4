"""Typed, path-aware reading of TOML tables that collects every problem instead of stopping.

Each accessor returns a usable value even when the input is wrong (the default, or a neutral
value), so validation continues and the whole file's problems are reported at once. Problems read
like ``devices[1].port: expected an integer 1-65535, got "502a"``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

_MISSING = object()


def show(value: Any) -> str:
    """Render a bad value the way the technician wrote it in the TOML file."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


class Problems:
    """Collects problems for one config document."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def root(self, data: Any) -> "Table":
        return Table(self, data, "")


class Table:
    """A view on one TOML table; records problems under its key path and flags unknown keys."""

    def __init__(self, problems: Problems, data: Any, path: str) -> None:
        self.problems = problems
        self.path = path
        if not isinstance(data, dict):
            problems.add(path, f"expected a table, got {show(data)}")
            data = {}
        self.data: dict[str, Any] = data
        self._seen: set[str] = set()

    # -- helpers -------------------------------------------------------------------------------

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str | None, message: str) -> None:
        self.problems.add(self.key_path(key) if key else self.path, message)

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.problem(key, "is required but missing")
        return _MISSING

    # -- scalars -------------------------------------------------------------------------------

    def str(self, key: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None,
            pattern: str | None = None, what: str | None = None) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        options = list(choices) if choices is not None else None
        if not isinstance(raw, str):
            self.problem(key, f"expected {what or 'a string'}, got {show(raw)}")
            return None if default is _MISSING else default
        if options is not None and raw not in options:
            self.problem(key, f"expected one of {', '.join(map(show, options))}, got {show(raw)}")
            return None if default is _MISSING else default
        if pattern is not None and not re.fullmatch(pattern, raw):
            self.problem(key, f"expected {what or 'a string matching ' + pattern}, got {show(raw)}")
            return None if default is _MISSING else default
        return raw

    def int(self, key: str, default: Any = _MISSING, *, min: int | None = None,
            max: int | None = None) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        if isinstance(raw, bool) or not isinstance(raw, int) or \
                (min is not None and raw < min) or (max is not None and raw > max):
            self.problem(key, f"expected {_range_words('an integer', min, max)}, got {show(raw)}")
            return None if default is _MISSING else default
        return raw

    def float(self, key: str, default: Any = _MISSING, *, min: float | None = None,
              max: float | None = None, min_exclusive: bool = False) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool)
        if ok and min is not None:
            ok = raw > min if min_exclusive else raw >= min
        if ok and max is not None:
            ok = raw <= max
        if not ok:
            words = _range_words("a number", min, max)
            if min_exclusive and min is not None and max is None:
                words = f"a number greater than {min:g}"
            self.problem(key, f"expected {words}, got {show(raw)}")
            return None if default is _MISSING else default
        return float(raw)

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        if not isinstance(raw, bool):
            self.problem(key, f"expected true or false, got {show(raw)}")
            return None if default is _MISSING else default
        return raw

    def secret(self, key: str, *, min_length: int = 1) -> str | None:
        """A password, community or key: a string checked without ever echoing its value into a
        problem (``password = 123456`` must not end up in the journal). None if absent or bad."""
        raw = self.raw(key)
        if raw is None:
            return None
        if not isinstance(raw, str):
            self.problem(key, "expected a string (in quotes)")
            return None
        if len(raw) < min_length:
            what = "a non-empty string" if min_length <= 1 else f"at least {min_length} characters"
            self.problem(key, f"expected {what}, got {len(raw)} character(s)")
            return None
        return raw

    def str_list(self, key: str, default: Any = _MISSING) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            self.problem(key, f"expected a list of strings, got {show(raw)}")
            return None if default is _MISSING else default
        return tuple(raw)

    # -- nested --------------------------------------------------------------------------------

    def table(self, key: str, *, required: bool = False) -> "Table":
        self._seen.add(key)
        if key not in self.data:
            if required:
                self.problem(key, "is required but missing")
            return Table(self.problems, {}, self.key_path(key))
        return Table(self.problems, self.data[key], self.key_path(key))

    def tables(self, key: str, *, required: bool = False) -> list["Table"]:
        """An array of tables (``[[key]]`` in TOML)."""
        self._seen.add(key)
        raw = self.data.get(key)
        if raw is None:
            if required:
                self.problem(key, "is required but missing")
            return []
        if not isinstance(raw, list):
            self.problem(key, f"expected a list of tables ([[{key}]]), got {show(raw)}")
            return []
        return [Table(self.problems, item, f"{self.key_path(key)}[{i}]") for i, item in enumerate(raw)]

    def raw(self, key: str, default: Any = None) -> Any:
        """The untyped value, for callers that validate a shape of their own."""
        self._seen.add(key)
        return self.data.get(key, default)

    def finish(self) -> None:
        """Report keys nobody asked for: usually a typo that would otherwise be silently ignored."""
        for key in self.data:
            if key not in self._seen:
                self.problem(key, "is not a known setting (misspelt?)")


def _range_words(noun: str, lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"{noun} {lo}-{hi}"
    if lo is not None:
        return f"{noun} >= {lo}"
    if hi is not None:
        return f"{noun} <= {hi}"
    return noun
