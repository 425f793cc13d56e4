"""Whatever an event row holds (the values and names a clinic sent, times from a clock that went
anywhere), its alert is built without raising, as JSON Alertmanager accepts: bounded strings,
an end never before the start. The [alerts] settings and the sites file: a typed error or a
config, never a crash."""

from __future__ import annotations

import json
import math
from pathlib import Path

from fuzz_budget import bounded, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ConfigError
from central.alert_payload import MAX_ANNOTATION, MAX_LABEL, StoredAlert, alert_json
from central.alert_rules import AlertsConfig, SiteDetails, read_site_details
from central.config import parse_config

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=30)
times = st.floats(min_value=0, max_value=32503680000 - 1)
odd_numbers = st.none() | st.floats() | st.integers(-10**12, 10**12)
names = st.text(min_size=1, max_size=300)

alerts = st.builds(
    StoredAlert, site=names, dev=names,
    cond=st.sampled_from(["mains_lost", "voltage_low.l2", "disk_full.disk1", "wan_down"]) | names,
    start=times, severity=st.sampled_from(["critical", "warning", "info"]),
    values=st.dictionaries(st.sampled_from(["battery.runtime_s", "on_battery", "x"]) | names,
                           json_values, max_size=6),
    flapping=st.booleans(), end=st.none() | times | st.floats(), dur_s=odd_numbers,
    est=st.booleans(), late=st.booleans())
configs = st.builds(AlertsConfig, language=st.sampled_from(["es", "en"]),
                    timezone=st.sampled_from([None, "America/Mexico_City", "Asia/Kathmandu"]),
                    sites=st.dictionaries(names, st.builds(
                        SiteDetails, state=st.none() | names, municipality=st.none() | names,
                        tz=st.sampled_from([None, "America/Cancun", "Pacific/Kiritimati"])),
                        max_size=2))


@fuzz_settings(300)
@given(a=alerts, cfg=configs, now=times, resolved=st.booleans())
def test_any_stored_alert_becomes_an_alert_alertmanager_accepts(a: StoredAlert, cfg: AlertsConfig,
                                                                now: float, resolved: bool) -> None:
    with bounded("alert_json"):
        doc = alert_json(a, cfg, now=now, resolved=resolved)
    json.dumps(doc, allow_nan=False)     # what goes on the wire is plain JSON
    assert doc["labels"]["alertname"] and doc["labels"]["severity"] == a.severity
    assert all(isinstance(v, str) and 0 < len(v) <= MAX_LABEL for v in doc["labels"].values())
    assert all(isinstance(v, str) and len(v) <= MAX_ANNOTATION for v in doc["annotations"].values())
    assert doc["startsAt"] <= doc["endsAt"]          # RFC 3339 in UTC, same width: ordered as text
    assert doc["annotations"]["summary_es"] and doc["annotations"]["summary_en"]


@fuzz_settings(300)
@given(text=st.text(max_size=400) | st.lists(
    st.lists(st.text(max_size=20), max_size=5).map(",".join), max_size=6).map(
        lambda rows: "site,state,municipality,timezone\n" + "\n".join(rows)))
def test_any_sites_file_gives_sites_and_problems_never_a_crash(text: str) -> None:
    with bounded("read_site_details"):
        sites, bad = read_site_details(text)
    assert all(isinstance(p, str) for p in bad)
    assert all(isinstance(s, SiteDetails) for s in sites.values())


alerts_tables = st.dictionaries(
    st.sampled_from(["url", "report_ended", "language", "timezone", "hold_s", "repost_s",
                     "firing_ttl_s", "tick_s", "default_severity", "severity", "sites_file", "typo"]),
    json_values | st.dictionaries(st.sampled_from(["mains_lost", "wan_down", "nope"]),
                                  st.sampled_from(["critical", "none", "loud"]) | json_values,
                                  max_size=3),
    max_size=8)


@fuzz_settings(300)
@given(table=alerts_tables | json_values)
def test_any_alerts_section_gives_a_config_or_a_typed_error(table: object) -> None:
    data = {"mqtt": {}, "victoriametrics": {}, "postgres": {"dsn": "postgresql://unused"},
            "alerts": table}
    with bounded("parse_config [alerts]"):
        try:
            cfg = parse_config(data, base=Path("/nonexistent"))
        except ConfigError as exc:
            assert exc.problems and all(str(p).startswith("alerts") for p in exc.problems)
            return
    assert cfg.alerts is not None
    assert math.isfinite(cfg.alerts.hold_s) and cfg.alerts.firing_ttl_s >= 2 * cfg.alerts.repost_s
