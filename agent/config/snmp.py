"""Settings of an ``snmp`` device (the clinic router, or a UPS network card).

Parsed from a ``[[devices]]`` entry with ``kind = "snmp"``::

    [[devices]]
    name = "router"
    kind = "snmp"
    host = "192.168.88.1"
    version = "2c"              # "1", "2c" or "3"
    community = "clinic-ro"     # v1/v2c; better kept in the secrets file
    interfaces = ["ether1", "re:^wlan", "type:ppp", "alias:uplink"]   # empty = every interface
    wan_interface = "ether1"    # reported as if.wan.* instead of if.ether1.*; default "auto"
    profiles = ["system", "if-mib", "host-resources"]   # the default, for routers
    profiles_dir = "/etc/clinic-agent/profiles"          # more profiles, or replacements

Interface selectors: a plain name matches ifName, ifDescr or ifAlias (any case); ``re:`` a regular
expression on those; ``alias:`` the ifAlias only; ``type:`` the ifType, by number (``type:23``)
or IANA name (``type:ppp``, ``type:ethernetCsmacd``).

``wan_interface = "auto"`` (the default) picks the interface carrying the default route when the
router publishes its route table, else a PPP or cellular interface (ifType ppp/wwanPP), else one
named like a WAN (pppoe*, wwan*, lte*, wan*): the rules are in the if-mib profile.
``wan_interface = "none"`` reports no ``if.wan.*``.

    # v3 instead of a community:
    # user = "agent", auth_protocol = "sha256", auth_key = "...",
    # priv_protocol = "aes128", priv_key = "..."

Secrets (community, keys) are wrapped in ``Secret`` and never echoed in problems, so a
validation error pasted into a support chat does not leak them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from agent.config import snmp_profiles
from agent.config.fields import Table, show
from agent.config.secret import Secret
from agent.config.snmp_profiles import DEFAULT_PROFILES, PROFILE_NAME_PATTERN, ProfileSet
from agent.i18n import text

VERSIONS = ("1", "2c", "3")
AUTH_PROTOCOLS = ("none", "md5", "sha", "sha224", "sha256", "sha384", "sha512")
# aes192/aes256 localise keys the way net-snmp (OpenWrt, most Linux routers) does; Cisco IOS
# extends keys differently, which is what the "c" variants are for.
PRIV_PROTOCOLS = ("none", "des", "aes128", "aes192", "aes256", "aes192c", "aes256c")
MIN_KEY_LENGTH = 8          # RFC 3414 passphrases; net-snmp refuses shorter ones
MAX_USER_LENGTH = 32        # SnmpAdminString (SIZE(1..32))
REGEX_PREFIX = "re:"
TYPE_PREFIX = "type:"
ALIAS_PREFIX = "alias:"
WAN_AUTO = "auto"
WAN_NONE = "none"
# IANAifType names a technician may write after "type:" (any case); others by number.
IF_TYPES = {
    "other": 1, "ethernetcsmacd": 6, "iso88023csmacd": 7, "fastether": 62, "gigabitethernet": 117,
    "ppp": 23, "softwareloopback": 24, "propvirtual": 53, "ieee80211": 71, "adsl": 94,
    "vdsl": 97, "pppmultilinkbundle": 108, "docscablemaclayer": 127, "tunnel": 131,
    "l2vlan": 135, "l3ipvlan": 136, "ieee8023adlag": 161, "bridge": 209, "wwanpp": 243,
    "wwanpp2": 244, "vdsl2": 251,
}
_V3_ONLY = ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key")


class UnknownIfType(ValueError):
    """``type:`` followed by a name that is not an IANA ifType this module knows."""

    def __init__(self, word: str) -> None:
        self.word = word
        super().__init__(f"unknown ifType {word!r}: use its number (e.g. type:23) or one of "
                         + ", ".join(sorted(IF_TYPES)))


@dataclass(frozen=True)
class InterfaceSelector:
    """Selects interfaces by exact name (ifName, ifDescr or ifAlias; any case), ``re:`` regex,
    ``alias:`` label or ``type:`` ifType."""

    text: str
    pattern: re.Pattern[str] | None = None
    if_type: int | None = None
    alias_only: bool = False

    @classmethod
    def parse(cls, text: str) -> InterfaceSelector:
        """Build a selector; raises ``ValueError`` (``re.error`` included) for a bad one."""
        if text.startswith(REGEX_PREFIX):
            return cls(text, re.compile(text[len(REGEX_PREFIX):]))
        if text.startswith(TYPE_PREFIX):
            word = text[len(TYPE_PREFIX):].strip()
            if word.isdigit() and int(word) >= 1:
                return cls(text, if_type=int(word))
            if word.casefold() in IF_TYPES:
                return cls(text, if_type=IF_TYPES[word.casefold()])
            raise UnknownIfType(word)
        if text.startswith(ALIAS_PREFIX):
            return cls(text[len(ALIAS_PREFIX):], alias_only=True)
        return cls(text)

    def matches(self, *names: str, alias: str = "", if_type: int | None = None) -> bool:
        """Whether the interface with these names (name, description, alias, key), ``alias`` and
        ``if_type`` is selected."""
        if self.if_type is not None:
            return if_type == self.if_type
        if self.alias_only:
            return bool(alias) and alias.casefold() == self.text.casefold()
        names = (*names, alias)
        if self.pattern is not None:
            return any(n and self.pattern.search(n) for n in names)
        wanted = self.text.casefold()
        return any(n and n.casefold() == wanted for n in names)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class SnmpSettings:
    """Validated settings of one SNMP device. Secrets stay wrapped until the adapter needs them."""

    host: str
    port: int = 161
    version: str = "2c"
    community: Secret | None = None
    user: str | None = None
    auth_protocol: str = "none"
    auth_key: Secret | None = None
    priv_protocol: str = "none"
    priv_key: Secret | None = None
    retries: int = 1
    max_repetitions: int = 25
    interfaces: tuple[InterfaceSelector, ...] = ()
    wan_interface: InterfaceSelector | None = None
    wan_auto: bool = True           # no wan_interface given: recognise the WAN (if-mib profile)
    profiles: ProfileSet = ProfileSet(names=())
    profiles_dir: str | None = None

    @property
    def security_level(self) -> str:
        """The v3 security level the keys give: noAuthNoPriv, authNoPriv or authPriv."""
        if self.auth_protocol == "none":
            return "noAuthNoPriv"
        return "authNoPriv" if self.priv_protocol == "none" else "authPriv"


def parse(t: Table) -> SnmpSettings:
    """Read the SNMP keys of one ``[[devices]]`` table, recording every problem on ``t``."""
    host = t.host("host")
    port = t.int("port", 161, min=1, max=65535)
    version = t.str("version", "2c", choices=VERSIONS, what=text("cfg.what.snmp_version")) or "2c"
    retries = t.int("retries", 1, min=0, max=10)
    max_repetitions = t.int("max_repetitions", 25, min=1, max=1000)
    interfaces = _selectors(t)
    wan_text = t.str("wan_interface", WAN_AUTO)
    wan_auto = wan_text == WAN_AUTO
    wan = None if wan_text in (WAN_AUTO, WAN_NONE) else _selector(t, "wan_interface", wan_text)
    profiles_dir = snmp_profiles.check_dir(t, "profiles_dir", t.str("profiles_dir", None))
    names = t.str_list("profiles", DEFAULT_PROFILES) or ()
    for i, name in enumerate(names):
        if not re.fullmatch(PROFILE_NAME_PATTERN, name):
            t.problem(f"profiles[{i}]", "cfg.expected", what=text("cfg.what.snmp_profile_name"),
                      got=show(name))
    profiles = snmp_profiles.load(t, "profiles", tuple(n for n in names
                                                      if re.fullmatch(PROFILE_NAME_PATTERN, n)),
                                  profiles_dir)
    if not names:
        t.problem("profiles", "cfg.snmp.no_profiles")

    community = _secret(t, "community")
    v3 = {key: t.has(key) for key in _V3_ONLY}
    user = auth_protocol = priv_protocol = None
    auth_key = priv_key = None
    if version == "3":
        if t.has("community"):
            t.problem("community", "cfg.snmp.community_v3")
        user, auth_protocol, auth_key, priv_protocol, priv_key = _parse_v3(t)
    else:
        if community is None and not t.has("community"):
            t.problem("community", "cfg.snmp.community_required", version=version)
        elif community is not None and community.reveal() == "public":
            t.problem("community", "cfg.snmp.community_public")
        for key in _V3_ONLY:
            t.raw(key)
            if v3[key]:
                t.problem(key, "cfg.snmp.v3_only", version=show(version))

    return SnmpSettings(
        host=host or "", port=port or 161, version=version, community=community, user=user,
        auth_protocol=auth_protocol or "none", auth_key=auth_key,
        priv_protocol=priv_protocol or "none", priv_key=priv_key,
        retries=1 if retries is None else retries, max_repetitions=max_repetitions or 25,
        interfaces=interfaces, wan_interface=wan, wan_auto=wan_auto, profiles=profiles,
        profiles_dir=profiles_dir)


def _parse_v3(t: Table) -> tuple[Any, ...]:
    user = t.str("user", pattern=rf"[^\s]{{1,{MAX_USER_LENGTH}}}",
                 what=text("cfg.what.v3_user", n=MAX_USER_LENGTH))
    auth_key = _secret(t, "auth_key", min_length=MIN_KEY_LENGTH)
    priv_key = _secret(t, "priv_key", min_length=MIN_KEY_LENGTH)
    auth_protocol = _protocol(t, "auth_protocol", AUTH_PROTOCOLS, key_name="auth_key",
                              key_given=t.has("auth_key"))
    priv_protocol = _protocol(t, "priv_protocol", PRIV_PROTOCOLS, key_name="priv_key",
                              key_given=t.has("priv_key"))
    if auth_protocol not in (None, "none") and auth_key is None and not t.has("auth_key"):
        t.problem("auth_key", "cfg.snmp.key_required", protocol_key="auth_protocol",
                  protocol=show(auth_protocol))
    if auth_protocol == "none" and t.has("auth_key"):
        t.problem("auth_key", "cfg.snmp.key_unused", protocol_key="auth_protocol")
    if priv_protocol not in (None, "none"):
        if priv_key is None and not t.has("priv_key"):
            t.problem("priv_key", "cfg.snmp.key_required", protocol_key="priv_protocol",
                      protocol=show(priv_protocol))
        if auth_protocol == "none":
            t.problem("priv_protocol", "cfg.snmp.priv_without_auth")
    if priv_protocol == "none" and t.has("priv_key"):
        t.problem("priv_key", "cfg.snmp.key_unused", protocol_key="priv_protocol")
    return user, auth_protocol, auth_key, priv_protocol, priv_key


def _protocol(t: Table, key: str, choices: tuple[str, ...], *, key_name: str,
              key_given: bool) -> str | None:
    """The protocol name; None when it is wrong or missing (the problem is already recorded)."""
    if not t.has(key):
        t.str(key, None)
        if key_given:
            # Guessing the protocol would turn a typo into "authentication failed" at 3 a.m.
            t.problem(key, "cfg.snmp.protocol_required", key_name=key_name,
                      choices=", ".join(choices[1:]))
            return None
        return "none"
    return cast("str | None", t.str(key, None, choices=choices))


def _secret(t: Table, key: str, *, min_length: int = 1) -> Secret | None:
    """A secret string, checked without ever echoing its value into a problem."""
    raw = t.secret(key, min_length=min_length)
    return Secret(raw) if raw is not None else None


def _selectors(t: Table) -> tuple[InterfaceSelector, ...]:
    texts = t.str_list("interfaces", ()) or ()
    selectors = []
    for i, words in enumerate(texts):
        selector = _selector(t, f"interfaces[{i}]", words)
        if selector is not None:
            selectors.append(selector)
    return tuple(selectors)


def _selector(t: Table, key: str, written: str | None) -> InterfaceSelector | None:
    if written is None:
        return None
    if not written.strip() or written == REGEX_PREFIX:
        t.problem(key, "cfg.expected", what=text("cfg.what.interface"), got=show(written))
        return None
    try:
        return InterfaceSelector.parse(written)
    except re.error as exc:
        t.problem(key, "cfg.snmp.bad_regex", got=show(written), error=str(exc))
        return None
    except UnknownIfType as exc:
        t.problem(key, "cfg.snmp.unknown_iftype", word=repr(exc.word),
                  names=", ".join(sorted(IF_TYPES)), got=show(written))
        return None
