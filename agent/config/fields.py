"""Typed, path-aware reading of TOML tables that collects every problem instead of stopping.

Each accessor returns a usable value even when the input is wrong (the default, or a neutral
value), so validation continues and the whole file's problems are reported at once. A problem is
a key path and a ``Text`` (a message id of ``agent.catalogue.config`` with its arguments), shown
in the reader's language; in English it reads like
``devices[1].port: expected an integer 1-65535, got "502a"``. Entries of a list of tables that
have a ``name`` are also named by it where they are shown: ``devices[1] (ups).port``.
"""

from __future__ import annotations

import builtins
import difflib
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.i18n import ENGLISH, Messages, Text, text

_MISSING = object()
HOST_WHAT = text("cfg.what.host")
_NUMBER_WHATS = ("cfg.what.int", "cfg.what.int_between", "cfg.what.int_min", "cfg.what.int_max",
                 "cfg.what.number", "cfg.what.number_between", "cfg.what.number_min",
                 "cfg.what.number_max", "cfg.what.number_above")


def show(value: Any) -> Any:
    """A bad value the way the technician wrote it in the TOML file (tables and lists in words)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return text("cfg.value.table")
    if isinstance(value, list):
        return text("cfg.value.list")
    return str(value)


def one_of(options: Iterable[Any]) -> str:
    return ", ".join(str(show(o)) for o in options)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was probably meant to be (case, typos), or None."""
    options = [c for c in candidates if isinstance(c, str)]
    folded = {c.casefold(): c for c in options}
    if word.casefold() in folded:
        return folded[word.casefold()]
    started = [c for f, c in folded.items() if f.startswith(word.casefold()) and len(word) >= 2]
    if started:
        return started[0]   # "aes" for "aes128": the rest of the word was left out
    found = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[found[0]] if found else None


@dataclass(frozen=True)
class Problem:
    """One problem: where (key path, and the same path with entry names) and what (a Text)."""

    path: str
    text: Text
    label: str = ""

    def render(self, t: Messages) -> str:
        where = self.label or self.path
        message = self.text.render(t)
        return f"{where}: {message}" if where else message

    def __str__(self) -> str:
        # The plain key path: the form the journal, pushes and scripts have always had.
        message = self.text.render(ENGLISH)
        return f"{self.path}: {message}" if self.path else message


class Problems:
    """Collects problems for one config document."""

    def __init__(self) -> None:
        self.details: list[Problem] = []

    @property
    def items(self) -> list[Problem]:
        return self.details

    def add(self, path: str, message: Text, label: str = "") -> None:
        self.details.append(Problem(path, message, label if label != path else ""))

    def root(self, data: Any) -> Table:
        return Table(self, data, "")


