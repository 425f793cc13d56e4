"""``clinic-agent``: run the daemon, and the technician's and operator's commands.

    main(argv) -> the reader's language (--lang, the locale, the config's ``language`` key)
               -> a parser holding every command's name and help, with only the chosen
                  command's module imported (``run`` loads the runtime and nothing else)
               -> the command; a closed pipe (``| head``) ends it quietly

One module per command: run, validate, status, doctor, poll (poll-once), tail, buffer, scan,
config, fleet (operator); common holds what the technician's commands share.
Exit codes: 0 fine, 1 something is wrong (a device failing, ...), 2 the config is invalid or the
command line is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence

from agent import __version__
from agent.cli.defaults import DEFAULT_CONFIG, EXIT_CONFIG, EXIT_OK, EXIT_PROBLEM
from agent.errors import ConfigError
from agent.i18n import LANGUAGES, MESSAGES, Messages, language

__all__ = ["main", "COMMANDS", "DEFAULT_CONFIG", "EXIT_OK", "EXIT_PROBLEM", "EXIT_CONFIG",
           "choose_language"]

# name -> (module, help id). Only the module of the command being run is imported.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("agent.cli.run", "help.run"),
    "validate": ("agent.cli.validate", "help.validate"),
    "status": ("agent.cli.status", "help.status"),
    "doctor": ("agent.cli.doctor", "help.doctor"),
    "poll-once": ("agent.cli.poll", "help.poll"),
    "tail": ("agent.cli.tail", "help.tail"),
    "buffer": ("agent.cli.buffer", "help.buffer"),
    "scan": ("agent.cli.scan", "help.scan"),
    "config": ("agent.cli.config", "help.config"),
    "fleet": ("agent.cli.fleet", "help.fleet"),
    "events": ("agent.cli.events", "help.events"),
}
_OPTIONS_WITH_VALUE = ("--lang", "-c", "--config")


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(args_in, os.environ)
    except BrokenPipeError:
        if not _output_closed():
            raise
        _silence_output()
        return EXIT_OK


def _main(argv: list[str], env: Mapping[str, str]) -> int:
    lang = choose_language(argv, env)
    t = Messages(lang)
    with argparse_words(t):
        parser = build_parser(t, command_of(argv))
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:   # --help, --version, or a usage error already explained
            return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    args.lang_chosen = lang
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        return int(args.func(args))
    except ConfigError as exc:
        _print_config_error(t, exc)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _print_config_error(t: Messages, exc: ConfigError) -> None:
    """Every problem, in the reader's language (plain writes: ``run`` loads no terminal code)."""
    lines = [t("config.invalid", path=exc.source, n=len(exc.details))]
    for problem in exc.details:
        render = getattr(problem, "render", None)
        lines.append("  " + (render(t) if callable(render) else str(problem)))
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def build_parser(t: Messages, only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``only`` a known command, only that command's module is loaded."""
    p = argparse.ArgumentParser(prog="clinic-agent", description=t("help.description"))
    p.add_argument("--version", action="version", version=f"clinic-agent {__version__}",
                   help=t("help.opt.version"))
    p.add_argument("--lang", choices=LANGUAGES, default=argparse.SUPPRESS, help=t("help.opt.lang"))
    sub = p.add_subparsers(metavar=t("help.meta.command"), title=t("help.title.commands"))
    for name, (module, help_id) in COMMANDS.items():
        cp = sub.add_parser(name, help=t(help_id), description=t(help_id))
        if only is None or name == only:
            importlib.import_module(module).register(cp, t)
    return p


def command_of(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (so only its module is imported), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in _OPTIONS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg if arg in COMMANDS else None
    return None


def choose_language(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """--lang, else the locale, else the config file's ``language`` key, else English."""
    option = _option_value(argv, "--lang")
    chosen = language(env, option=option)
    if option in LANGUAGES or chosen != "en" or _locale_decides(env):
        return chosen
    return language(env, option=option, configured=config_language(_config_path(argv)))


def _locale_decides(env: Mapping[str, str]) -> bool:
    from agent.i18n import locale_language
    return locale_language(env) is not None


def _option_value(argv: Sequence[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _config_path(argv: Sequence[str]) -> str:
    given = _option_value(argv, "-c", "--config")
    if given:
        return given
    if command_of(argv) == "validate":   # its file is a positional argument
        after = argv[argv.index("validate") + 1:]
        for i, arg in enumerate(after):
            if not arg.startswith("-") and (i == 0 or after[i - 1] not in _OPTIONS_WITH_VALUE):
                return arg
    return DEFAULT_CONFIG


_LANGUAGE_KEY = re.compile(r"""^\s*language\s*=\s*["']([a-z]{2})["']""", re.M)


def config_language(path: str) -> str | None:
    """The ``language`` key of the config file's top level, read leniently (the file may have
    problems of its own, which the command will report in that language)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return None
    top = re.split(r"^\s*\[", head, maxsplit=1, flags=re.M)[0]
    m = _LANGUAGE_KEY.search(top)
    return m.group(1) if m and m.group(1) in LANGUAGES else None


# -- argparse in the reader's language -----------------------------------------------------------

@contextlib.contextmanager
def argparse_words(t: Messages) -> Iterator[None]:
    """argparse's own words ("usage:", "options", its error messages) from the catalogue.

    argparse looks them up through gettext at call time (``argparse._``); this swaps that
    lookup while the command line is built and parsed, and puts it back."""
    by_english = {entry["en"]: msg_id for msg_id, entry in MESSAGES.items()
                  if msg_id.startswith("argparse.")}
    original = argparse._, argparse.ngettext   # type: ignore[attr-defined]

    def gettext(message: str) -> str:
        msg_id = by_english.get(message)
        return MESSAGES[msg_id].get(t.lang, message) if msg_id else message

    def ngettext(singular: str, plural: str, n: int) -> str:
        return gettext(singular if n == 1 else plural)

    argparse._ = gettext   # type: ignore[attr-defined]
    argparse.ngettext = ngettext   # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = original   # type: ignore[attr-defined]


# -- a closed pipe -------------------------------------------------------------------------------

def _output_closed() -> bool:
    """Whether stdout or stderr is a pipe whose reader has gone (``clinic-agent ... | head``)."""
    import select
    poller = select.poll()
    fds = []
    for stream in (sys.stdout, sys.stderr):
        try:
            fds.append(stream.fileno())
        except (AttributeError, ValueError, OSError):
            continue
    for fd in fds:
        poller.register(fd, select.POLLOUT)
    return any(ev & select.POLLERR for _, ev in poller.poll(0))


def _silence_output() -> None:
    """Point stdout and stderr at /dev/null, so the flush at exit has nowhere to complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (AttributeError, ValueError, OSError):
            pass


if __name__ == "__main__":
    sys.exit(main())
