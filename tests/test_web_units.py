"""The fleet's one definition of a clinic's state, the page's words, charts and login limits:
pure functions, no store."""

from __future__ import annotations

import re
import string
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from central import fleet
from central.web import auth, charts
from central.web.texts import MESSAGES, Words, pick_language

NOW = datetime(2026, 12, 2, 20, 0, tzinfo=timezone.utc)


def problem(cond, dev="ups", ago_s=600, **values):
    return fleet.Problem(1, cond, dev, NOW - timedelta(seconds=ago_s), values)


def clinic(site="S1", *, status="online", last_seen_ago=5.0, problems=(), latest=None,
           status_ago=None):
    return fleet.judge(site=site, inv=(None, "Oaxaca", "Juchitán"), status=status,
                       status_at=None if status_ago is None else NOW - timedelta(seconds=status_ago),
                       last_seen=None if last_seen_ago is None else NOW - timedelta(seconds=last_seen_ago),
                       agent_version="0.1.0", config_version="7", problems=list(problems),
                       latest=latest or {}, now=NOW)


def test_a_clinic_on_battery_is_on_battery_since_the_edge_start_with_the_newest_charge():
    c = clinic(problems=[problem("mains_lost", ago_s=125, **{"battery.charge_pct": 90})],
               latest={"battery.charge_pct": 71.0, "battery.runtime_s": 900.0})
    assert c.status == "on_battery" and c.since == NOW - timedelta(seconds=125)
    assert (c.charge_pct, c.runtime_s) == (71.0, 900.0)
    # without a newer reading, the raise's own values
    c = clinic(problems=[problem("mains_lost", **{"battery.charge_pct": 90})])
    assert c.charge_pct == 90


def test_worst_first_offline_then_battery_low_on_battery_internet_devices_other_backlog_ok():
    fleet_ = [
        clinic("ok"),
        clinic("backlog", latest={"buffer.depth": 5000.0}),
        clinic("disk", problems=[problem("disk_full", dev="pc")]),
        clinic("dev", problems=[problem("device_unreachable", dev="router")]),
        clinic("wan", problems=[problem("wan_down", dev="wan")]),
        clinic("batt", problems=[problem("mains_lost")]),
        clinic("low", problems=[problem("mains_lost"), problem("battery_low", ago_s=60)]),
        clinic("gone", status="offline", status_ago=3600),
        clinic("silent", last_seen_ago=fleet.SILENT_AFTER_S + 1),
        clinic("never", last_seen_ago=None),
    ]
    ordered = [c.site for c in sorted(fleet_, key=fleet.sort_key)]
    assert ordered == ["never", "gone", "silent", "low", "batt", "wan", "dev", "disk", "backlog",
                       "ok"]
    assert next(c for c in fleet_ if c.site == "gone").since == NOW - timedelta(hours=1)
    # an offline clinic keeps what it last said (it was on battery when it went silent)
    c = clinic(status="offline", status_ago=60, problems=[problem("mains_lost")])
    assert c.status == "offline" and {"offline", "on_battery"} <= c.flags


def test_the_filter_selects_a_condition_a_duration_and_a_place():
    batt = clinic("b", problems=[problem("mains_lost", ago_s=4000)])
    fresh = clinic("f", problems=[problem("mains_lost", ago_s=60)])
    ok = clinic("o")
    f = fleet.Filter(show="on_battery", for_s=3600)
    assert [c.site for c in (batt, fresh, ok) if f.matches(c, NOW)] == ["b"]
    assert not fleet.Filter(show="problems").matches(ok, NOW)
    assert fleet.Filter(state="OAXACA", municipality="juchitán").matches(ok, NOW)
    assert not fleet.Filter(state="Chiapas").matches(ok, NOW)
    never = clinic("n", last_seen_ago=None)
    assert fleet.Filter(show="offline", for_s=86400).matches(never, NOW)


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600),
                                          ("2d", 172800), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert fleet.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1h", "nan", "infh", "h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        fleet.parse_duration(text)


def test_a_malformed_active_list_keeps_what_it_can():
    got = fleet.read_problems([{"cond": "mains_lost", "dev": "ups", "start": 1.8e9, "id": 3},
                               {"cond": 5}, "x", {"cond": "a", "dev": "b", "start": "yesterday"},
                               {"cond": "wan_down", "dev": "wan", "start": 1.7e9, "values": []}], {})
    assert [(p.cond, p.id, p.values) for p in got] == [("wan_down", 0, {}), ("mains_lost", 3, {})]
    assert fleet.read_problems({"not": "a list"}, {}) == ()


def test_every_text_is_in_both_languages_with_the_same_placeholders():
    fmt = string.Formatter()
    for key, entry in MESSAGES.items():
        assert set(entry) == {"es", "en"}, key
        names = [{f for _, f, _, _ in fmt.parse(entry[lang]) if f} for lang in ("es", "en")]
        assert names[0] == names[1], key


