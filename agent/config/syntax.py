"""Reading a TOML file as a technician wrote it: every syntax mistake explained with its line
and fix.

    bytes -> (UTF-8? a byte-order mark is fine; Latin-1 is explained) -> tomllib
          -> on a syntax error: the line is looked at, the mistake named (text without quotes,
             a decimal comma, an unclosed quote, True for true, a key written twice ...), the
             line fixed in memory and the rest parsed again, so every line is reported at once

tomllib's own messages ("Invalid value (at line 1, column 8)") are parser jargon; they are kept
only as the last resort, with the line. Secrets files are read the same way but their values
are never quoted back (``secret=True``).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from agent.config.fields import Problem, show
from agent.config.toml_text import INT64, MAX_DEPTH, MAX_TOML_BYTES, bounds_problems
from agent.i18n import Text, text

BOM = "\ufeff"
MAX_SYNTAX_PROBLEMS = 20
SHOWN_MAX = 120                 # characters of a line or a name quoted back in a problem
_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_KEY_VALUE = re.compile(r"^(?P<indent>\s*)(?P<key>[^=\[#]+?)\s*=\s*(?P<value>.*)$")


def decode(data: bytes) -> tuple[str, list[Problem]]:
    """The file's text (a byte-order mark dropped) and, when it is not UTF-8, that problem."""
    try:
        return data.decode("utf-8").removeprefix(BOM), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        char = data[exc.start:exc.start + 1].decode("cp1252", errors="replace")
        return data.decode("cp1252", errors="replace").removeprefix(BOM), [
            Problem("", text("cfg.syntax.encoding", line=line, char=char))]


