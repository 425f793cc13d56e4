"""TOML text to a document, within bounds: the one parser of the local file, its secrets file,
a pushed config and ``validate`` (docs/limits.md).

``tomllib`` raises ``RecursionError`` on lists or inline tables nested a few hundred deep and
``ValueError`` on an integer of more than 4,300 digits; it accepts ``[a.a.a...]`` headers of any
depth and hexadecimal integers of any size, which later code then chokes on (printing such a
number raises ``ValueError`` too). Here every one of these is a ``ConfigError`` with a clear
message, so a pushed file gets a published rejection and ``validate`` a list of problems.
"""

from __future__ import annotations

import tomllib
from collections import deque
from typing import Any

from agent.errors import ConfigError

MAX_TOML_BYTES = 1024 * 1024     # a clinic's config is a few KiB
MAX_DEPTH = 16                   # tables and lists inside each other; a config needs about 6
INT64 = (-2**63, 2**63 - 1)      # TOML's integers are 64-bit
MAX_PROBLEMS = 20                # of these kinds, listed per file
_PATH_SHOWN = 120                # characters of a key path shown in a problem


def parse_bounded(text: str, *, source: str, secret: bool = False) -> dict[str, Any]:
    """The document in ``text``, or ``ConfigError``. ``secret``: the text is a secrets file, so
    a syntax error names its position only (tomllib's message may quote the value)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TOML_BYTES:
        raise ConfigError([f"the file is {size} bytes, more than the {MAX_TOML_BYTES} a config "
                           "may have"], source=source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if secret:
            where = str(exc).rsplit("(", 1)[-1].rstrip(")") if "(" in str(exc) else "unknown position"
            raise ConfigError([f"secrets file is not valid TOML ({where})"], source=source) from None
        raise ConfigError([f"not valid TOML: {_short(str(exc), keep_tail=True)}"],
                          source=source) from exc
    except RecursionError:
        raise ConfigError([f"lists or tables nested more than {MAX_DEPTH} levels deep"],
                          source=source) from None
    except ValueError:      # int(): more than sys.get_int_max_str_digits() (4300) digits
        raise ConfigError(["an integer of thousands of digits (TOML integers are 64-bit: "
                           f"{INT64[0]} to {INT64[1]})"], source=source) from None
    problems = bounds_problems(doc)
    if problems:
        raise ConfigError(problems, source=source)
    return doc


def bounds_problems(doc: dict[str, Any]) -> list[str]:
    """Values nested deeper than ``MAX_DEPTH`` and integers outside 64 bits, by key path."""
    problems: list[str] = []
    queue: deque[tuple[Any, str, int]] = deque([(doc, "", 1)])
    while queue and len(problems) < MAX_PROBLEMS:
        value, path, depth = queue.popleft()
        if isinstance(value, dict):
            items = [(f"{path}.{key}" if path else key, child) for key, child in value.items()]
        else:
            items = [(f"{path}[{i}]", child) for i, child in enumerate(value)]
        for child_path, child in items:
            if isinstance(child, (dict, list)):
                if depth >= MAX_DEPTH:
                    problems.append(f"{_short(child_path)}: nested more than {MAX_DEPTH} levels "
                                    "deep")
                else:
                    queue.append((child, child_path, depth + 1))
            elif isinstance(child, int) and not isinstance(child, bool) \
                    and not INT64[0] <= child <= INT64[1]:
                problems.append(f"{_short(child_path)}: an integer outside the 64-bit range TOML "
                                f"allows ({INT64[0]} to {INT64[1]})")
    return problems[:MAX_PROBLEMS]


def _short(text: str, *, keep_tail: bool = False) -> str:
    """At most about ``_PATH_SHOWN`` characters; ``keep_tail`` keeps tomllib's "(at line N,
    column M)" (its message can quote a 10,000-character table name)."""
    if len(text) <= _PATH_SHOWN:
        return text
    tail = text[text.rfind(" (at line"):] if keep_tail and " (at line" in text else ""
    return text[:_PATH_SHOWN] + "..." + tail
