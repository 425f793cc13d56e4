"""Terminal output for the technician CLI: colour when a person is watching, tables, progress.

Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org) or
``TERM=dumb``. Progress lines go to stderr and only when it is a terminal, so pipes and
``--json`` output stay clean. The caller passes the environment in: this module reads none.
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TextIO

from agent.i18n import Messages, language

_ANSI = {"ok": "32", "fail": "31;1", "warn": "33", "skip": "2", "bold": "1", "dim": "2",
         "head": "1;4", "value": "36"}
_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

Cell = str | tuple[str, str]   # text, or (text, style)


def wants_colour(stream: TextIO, env: Mapping[str, str]) -> bool:
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal (escape codes take none, wide characters two)."""
    text = _ESCAPE.sub("", text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c)
               else 1 for c in text)


class Term:
    """Where a command prints: its language, whether it may colour, and its streams."""

    def __init__(self, *, lang: str, out: TextIO, err: TextIO, colour: bool,
                 progress: bool) -> None:
        self.t = Messages(lang)
        self.lang = lang
        self.out = out
        self.err = err
        self.colour = colour
        self.show_progress = progress

    @classmethod
    def from_env(cls, env: Mapping[str, str], out: TextIO, err: TextIO) -> Term:
        return cls(lang=language(env), out=out, err=err, colour=wants_colour(out, env),
                   progress=_isatty(err))

    def paint(self, text: str, style: str | None) -> str:
        if not self.colour or not style or style not in _ANSI:
            return text
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m"

    def print(self, text: str = "", *, err: bool = False) -> None:
        stream = self.err if err else self.out
        try:
            stream.write(text + "\n")
            stream.flush()
        except BrokenPipeError:
            # `clinic-agent tail | head`: the reader had enough. Quietly, without Python's own
            # complaint when it flushes the dead pipe at exit.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
            except (OSError, AttributeError, ValueError):
                pass
            raise SystemExit(0) from None

    def table(self, rows: Sequence[Sequence[Cell]], *, header: Sequence[str] | None = None,
              indent: int = 2) -> None:
        """Print aligned columns; the last column is not padded (it may be long)."""
        cells = [[(c, None) if isinstance(c, str) else c for c in row] for row in rows]
        if header:
            cells.insert(0, [(h, "head") for h in header])
        if not cells:
            return
        ncol = max(len(r) for r in cells)
        widths = [max((width(r[i][0]) for r in cells if i < len(r)), default=0)
                  for i in range(ncol)]
        for row in cells:
            parts = []
            for i, (text, style) in enumerate(row):
                pad = "" if i == len(row) - 1 else " " * (widths[i] - width(text))
                parts.append(self.paint(text, style) + pad)
            self.print(" " * indent + "  ".join(parts).rstrip())

    def progress(self, total: int) -> Progress:
        return Progress(self, total)


class Progress:
    """One self-overwriting line on stderr: a bar, a count and what is being done."""

    BAR = 24

    def __init__(self, term: Term, total: int) -> None:
        self.term = term
        self.total = max(total, 1)
        self.started = time.monotonic()
        self._shown = False

    def update(self, done: int, text: str, total: int | None = None) -> None:
        if total:
            self.total = total   # a scan may learn it has less (or more) to do
        if not self.term.show_progress:
            return
        filled = int(self.BAR * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (self.BAR - filled)
        line = f"[{bar}] {done}/{self.total}  {text}"
        self.term.err.write("\r\x1b[K" + line[:200])
        self.term.err.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.term.err.write("\r\x1b[K")
            self.term.err.flush()
            self._shown = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def ago(seconds: float | None, t: Messages) -> str:
    """A duration in words: "3 s", "5 min", "2 h 10 min", "4 d 3 h"."""
    if seconds is None:
        return t("time.never")
    s = max(0, int(round(seconds)))
    if s < 120:
        return t("time.s", n=s)
    m = s // 60
    if m < 120:
        return t("time.min", n=m)
    h, m = divmod(m, 60)
    if h < 48:
        return t("time.h_min", h=h, m=m)
    d, h = divmod(h, 24)
    return t("time.d_h", d=d, h=h)


def size(n: int | float) -> str:
    """Bytes in words: 512 B, 1.5 KiB, 20.1 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
