"""What an operator reads in an alert, and the [alerts] settings: no stores, no Alertmanager."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from agent.errors import ConfigError
from central.alert_payload import StoredAlert, alert_json
from central.alert_rules import AlertsConfig, SiteDetails, read_site_details, with_inventory
from central.alert_text import MESSAGES
from central.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
BASE = {"mqtt": {}, "victoriametrics": {}, "postgres": {"dsn": "postgresql://unused"}}
START = 1_795_464_180.0          # 2026-11-23 14:03:00 in Mexico City (UTC-6)


def config(alerts: dict[str, object]) -> AlertsConfig:
    cfg = parse_config({**BASE, "alerts": alerts})
    assert cfg.alerts is not None
    return cfg.alerts


def problems(alerts: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config({**BASE, "alerts": alerts})
    return [str(p) for p in exc.value.problems]


def test_the_shipped_central_config_turns_reporting_of_ended_events_on():
    data = tomllib.loads((ROOT / "conf" / "central.example.toml").read_text())
    data["mqtt"].pop("password_file")
    data["alerts"]["sites_file"] = "sites.example.csv"
    cfg = parse_config(data, base=ROOT / "conf").alerts
    assert cfg is not None and cfg.report_ended is True
    assert cfg.severity_of("mains_lost") == "critical"
    assert cfg.severity_of("voltage_low.l2") == "warning"
    assert cfg.severity_of("clock_stepped") is None
    assert cfg.sites["SOSSA000870"] == SiteDetails("Sonora", "Hermosillo", "America/Hermosillo")


def test_without_an_alerts_section_there_is_nothing_to_send_and_by_default_ended_events_are_not_told():
    assert parse_config(BASE).alerts is None
    assert config({}).report_ended is False


def test_bad_alert_settings_are_each_named_by_their_key_path():
    got = problems({"url": "ftp://x", "timezone": "Mars/Olympus", "hold_s": 0,
                    "severity": {"mains_lost": "page-everyone", "on_battery": "critical"},
                    "repost_s": 600, "firing_ttl_s": 900})
    text = "\n".join(got)
    assert re.search(r"^alerts\.url: ", text, re.M)
    assert re.search(r"^alerts\.timezone: not a time zone name", text, re.M)
    assert re.search(r"^alerts\.hold_s: ", text, re.M)
    assert re.search(r"^alerts\.severity\.mains_lost: .*critical", text, re.M)
    assert re.search(r"^alerts\.severity\.on_battery: not a condition code", text, re.M)
    assert re.search(r"^alerts\.firing_ttl_s: expected at least twice repost_s", text, re.M)


def test_a_sites_file_line_that_is_wrong_is_named_and_the_others_kept():
    sites, bad = read_site_details("site,state,municipality,timezone\n"
                                   "A1,Oaxaca,Juchitán,America/Mexico_City\n"
                                   "B/2,Oaxaca,,\n"
                                   "C3,,,Nowhere/Land\n"
                                   "D4,Chiapas,,\n")
    assert sites == {"A1": SiteDetails("Oaxaca", "Juchitán", "America/Mexico_City"),
                     "D4": SiteDetails("Chiapas", None, None)}
    assert bad == ["line 3: not a site id: 'B/2'", "line 4: not a time zone name: 'Nowhere/Land'"]
    assert read_site_details("A1,Oaxaca\n")[1] == [
        "the first line must name the columns: site,state,municipality,timezone"]


def on_battery(**kw: object) -> StoredAlert:
    args: dict[str, object] = {"site": "DFSSA001234", "dev": "ups", "cond": "mains_lost",
                               "start": START, "severity": "critical",
                               "values": {"on_battery": True, "battery.runtime_s": 1380}}
    args.update(kw)
    return StoredAlert(**args)  # type: ignore[arg-type]


def test_a_firing_alert_says_since_when_in_the_clinics_time_in_spanish_and_english():
    cfg = AlertsConfig(sites={"DFSSA001234": SiteDetails("Ciudad de México", "Tlalpan",
                                                         "America/Mexico_City")})
    a = alert_json(on_battery(), cfg, now=START + 600, resolved=False)
    assert a["labels"] == {"alertname": "mains_lost", "site": "DFSSA001234", "device": "ups",
                           "severity": "critical", "event_start": "2026-11-23T20:03:00.000Z",
                           "state": "Ciudad de México", "municipality": "Tlalpan"}
    assert a["startsAt"] == "2026-11-23T20:03:00.000Z"
    assert a["endsAt"] == "2026-11-23T21:13:00.000Z"       # now + firing_ttl_s (1 h)
    ann = a["annotations"]
    assert ann["summary"] == ann["summary_es"] == (
        "DFSSA001234 (Tlalpan, Ciudad de México) ups: sin luz de la red, funcionando con batería "
        "desde las 14:03 CST; quedan unos 23 min de batería")
    assert ann["summary_en"] == (
        "DFSSA001234 (Tlalpan, Ciudad de México) ups: no mains power, running on battery "
        "since 14:03 CST; about 23 min of battery left")
    assert ann["code"] == "mains_lost" and '"battery.runtime_s": 1380' in ann["args"]
    assert ann["timezone"] == "America/Mexico_City" and "reported_late" not in ann


def test_a_resolved_alert_carries_the_edge_end_and_the_duration_and_says_utc_when_the_zone_is_unknown():
    a = alert_json(on_battery(end=START + 2820, dur_s=2820.0, late=True), AlertsConfig(language="en"),
                   now=START + 9000, resolved=True)
    assert (a["startsAt"], a["endsAt"]) == ("2026-11-23T20:03:00.000Z", "2026-11-23T20:50:00.000Z")
    assert a["annotations"]["summary"] == a["annotations"]["summary_en"] == (
        "DFSSA001234 ups: no mains power, running on battery since 20:03 UTC; ended at 20:50 UTC, "
        "after 47 min. told late: the clinic was out of contact until it was over")
    assert a["annotations"]["summary_es"].startswith(
        "DFSSA001234 ups: sin luz de la red, funcionando con batería desde las 20:03 UTC; "
        "terminó a las 20:50 UTC, duró 47 min. aviso tardío")
    assert a["annotations"]["reported_late"] == "true"


def test_an_outage_over_midnight_gives_both_dates_and_a_phase_condition_its_part():
    tz = AlertsConfig(timezone="America/Mexico_City")
    a = alert_json(on_battery(end=START + 12 * 3600, est=True), tz, now=START + 13 * 3600,
                   resolved=True)
    assert ("desde el 2026-11-23 a las 14:03 CST; terminó el 2026-11-24 a las 02:03 CST, "
            "duró 12 h 0 min (estimado: la PC o el agente estaban apagados)") \
        in a["annotations"]["summary"]
    v = alert_json(on_battery(cond="voltage_low.l2", dev="meter", values={}, severity="warning"),
                   tz, now=START, resolved=False)
    assert v["labels"]["alertname"] == "voltage_low" and v["labels"]["part"] == "l2"
    assert "voltaje bajo (fase L2) desde las 14:03 CST" in v["annotations"]["summary"]


def test_an_end_before_the_start_a_clock_that_went_back_is_not_refused_by_alertmanager():
    a = alert_json(on_battery(end=START - 50, dur_s=30.0), AlertsConfig(), now=START, resolved=True)
    assert a["endsAt"] == a["startsAt"]


def test_every_alert_phrase_is_in_both_languages_with_the_same_placeholders():
    for msg_id, entry in MESSAGES.items():
        assert set(entry) == {"en", "es"}, msg_id
        assert set(re.findall(r"{(\w+)}", entry["en"])) == set(re.findall(r"{(\w+)}", entry["es"])), msg_id


def test_the_alerts_command_refuses_a_config_without_an_alerts_section(tmp_path, capsys):
    from central.cli import EXIT_CONFIG, main
    cfg = tmp_path / "central.toml"
    cfg.write_text('[mqtt]\n[victoriametrics]\n[postgres]\ndsn = "postgresql://unused"\n')
    assert main(["alerts", "-c", str(cfg)]) == EXIT_CONFIG
    assert "no [alerts] section" in capsys.readouterr().err
    cfg.write_text(cfg.read_text() + '[alerts]\nreport_ended = "yes"\n')
    assert main(["validate", str(cfg)]) == EXIT_CONFIG
    assert "alerts.report_ended" in capsys.readouterr().err


def test_the_inventory_gives_state_and_municipality_and_the_sites_file_the_time_zone():
    file = {"A1": SiteDetails("Oaxaca", None, "America/Mexico_City"),
            "B2": SiteDetails(None, None, "America/Cancun")}
    merged = with_inventory(file, [("A1", "Oaxaca", "Juchitán"), ("C3", "Sonora", None),
                                   ("B2", None, None)])
    assert merged == {"A1": SiteDetails("Oaxaca", "Juchitán", "America/Mexico_City"),
                      "B2": SiteDetails(None, None, "America/Cancun"),
                      "C3": SiteDetails("Sonora", None, None)}
