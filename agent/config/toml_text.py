"""TOML text to a document, within bounds: the one parser of the local file, its secrets file,
a pushed config and ``validate`` (docs/limits.md).

``tomllib`` raises ``RecursionError`` on lists or inline tables nested a few hundred deep and
``ValueError`` on an integer of more than 4,300 digits; it accepts ``[a.a.a...]`` headers of any
depth and hexadecimal integers of any size, which later code then chokes on (printing such a
number raises ``ValueError`` too). Here every one of these is a ``ConfigError`` with a clear
message, so a pushed file gets a published rejection and ``validate`` a list of problems.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from agent.errors import ConfigError

MAX_TOML_BYTES = 1024 * 1024     # a clinic's config is a few KiB
MAX_DEPTH = 16                   # tables and lists inside each other; a config needs about 6
INT64 = (-2**63, 2**63 - 1)      # TOML's integers are 64-bit
MAX_PROBLEMS = 20                # of these kinds, listed per file
_PATH_SHOWN = 120                # characters of a key path shown in a problem


def parse_bounded(text: str, *, source: str, secret: bool = False) -> dict[str, Any]:
    """The document in ``text``, or ``ConfigError`` listing every problem (syntax explained by
    ``agent.config.syntax``, bounds checked here). ``secret``: a secrets file, whose values are
    never quoted back."""
    from agent.config.syntax import parse_text  # syntax imports the bounds from here
    doc, problems = parse_text(text, secret=secret)
    if doc is None:
        raise ConfigError(problems, source=source)
    return doc


def bounds_problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(key path, "deep" | "int") for values nested deeper than ``MAX_DEPTH`` and integers
    outside 64 bits; at most ``MAX_PROBLEMS``, paths shortened."""
    problems: list[tuple[str, str]] = []
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
                    problems.append((_short(child_path), "deep"))
                else:
                    queue.append((child, child_path, depth + 1))
            elif isinstance(child, int) and not isinstance(child, bool) \
                    and not INT64[0] <= child <= INT64[1]:
                problems.append((_short(child_path), "int"))
    return problems[:MAX_PROBLEMS]


def _short(text: str, *, keep_tail: bool = False) -> str:
    """At most about ``_PATH_SHOWN`` characters; ``keep_tail`` keeps tomllib's "(at line N,
    column M)" (its message can quote a 10,000-character table name)."""
    if len(text) <= _PATH_SHOWN:
        return text
    tail = text[text.rfind(" (at line"):] if keep_tail and " (at line" in text else ""
    return text[:_PATH_SHOWN] + "..." + tail
