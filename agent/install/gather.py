"""The clinic's settings from install.sh's options, and from questions on a terminal.

Every option given is checked first and all problems are reported at once. On a terminal, a new
install (or one whose agent.toml is still the example) is asked for each setting not given; an
answer that does not pass its check is explained and asked again. Passwords are read without
echo and never shown.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from agent.config.secret import Secret
from agent.i18n import Messages, Text, text
from agent.install import checks
from agent.install.checks import SettingError
from agent.install.settings import SiteSettings

T = TypeVar("T")
DEFAULT_TIMEZONE = "America/Mexico_City"


class Prompt:
    """Questions on the terminal; ``read``/``read_secret`` are replaceable for tests."""

    def __init__(self, t: Messages, *, read: Callable[[str], str] = input,
                 read_secret: Callable[[str], str] = getpass.getpass,
                 write: Callable[[str], None] = print) -> None:
        self.t, self.read, self.read_secret, self.write = t, read, read_secret, write

    def value(self, question: str, check: Callable[[str], T], *, default: str | None = None,
              optional: bool = False) -> T | None:
        shown = f"{self.t(question)}{f' [{default}]' if default else ''}: "
        while True:
            try:
                answer = self.read(shown).strip()
            except EOFError:
                raise SettingError("", text("inst.ask.closed")) from None
            if not answer and default:
                answer = default
            if not answer:
                if optional:
                    return None
                self.write("    " + self.t("inst.ask.required"))
                continue
            try:
                return check(answer)
            except SettingError as exc:
                self.write("    " + self.t.render(exc.message))

    def choice(self, question: str, choices: tuple[str, ...], default: str) -> str:
        def check(answer: str) -> str:
            if answer not in choices:
                raise SettingError("", text("inst.ask.choice", choices=", ".join(choices)))
            return answer
        return self.value(question, check, default=default) or default

    def password(self) -> str:
        while True:
            try:
                first = self.read_secret(self.t("inst.ask.password") + ": ")
                second = self.read_secret(self.t("inst.ask.password_again") + ": ")
            except EOFError:
                raise SettingError("", text("inst.ask.closed")) from None
            if first != second:
                self.write("    " + self.t("inst.ask.password_differs"))
                continue
            try:
                return checks.password(first, option="")
            except SettingError as exc:
                self.write("    " + self.t.render(exc.message))


def from_options(opts: argparse.Namespace, *, language: str,
                 state: str) -> tuple[SiteSettings, list[SettingError]]:
    """The settings given as options, each checked; every problem, not just the first."""
    problems: list[SettingError] = []
    values: dict[str, object] = {}

    def attempt(fn: Callable[[], None]) -> None:
        try:
            fn()
        except SettingError as exc:
            problems.append(exc)

    def site() -> None:
        values["site_id"] = checks.site_id(opts.site_id)

    def broker() -> None:
        values["broker_host"], values["broker_port"] = checks.broker(opts.broker)

    def ca() -> None:
        values["ca_file"] = str(checks.ca_file(opts.ca_file))

    def pair() -> None:
        cert, key = checks.client_pair(opts.client_cert, opts.client_key)
        values["client_cert"], values["client_key"] = str(cert), str(key)

    def user() -> None:
        values["mqtt_user"] = checks.mqtt_user(opts.mqtt_user)

    def secret() -> None:
        values["password"] = Secret(checks.password_file(opts.mqtt_password_file))

    def keys() -> None:
        checks.trusted_keys(opts.trusted_keys)
        values["trusted_keys"] = str(Path(opts.trusted_keys).expanduser().absolute())

    def zone() -> None:
        values["timezone"] = checks.timezone(opts.timezone)

    for given, fn in ((opts.site_id, site), (opts.broker, broker), (opts.ca_file, ca),
                      (opts.mqtt_user, user), (opts.mqtt_password_file, secret),
                      (opts.trusted_keys, keys), (opts.timezone, zone)):
        if given is not None:
            attempt(fn)
    if (opts.client_cert is None) != (opts.client_key is None):
        problems.append(SettingError("", text("inst.settings.pair")))
    elif opts.client_cert is not None:
        attempt(pair)
    settings = SiteSettings(**values)  # type: ignore[arg-type]
    # A new config is written in the installer's language; an edited one changes it only on --lang.
    if (settings.given() and state != "edited") or (opts.lang_given and state == "edited"):
        settings = replace(settings, language=language)
    return settings, problems


def missing(settings: SiteSettings, *, state: str) -> list[SettingError]:
    """What a new config cannot do without (an existing one keeps its own values)."""
    problems: list[SettingError] = []
    if state != "edited" and settings.given():
        if settings.site_id is None:
            problems.append(SettingError("", text(
                "inst.settings.missing", option="--site-id", what=text("inst.what.site_id"))))
        if settings.broker_host is None:
            problems.append(SettingError("", text(
                "inst.settings.missing", option="--broker", what=text("inst.what.broker"))))
        if settings.password is not None and settings.mqtt_user is None:
            problems.append(SettingError("", text("inst.settings.password_needs_user")))
    return problems


def ask(settings: SiteSettings, prompt: Prompt, *, current_timezone: str | None) -> SiteSettings:
    """Ask for each setting of a new install that was not given as an option."""
    t = prompt.t
    prompt.write(t("inst.ask.intro"))
    s = settings
    if s.site_id is None:
        s = replace(s, site_id=prompt.value("inst.ask.site_id", checks.site_id))
    if s.broker_host is None:
        host, port = prompt.value("inst.ask.broker", checks.broker) or ("", 0)
        s = replace(s, broker_host=host, broker_port=port)
    if s.ca_file is None:
        ca = prompt.value("inst.ask.ca_file", checks.ca_file, optional=True)
        s = replace(s, ca_file=str(ca) if ca else None)
    if s.mqtt_user is None and s.password is None and s.client_cert is None:
        how = prompt.choice("inst.ask.auth", ("1", "2", "3", "4"), "1")
        if how in ("1", "3"):
            s = replace(s, mqtt_user=prompt.value("inst.ask.user", checks.mqtt_user),
                        password=Secret(prompt.password()))
        if how in ("2", "3"):
            cert = prompt.value("inst.ask.client_cert", checks.client_cert)
            key = prompt.value("inst.ask.client_key",
                               lambda v: checks.client_pair(str(cert), v)[1])
            s = replace(s, client_cert=str(cert), client_key=str(key))
    elif s.mqtt_user is not None and s.password is None:
        s = replace(s, password=Secret(prompt.password()))
    if s.trusted_keys is None:
        def keys(v: str) -> str:
            checks.trusted_keys(v)
            return str(Path(v).expanduser().absolute())
        s = replace(s, trusted_keys=prompt.value("inst.ask.trusted_keys", keys, optional=True))
    if s.timezone is None:
        s = replace(s, timezone=prompt.value("inst.ask.timezone", checks.timezone,
                                             default=current_timezone or DEFAULT_TIMEZONE))
    return s


def summary(s: SiteSettings, trusted_count: int) -> list[Text]:
    """What will be written, one line each; the password only as "given"."""
    lines: list[Text] = []
    if s.site_id:
        lines.append(text("inst.sum.site_id", value=s.site_id))
    if s.broker_host:
        lines.append(text("inst.sum.broker", host=s.broker_host, port=s.broker_port))
    if s.ca_file:
        lines.append(text("inst.sum.ca_file", path=s.ca_file))
    elif s.site_id and s.broker_host:
        lines.append(text("inst.sum.system_ca"))
    if s.client_cert:
        lines.append(text("inst.sum.client_cert", cert=s.client_cert, key=s.client_key))
    if s.mqtt_user:
        lines.append(text("inst.sum.user", user=s.mqtt_user))
    if s.password is not None:
        lines.append(text("inst.sum.password"))
    if s.trusted_keys:
        lines.append(text("inst.sum.trusted_keys", n=trusted_count, path=s.trusted_keys))
    if s.timezone:
        lines.append(text("inst.sum.timezone", zone=s.timezone))
    if s.language:
        lines.append(text("inst.sum.language", lang=text(f"inst.lang.{s.language}")))
    return lines
