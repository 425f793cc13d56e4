"""``python -m agent.install COMMAND``: the parts of install.sh that are easier said in Python.

    messages  the installer's texts in its language, as bash assignments (``eval``-ed once)
    gather    check the clinic's settings given as options, ask for missing ones on a terminal,
              stage them in a private directory (exit 2 with every problem when one is wrong)
    write     write the staged settings into the configuration directory
    rooted    a copy of agent.toml with its paths moved into --root, for validate and doctor

Not a technician's command: install.sh runs it with the system's Python, before the agent's
virtualenv exists (so only the standard library and the agent's own modules are used).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

# Only the catalogue at the top: ``messages`` must work on any Python 3, to say that it is too old.
from agent.i18n import LANGUAGES, MESSAGES, Messages, Text, locale_language

if TYPE_CHECKING:
    from agent.install.checks import SettingError

EXIT_OK = 0
EXIT_BAD = 2
STATES = ("new", "example", "edited")


def installer_language(option: str | None) -> str:
    """--lang, else the locale's language, else Spanish: a clinic install is in Spanish."""
    if option in LANGUAGES:
        return str(option)
    return locale_language(os.environ) or "es"


def cmd_messages(args: argparse.Namespace) -> int:
    if args.lang and args.lang not in LANGUAGES:
        for lang in ("es", "en"):
            print(Messages(lang)("inst.bad.lang", got=args.lang), file=sys.stderr)
        return EXIT_BAD
    lang = installer_language(args.lang)
    t = Messages(lang)
    print(f"INSTALL_LANG={lang}")
    for msg_id in sorted(MESSAGES):
        if msg_id.startswith("inst."):
            print(f"MSG[{msg_id}]={shlex.quote(t(msg_id))}")
    return EXIT_OK


def cmd_gather(args: argparse.Namespace) -> int:
    from agent.install import checks
    from agent.install.checks import SettingError
    from agent.install.gather import Prompt, ask, from_options, missing, summary
    from agent.install.write import current_timezone
    t = Messages(args.lang)
    settings, problems = from_options(args, language=args.lang, state=args.state)
    if args.interactive and args.state != "edited":
        for problem in problems:
            _problem(t, problem)
        prompt = Prompt(t)
        try:
            settings = ask(settings, prompt,
                           current_timezone=current_timezone(Path(args.root)))
        except SettingError as exc:
            _problem(t, exc)
            return EXIT_BAD
        settings = replace(settings, language=args.lang)
        problems = []
    problems += missing(settings, state=args.state)
    if problems:
        for problem in problems:
            _problem(t, problem)
        return EXIT_BAD
    trusted = len(checks.trusted_keys(settings.trusted_keys)) if settings.trusted_keys else 0
    for line in summary(settings, trusted):
        print(f"    {t.render(line)}")
    if settings.given() or settings.language is not None:
        settings.save(Path(args.stage))
    return EXIT_OK


def _problem(t: Messages, exc: SettingError) -> None:
    message = t.render(exc.message)
    shown = t("inst.bad.option", option=exc.option, message=message) if exc.option else message
    print(f"    {shown}", file=sys.stderr)


def cmd_write(args: argparse.Namespace) -> int:
    from agent.install.settings import SiteSettings
    from agent.install.write import Target, write_all
    t = Messages(args.lang)
    settings = SiteSettings.load(Path(args.stage))

    def say(line: Text) -> None:
        print(f"    {t.render(line)}")
    owned = write_all(settings, Target(Path(args.root), args.etc, args.user), state=args.state,
                      example_secrets=Path(args.example_secrets) if args.example_secrets else None,
                      t=t, say=say, systemd=args.systemd)
    with open(Path(args.stage) / "owners", "w", encoding="utf-8") as f:
        for o in owned:
            f.write(f"{o.mode} {o.owner} {o.group} {o.path}\n")
    return EXIT_OK


def cmd_rooted(args: argparse.Namespace) -> int:
    import tomllib

    from agent.install.toml_edit import EditError
    from agent.install.write import rooted
    config = Path(args.config)
    raw = config.read_text(encoding="utf-8-sig")
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError:
        data = None
    if data is None:   # validate will explain the file's problems: show it as it is
        Path(args.out).write_text(raw, encoding="utf-8")
        return EXIT_OK
    try:
        out = rooted(raw, data, root=Path(args.root), config_dir=config.parent, socket=args.socket)
    except EditError:   # e.g. an inline [mqtt] table: check the file as it is
        out = raw
    Path(args.out).write_text(out, encoding="utf-8")
    return EXIT_OK


def add_options(p: argparse.ArgumentParser) -> None:
    """The clinic's settings, as install.sh passes them on (agent.install.gather checks them)."""
    for option in ("--site-id", "--broker", "--ca-file", "--client-cert", "--client-key",
                   "--mqtt-user", "--mqtt-password-file", "--trusted-keys", "--timezone"):
        p.add_argument(option)
    p.add_argument("--lang-given", action="store_true",
                   help="--lang was given explicitly: written into an existing config too")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agent.install")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("messages")
    m.add_argument("--lang")
    m.set_defaults(func=cmd_messages)
    g = sub.add_parser("gather")
    g.add_argument("--stage", required=True)
    g.add_argument("--state", choices=STATES, required=True)
    g.add_argument("--root", default="/")
    g.add_argument("--lang", choices=LANGUAGES, required=True)
    g.add_argument("--interactive", action="store_true")
    add_options(g)
    g.set_defaults(func=cmd_gather)
    w = sub.add_parser("write")
    w.add_argument("--stage", required=True)
    w.add_argument("--state", choices=STATES, required=True)
    w.add_argument("--root", default="/")
    w.add_argument("--etc", required=True)
    w.add_argument("--user", required=True)
    w.add_argument("--example-secrets")
    w.add_argument("--lang", choices=LANGUAGES, required=True)
    w.add_argument("--systemd", action="store_true")
    w.set_defaults(func=cmd_write)
    r = sub.add_parser("rooted")
    r.add_argument("--root", required=True)
    r.add_argument("--config", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--socket", required=True)
    r.set_defaults(func=cmd_rooted)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