class Table:
    """A view on one TOML table; records problems under its key path and flags unknown keys."""

    def __init__(self, problems: Problems, data: Any, path: str, label: str | None = None) -> None:
        self.problems = problems
        self.path = path
        self.label = path if label is None else label
        self.finished = False
        if not isinstance(data, dict):
            problems.add(path, text("cfg.expected", what=text("cfg.what.table"), got=show(data)),
                         self.label)
            data = {}
        self.data: dict[str, Any] = data
        self._seen: set[str] = set()

    # -- helpers -------------------------------------------------------------------------------

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def key_label(self, key: str) -> str:
        return f"{self.label}.{key}" if self.label else key

    def problem(self, key: str | None, msg_id: str, /, **args: Any) -> None:
        """Record ``msg_id`` (agent.catalogue.config) with ``args`` under ``key``."""
        self.problems.add(self.key_path(key) if key else self.path, text(msg_id, **args),
                          self.key_label(key) if key else self.label)

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.problem(key, "cfg.required")
        return _MISSING

    def _expected(self, key: str, what: Text, raw: Any) -> None:
        """"expected WHAT, got RAW", with the fix when it is only the quotes."""
        if isinstance(raw, str) and what.id in _NUMBER_WHATS \
                and re.fullmatch(r"\s*-?[0-9]+(\.[0-9]+)?\s*", raw):
            self.problem(key, "cfg.expected_unquote", what=what, got=show(raw), key=key,
                         fixed=raw.strip())
        elif isinstance(raw, str) and what.id in _NUMBER_WHATS and (m := re.fullmatch(
                r"\s*([0-9]+(?:[.,][0-9]+)?)\s*(s|sec|secs|seconds|seg|segs|segundos)\s*", raw)):
            self.problem(key, "cfg.expected_seconds", what=what, got=show(raw), key=key,
                         fixed=m.group(1).replace(",", "."))
        elif isinstance(raw, str) and what.id in _NUMBER_WHATS \
                and re.fullmatch(r"\s*-?[0-9]+,[0-9]+\s*", raw):
            self.problem(key, "cfg.expected_decimal_point", what=what, got=show(raw), key=key,
                         fixed=raw.strip().replace(",", "."))
        else:
            self.problem(key, "cfg.expected", what=what, got=show(raw))

    # -- scalars -------------------------------------------------------------------------------
    # (these shadow str, int, float and bool in the class: later annotations say builtins.)

    def str(self, key: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None,
            pattern: str | None = None, what: Text | None = None, suggest: bool = True) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        options = list(choices) if choices is not None else None
        if not isinstance(raw, str):
            meant = [o for o in options or () if not isinstance(raw, (bool, dict, list))
                     and str(o).startswith(str(raw))]
            if meant:
                # version = 2 for "2c": the right word, without its quotes.
                self.problem(key, "cfg.expected_quotes", what=what or text("cfg.what.one_of",
                             choices=one_of(options or ())), got=show(raw), key=key,
                             fixed=show(meant[0]))
            else:
                self._expected(key, what or text("cfg.what.string"), raw)
            return None if default is _MISSING else default
        if options is not None and raw not in options:
            guess = closest(raw, options) if suggest else None
            if guess is not None:
                self.problem(key, "cfg.choice_did_you_mean", choices=one_of(options),
                             got=show(raw), suggestion=show(guess))
            else:
                self.problem(key, "cfg.choice", choices=one_of(options), got=show(raw))
            return None if default is _MISSING else default
        if pattern is not None and not re.fullmatch(pattern, raw):
            self.problem(key, "cfg.expected",
                         what=what or text("cfg.what.pattern", pattern=pattern), got=show(raw))
            return None if default is _MISSING else default
        return raw

    def host(self, key: builtins.str, default: Any = _MISSING) -> Any:
        """A host name or an IP address, checked as such (192.168.1.300 is neither)."""
        raw = self.str(key, default, what=HOST_WHAT)
        if not isinstance(raw, str) or raw is default:
            return raw
        why = host_problem(raw)
        if why is not None:
            msg_id, args = why
            self.problem(key, msg_id, got=show(raw), **args)
            return None if default is _MISSING else default
        return raw

    def int(self, key: builtins.str, default: Any = _MISSING, *, min: builtins.int | None = None,
            max: builtins.int | None = None) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        if isinstance(raw, bool) or not isinstance(raw, int) or \
                (min is not None and raw < min) or (max is not None and raw > max):
            self._expected(key, _range_words("int", min, max), raw)
            return None if default is _MISSING else default
        return raw

    def float(self, key: builtins.str, default: Any = _MISSING, *,
              min: builtins.float | None = None, max: builtins.float | None = None,
              min_exclusive: builtins.bool = False) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool)
        if ok and min is not None:
            ok = raw > min if min_exclusive else raw >= min
        if ok and max is not None:
            ok = raw <= max
        if not ok:
            words = _range_words("number", min, max)
            if min_exclusive and min is not None and max is None:
                words = text("cfg.what.number_above", lo=f"{min:g}")
            self._expected(key, words, raw)
            return None if default is _MISSING else default
        return float(raw)

    def bool(self, key: builtins.str, default: Any = _MISSING) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        if not isinstance(raw, bool):
            word = raw.strip().lower() if isinstance(raw, str) else None
            if word in _TRUE_WORDS or word in _FALSE_WORDS:
                self.problem(key, "cfg.expected_bool_unquote", got=show(raw), key=key,
                             fixed="true" if word in _TRUE_WORDS else "false")
            else:
                self.problem(key, "cfg.expected_bool", got=show(raw), key=key)
            return None if default is _MISSING else default
        return raw

    def secret(self, key: builtins.str, *, min_length: builtins.int = 1) -> builtins.str | None:
        """A password, community or key: a string checked without ever echoing its value into a
        problem (``password = 123456`` must not end up in the journal). None if absent or bad."""
        raw = self.raw(key)
        if raw is None:
            return None
        if not isinstance(raw, str):
            self.problem(key, "cfg.secret_string")
            return None
        if len(raw) < min_length:
            what = text("cfg.what.non_empty") if min_length <= 1 else \
                text("cfg.what.min_chars", n=min_length)
            self.problem(key, "cfg.expected_chars", what=what, n=len(raw))
            return None
        return raw

    def str_list(self, key: builtins.str, default: Any = _MISSING) -> Any:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None if default is _MISSING else default
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            self.problem(key, "cfg.expected", what=text("cfg.what.str_list"), got=show(raw))
            return None if default is _MISSING else default
        return tuple(raw)

    # -- nested --------------------------------------------------------------------------------

    def table(self, key: builtins.str, *, required: builtins.bool = False) -> Table:
        self._seen.add(key)
        if key not in self.data:
            if required:
                self.problem(key, "cfg.required_table", key=key)
            return Table(self.problems, {}, self.key_path(key), self.key_label(key))
        return Table(self.problems, self.data[key], self.key_path(key), self.key_label(key))

    def tables(self, key: builtins.str, *, required: builtins.bool = False) -> list[Table]:
        """An array of tables (``[[key]]`` in TOML); each entry labelled by its ``name``."""
        self._seen.add(key)
        raw = self.data.get(key)
        if raw is None:
            if required:
                self.problem(key, "cfg.required_tables",
                             key=re.sub(r"\[[0-9]+\]", "", self.key_path(key)))
            return []
        if not isinstance(raw, list):
            self.problem(key, "cfg.expected", what=text("cfg.what.tables", key=key),
                         got=show(raw))
            return []
        out = []
        for i, item in enumerate(raw):
            path = f"{self.key_path(key)}[{i}]"
            label = f"{self.key_label(key)}[{i}]"
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name.strip():
                label += f" ({name.strip()})"
            out.append(Table(self.problems, item, path, label))
        return out

    def raw(self, key: builtins.str, default: Any = None) -> Any:
        """The untyped value, for callers that validate a shape of their own."""
        self._seen.add(key)
        return self.data.get(key, default)

    def finish(self) -> None:
        """Report keys nobody asked for: usually a typo that would otherwise be silently ignored.

        The nearest known key is suggested ("did you mean interval_s?")."""
        self.finished = True
        for key in self.data:
            if key not in self._seen:
                guess = closest(key, self._seen)
                if guess is not None:
                    self.problem(key, "cfg.unknown_key_did_you_mean", suggestion=guess)
                else:
                    self.problem(key, "cfg.unknown_key")