def test_templates_use_only_catalogued_texts():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "central" / "web" / "templates"
    used = set()
    for path in root.glob("*.html"):
        used |= set(re.findall(r'w\("([a-z_.]+)"', path.read_text()))
    prefixes = {u for u in used if u.endswith(".")}      # w("state." ~ s): every value catalogued
    assert prefixes == {"role.", "state.", "kind."}
    assert used - prefixes <= set(MESSAGES), used - prefixes - set(MESSAGES)
    assert {f"state.{s}" for s in fleet.STATES} <= set(MESSAGES)
    assert {"role.read-only", "role.operator", "kind.raise", "kind.clear", "kind.flapping"} \
        <= set(MESSAGES)
    for cond in ("mains_lost", "wan_down", "device_unreachable", "battery_low"):
        assert f"cond.{cond}" in MESSAGES


@pytest.mark.parametrize("cookie,accept,lang", [
    (None, None, "es"), (None, "en-US,en;q=0.9", "en"), (None, "fr, en;q=0.5, es;q=0.8", "es"),
    ("en", "es-MX", "en"), ("xx", "de", "es"), (None, "en;q=abc", "es"), (None, "," * 10000, "es")])
def test_spanish_by_default_english_on_request(cookie, accept, lang):
    assert pick_language(cookie, accept) == lang


def test_times_are_shown_in_the_page_time_zone_and_durations_in_words():
    w = Words("es", ZoneInfo("America/Mexico_City"))
    t = datetime(2026, 12, 2, 20, 3, tzinfo=timezone.utc)       # 14:03 in Mexico City
    assert w.time(t, t + timedelta(minutes=5)) == "14:03"
    assert w.time(t, t + timedelta(days=1)) == "02/12/2026 14:03"
    assert w.since(t, t + timedelta(minutes=125)) == "14:03 (hace 2 h 5 min)"
    assert Words("en", ZoneInfo("UTC")).since(t, t + timedelta(days=3)) == "02/12/2026 20:03 (3 d 0 h ago)"
    assert w.since(None, t) == "nunca se ha conectado"
    assert w.since(t, t + timedelta(seconds=20)) == "14:03 (hace menos de 1 min)"
    assert w.cond("voltage_low.l2") == "Voltaje bajo (l2)" and w.cond("new_thing") == "new_thing"


def test_login_limit_per_address_and_user_and_it_ages_out():
    now = [0.0]
    lim = auth.LoginLimiter(max_failures=3, window_s=60, clock=lambda: now[0])
    keys = ["ip:a", "user:x"]
    for _ in range(3):
        assert lim.retry_after(keys) is None
        lim.failed(keys)
    assert lim.retry_after(keys) == 60
    assert lim.retry_after(["ip:b", "user:x"]) == 60       # the name is held from anywhere
    now[0] = 59.5
    assert lim.retry_after(["ip:b", "user:y"]) is None
    now[0] = 60.1
    assert lim.retry_after(keys) is None
    small = auth.LoginLimiter(max_failures=1, max_keys=10)
    for i in range(100):
        small.failed([f"ip:{i}"])
    assert len(small._fails) == 10


@pytest.mark.parametrize("target,safe", [
    ("/clinic/S1?range=6h", "/clinic/S1?range=6h"), ("//evil.example", "/"), ("/\\evil", "/"),
    ("https://evil.example/", "/"), ("", "/"), (None, "/"), ("/a\r\nSet-Cookie: x", "/"),
    ("/" + "a" * 2000, "/")])
def test_only_local_paths_are_redirect_targets(target, safe):
    assert auth.safe_next(target) == safe


def test_require_role_knows_only_the_two_roles():
    with pytest.raises(ValueError):
        auth.require_role("admin")


def test_a_chart_is_a_small_svg_with_a_line_per_series_broken_at_gaps():
    pts = tuple((1000.0 + 60 * i, float(i)) for i in range(10)) + \
        tuple((1000.0 + 60 * i, float(i)) for i in range(20, 25))
    out = charts.svg([charts.Series("ups input.voltage", pts),
                      charts.Series("x <script>", ((1000.0, 1.0),))], start=1000, end=2500,
                     step=60, title="Voltaje <b>", no_data="sin datos", range_text="{lo}-{hi}",
                     start_label="a", end_label="b")
    assert out.startswith("<svg") and out.count("<polyline") == 2 and out.count("<circle") == 1
    assert "<b>" not in out and "<script>" not in out and len(out) < 4000
    empty = charts.svg([], start=0, end=1, step=1, title="t", no_data="sin datos",
                       range_text="", start_label="", end_label="")
    assert "sin datos" in empty and "<polyline" not in empty