def parse_document(
    data: bytes, *, secret: bool = False
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The TOML document in ``data`` and the problems found reading it (None when unusable)."""
    source_text, problems = decode(data)
    doc, more = parse_text(source_text, secret=secret)
    return (doc if not problems else None), problems + more


def parse_text(
    source_text: str, *, secret: bool = False
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """As ``parse_document``, for text already decoded. Within the bounds of
    ``agent.config.toml_text`` (size, nesting, 64-bit integers: docs/limits.md), so a hostile
    file or push is a list of problems, never a ``RecursionError`` or ``ValueError``."""
    size = len(source_text.encode("utf-8", "surrogatepass"))
    if size > MAX_TOML_BYTES:
        return None, [Problem("", text("cfg.toml.too_big", size=size, max=MAX_TOML_BYTES))]
    problems: list[Problem] = []
    lines = source_text.removeprefix(BOM).split("\n")
    for _ in range(MAX_SYNTAX_PROBLEMS):
        try:
            doc = tomllib.loads("\n".join(lines))
        except tomllib.TOMLDecodeError as exc:
            problem, line_no, fixed = explain(str(exc), lines, secret=secret)
            problems.append(_capped(problem))
            if line_no is None:
                break
            lines[line_no - 1] = fixed
            continue
        except RecursionError:
            return None, [Problem("", text("cfg.toml.too_deep", max=MAX_DEPTH))]
        except ValueError:   # int(): more than sys.get_int_max_str_digits() (4300) digits
            return None, [Problem("", text("cfg.toml.huge_int", lo=INT64[0], hi=INT64[1]))]
        if problems:
            return None, problems
        bounds = [Problem(path, text("cfg.toml.too_deep" if kind == "deep" else "cfg.toml.int64",
                                     max=MAX_DEPTH, lo=INT64[0], hi=INT64[1]))
                  for path, kind in bounds_problems(doc)]
        return (None, bounds) if bounds else (doc, [])
    return None, problems


def _capped(problem: Problem) -> Problem:
    """A problem quotes the line it is about: a hostile line (a 10,000-character table name in
    a push) is shortened, so a rejection stays small (docs/limits.md)."""
    args = {k: (v[:SHOWN_MAX] + "..." if isinstance(v, str) and len(v) > SHOWN_MAX else v)
            for k, v in problem.text.args.items()}
    return Problem(problem.path, Text(problem.text.id, args), problem.label)


def explain(
    message: str, lines: list[str], *, secret: bool = False
) -> tuple[Problem, int | None, str]:
    """The problem tomllib's ``message`` stands for, the line (1-based) and that line fixed (or
    blanked) so parsing can go on; no line when it cannot be found."""
    m = _POSITION.search(message)
    if m:
        line_no: int | None = int(m.group(1))
    else:   # "at end of document": an unclosed quote, list or table
        line_no = _unclosed_line(lines)
    if line_no is None or not 1 <= line_no <= len(lines):
        return Problem("", text("cfg.syntax.other", line="?", error=_strip_position(message))), \
            None, ""
    line = lines[line_no - 1]
    found = _diagnose(message, line, secret=secret)
    if found is None:
        shown = "" if secret else line.strip()
        return Problem("", text("cfg.syntax.other", line=line_no, error=_strip_position(message),
                                shown=shown)), line_no, ""
    msg_id, args, fixed = found
    return Problem("", Text(msg_id, {"line": line_no, **args})), line_no, fixed


def _diagnose(message: str, line: str, *, secret: bool) -> tuple[str, dict[str, Any], str] | None:
    stripped = line.strip()
    if message.startswith("Cannot overwrite a value") or message.startswith("Cannot declare"):
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else stripped
        return "cfg.syntax.twice", {"key": key}, ""
    if stripped.startswith("[") and not stripped.rstrip().endswith("]") and "=" not in stripped:
        closing = "]]" if stripped.startswith("[[") else "]"
        fixed = stripped.split("#", 1)[0].rstrip() + closing
        return "cfg.syntax.table_bracket", {"fixed": fixed}, fixed
    kv = _KEY_VALUE.match(line)
    if kv is None:
        return None
    key, value = kv.group("key").strip(), _without_comment(kv.group("value"))
    if re.search(r"\s", key) and not key.startswith(("\"", "'")):
        return "cfg.syntax.key_spaces", {"key": key, "fixed": re.sub(r"\s+", "_", key)}, ""

    def fix(new_value: str) -> tuple[str, str]:
        shown = f"{key} = {new_value}" if not secret else f'{key} = "..."'
        return shown, f"{kv.group('indent')}{key} = {new_value}"

    if value == "":
        return "cfg.syntax.no_value", {"key": key}, ""
    if value[0] in "\"'":
        quote = value[0]
        if value.count(quote) == 1 or (quote == '"' and not _closed_basic(value)):
            inner = value[1:].rstrip()
            shown, fixed = fix(f'"{_escape(inner)}"')
            return "cfg.syntax.unclosed_quote", {"key": key, "fixed": shown, "quote": quote}, fixed
        return None
    if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", value):
        shown, fixed = fix(value.replace(",", "."))
        return "cfg.syntax.decimal_comma", {"key": key, "got": value, "fixed": shown}, fixed
    if value in ("True", "False", "TRUE", "FALSE", "Yes", "No", "yes", "no", "si", "sí", "Si",
                 "Sí", "SI"):
        word = "true" if value.lower() in ("true", "yes", "si", "sí") else "false"
        shown, fixed = fix(word)
        return "cfg.syntax.bool_word", {"key": key, "got": value, "fixed": shown}, fixed
    if re.fullmatch(r"[+-]?[0-9][0-9_ ]*(\.[0-9_]+)?", value):
        return None   # a plain number: the problem is elsewhere on the line
    if value[0] not in "[{":
        shown, fixed = fix(f'"{_escape(value)}"')
        args = {"key": key, "fixed": shown}
        return ("cfg.syntax.unquoted_secret" if secret else "cfg.syntax.unquoted",
                args if secret else {**args, "got": value}, fixed)
    return None


def _without_comment(value: str) -> str:
    """The value without a trailing comment (a # inside quotes is kept)."""
    out, quote = [], ""
    for ch in value:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out).strip()


def _closed_basic(value: str) -> bool:
    """Whether a "basic string" opened at value[0] is closed (backslash escapes honoured)."""
    i = 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            return True
        i += 1
    return False


def _escape(raw: str) -> str:
    return raw.replace("\\", "\\\\").replace('"', '\\"')


def _unclosed_line(lines: list[str]) -> int | None:
    """The line that opens a quote, list or table that the document never closes."""
    depth_line: int | None = None
    depth = 0
    for i, line in enumerate(lines, 1):
        body = _without_comment(line)
        if body.count('"') % 2 == 1 or (body.count("'") % 2 == 1 and '"' not in body):
            return i
        opened = body.count("[") - body.count("]")
        if "=" in body and opened > 0 and depth == 0:
            depth_line = i
        depth = max(depth + opened, 0) if "=" in body or depth else depth
    return depth_line


def _strip_position(message: str) -> str:
    return _POSITION.sub("", message).replace("(at end of document)", "").strip()


__all__ = ["decode", "parse_document", "parse_text", "explain", "show"]
