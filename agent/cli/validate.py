"""``clinic-agent validate [FILE]``: check a config file and teach how to fix each problem.

Exit 0 with a one-line summary when it is valid, 2 with every problem listed (in the reader's
language, each device named by its ``name`` as well as its index) when it is not.
"""

from __future__ import annotations

import argparse

from agent.cli.common import (
    DEFAULT_CONFIG,
    EXIT_CONFIG,
    EXIT_OK,
    add_lang,
    print_config_error,
    print_json,
    render_problem,
)
from agent.cli.common import term as make_term
from agent.config import load_config
from agent.errors import ConfigError
from agent.i18n import Messages


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG, metavar=t("help.meta.file"),
                   help=t("help.opt.config", default=DEFAULT_CONFIG))
    p.add_argument("--json", action="store_true", help=t("help.opt.json"))
    add_lang(p, t)
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    term = make_term(args)
    t = term.t
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        if args.json:
            print_json(term, {"ok": False, "file": args.config, "problems": [
                {"path": getattr(p, "path", ""), "message": render_problem(p, t),
                 **({"code": p.text.to_doc()} if hasattr(p, "text") else {})}
                for p in exc.details]})
        else:
            print_config_error(term, exc)
        return EXIT_CONFIG
    if args.json:
        print_json(term, {"ok": True, "file": args.config, "site": cfg.site_id,
                          "devices": [d.name for d in cfg.devices]})
        return EXIT_OK
    devices = ", ".join(t("validate.device", name=d.name, kind=d.kind, every=f"{d.interval_s:g}")
                        for d in cfg.devices) or "-"
    term.print(t("validate.ok", path=args.config, site=cfg.site_id, n=len(cfg.devices),
                 devices=devices))
    return EXIT_OK
