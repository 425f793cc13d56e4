"""The ``kind = "snmp"`` device settings: defaults, v3 keys, and problems a technician can fix."""

from __future__ import annotations

import pytest

from agent.config import parse_config
from agent.config.secret import Secret
from agent.config.snmp import InterfaceSelector, SnmpSettings
from agent.errors import ConfigError


def settings(**keys) -> SnmpSettings:
    return parse_config(_doc(keys)).devices[0].settings


def problems(**keys) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(_doc(keys))
    return caught.value.problems


def _doc(keys: dict) -> dict:
    return {"site_id": "test-site", "mqtt": {"host": "broker.example.org"},
            "devices": [{"name": "router", "kind": "snmp", **keys}]}


V3 = dict(version="3", user="agent", auth_protocol="sha256", auth_key="auth-key-long",
          priv_protocol="aes128", priv_key="priv-key-long")


def test_v2c_defaults():
    s = settings(host="192.168.88.1", community="clinic-ro")

    assert (s.host, s.port, s.version, s.retries, s.max_repetitions) == ("192.168.88.1", 161, "2c", 1, 25)
    assert s.community == Secret("clinic-ro")
    assert "clinic-ro" not in repr(s) and "clinic-ro" not in str(s)
    assert s.interfaces == () and s.wan_interface is None


def test_community_is_required_and_public_is_refused():
    assert problems(host="10.0.0.1") == [
        "devices[0].community: is required for SNMP v2c (the router's read-only community; "
        "it may live in the secrets file)"]
    [public] = problems(host="10.0.0.1", community="public")
    assert public.startswith('devices[0].community: "public" is the factory default')


def test_v3_settings_keep_keys_secret():
    s = settings(host="10.0.0.1", **V3)

    assert (s.user, s.auth_protocol, s.priv_protocol, s.security_level) == \
        ("agent", "sha256", "aes128", "authPriv")
    assert s.auth_key.reveal() == "auth-key-long"
    assert "auth-key-long" not in repr(s) and "priv-key-long" not in repr(s)


def test_v3_auth_only():
    s = settings(host="10.0.0.1", version="3", user="agent", auth_protocol="md5",
                 auth_key="auth-key-long")
    assert s.security_level == "authNoPriv" and s.priv_key is None


def test_every_v3_problem_is_reported_at_once_without_echoing_keys():
    found = problems(host="10.0.0.1", version="3", auth_key="short", priv_protocol="aes",
                     priv_key="s3cr3t-priv-value", community="clinic-ro")

    assert found == [
        'devices[0].community: is only used with version "1" or "2c"; v3 uses user and keys',
        "devices[0].user: is required but missing",
        "devices[0].auth_key: expected at least 8 characters, got 5 character(s)",
        "devices[0].auth_protocol: is required with auth_key "
        "(one of md5, sha, sha224, sha256, sha384, sha512)",
        'devices[0].priv_protocol: expected one of "none", "des", "aes128", "aes192", "aes256", '
        '"aes192c", "aes256c", got "aes"; did you mean "aes128"?',
    ]
    assert not any("short" in p or "s3cr3t" in p for p in found)


def test_privacy_needs_authentication():
    [found] = problems(host="10.0.0.1", version="3", user="agent", priv_protocol="des",
                       priv_key="priv-key-long")
    assert found.startswith("devices[0].priv_protocol: SNMP v3 cannot encrypt without authentication")


def test_v3_keys_on_a_v2c_device_are_flagged():
    assert problems(host="10.0.0.1", community="clinic-ro", user="agent") == [
        'devices[0].user: is only used with version = "3", not "2c"']


def test_version_must_be_a_quoted_string():
    assert problems(host="10.0.0.1", community="clinic-ro", version=2) == [
        'devices[0].version: expected one of "1", "2c", "3" (in quotes), got 2: write it in quotes, version = "2c"']


def test_non_string_community_is_not_echoed():
    assert problems(host="10.0.0.1", community=123456) == [
        "devices[0].community: expected a string (in quotes)"]


def test_interface_selectors_and_bad_regex_by_position():
    s = settings(host="10.0.0.1", community="clinic-ro", interfaces=["ether1", "re:^wlan"],
                 wan_interface="re:^pppoe")
    assert [str(i) for i in s.interfaces] == ["ether1", "re:^wlan"]
    assert s.wan_interface.matches("pppoe-out1")

    [found] = problems(host="10.0.0.1", community="clinic-ro", interfaces=["ether1", "re:(eth"])
    assert found.startswith('devices[0].interfaces[1]: expected a valid regular expression after '
                            '"re:", got "re:(eth"')


def test_typo_in_a_key_is_still_caught():
    assert problems(host="10.0.0.1", community="clinic-ro", max_repetition=10) == [
        "devices[0].max_repetition: is not a known setting; did you mean max_repetitions?"]


def test_numbers_out_of_range():
    assert problems(host="10.0.0.1", community="clinic-ro", port=0, retries=-1,
                    max_repetitions=0) == [
        "devices[0].port: expected an integer 1-65535, got 0",
        "devices[0].retries: expected an integer 0-10, got -1",
        "devices[0].max_repetitions: expected an integer 1-1000, got 0",
    ]


@pytest.mark.parametrize("selector, names, expected", [
    ("ether1", ("ether1", "", ""), True),
    ("WAN", ("ether1", "", "wan"), True),              # names match in any case, alias too
    ("ether1", ("ether10", "", ""), False),            # exact, not a prefix
    ("re:^ether(1|2)$", ("ether2", "", ""), True),
    ("re:^ether(1|2)$", ("ether12", "", ""), False),
])
def test_selector_matching(selector, names, expected):
    assert InterfaceSelector.parse(selector).matches(*names) is expected