def _range_words(noun: str, lo: Any, hi: Any) -> Text:
    if lo is not None and hi is not None:
        return text(f"cfg.what.{noun}_between", lo=lo, hi=hi)
    if lo is not None:
        return text(f"cfg.what.{noun}_min", lo=lo)
    if hi is not None:
        return text(f"cfg.what.{noun}_max", hi=hi)
    return text(f"cfg.what.{noun}")


_TRUE_WORDS = ("true", "yes", "y", "si", "sí", "on", "1")
_FALSE_WORDS = ("false", "no", "n", "off", "0")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def host_problem(raw: str) -> tuple[str, dict[str, Any]] | None:
    """Why ``raw`` is neither an IP address nor a host name (message id, arguments), or None."""
    value = raw.strip()
    scheme = re.match(r"([a-z][a-z0-9+.-]*)://", value, re.I)
    if scheme:
        rest = value[scheme.end():].split("/")[0].rsplit(":", 1)[0] if "]" not in value \
            else value[scheme.end():].split("/")[0]
        return "cfg.host_scheme", {"fixed": show(rest)}
    if not value or value != raw or re.search(r"\s", value):
        return "cfg.host_spaces", {"fixed": show(re.sub(r"\s+", "", value))}
    if re.fullmatch(r"[0-9.]+", value):
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            parts = value.split(".")
            if len(parts) != 4 or not all(parts):
                return "cfg.ip_parts", {}
            bad = next((p for p in parts if int(p) > 255), None)
            return ("cfg.ip_range", {"part": bad}) if bad else ("cfg.ip_invalid", {})
        return None
    if ":" in value:
        try:
            ipaddress.IPv6Address(value.strip("[]"))
            return None
        except ValueError:
            return "cfg.host_port", {"fixed": show(value.rsplit(":", 1)[0])}
    if len(value) > 253 or not all(_HOST_LABEL.fullmatch(p) for p in value.rstrip(".").split(".")):
        return "cfg.host_invalid", {}
    return None
