"""The fleet page in a real browser (Debian's chromium, headless, through Debian's chromedriver):
a clinic goes on battery at the edge, the real ingest stores it, and the open page moves its row
to the top by itself within seconds, with the clinic's own start time. Screenshots of the fleet
and the clinic's page are kept in test-artifacts/web/ (path printed)."""

from __future__ import annotations

import math
import os
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from fixtures.central import mqtt_client, pg_query
from helpers import require_binary, wait_until
from support import FakeClinic
from web_support import ARTIFACTS, PASSWORDS, Site, web  # noqa: F401

TZ = ZoneInfo("America/Mexico_City")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--window-size=1280,1000")


@pytest.fixture
def browser(tmp_path, monkeypatch):
    require_binary("chromium", "/usr/bin/chromium")
    require_binary("chromedriver", "/usr/bin/chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    monkeypatch.setenv("SE_OFFLINE", "true")       # never let Selenium fetch a driver or browser
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    opts.add_argument("--lang=es-MX")
    opts.add_experimental_option("prefs", {"intl.accept_languages": "es-MX,es"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path="/usr/bin/chromedriver"))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def feed_history(central, site: str, hours: float = 2.0, points: int = 60) -> FakeClinic:
    """Hours of readings from the clinic, through the broker and the ingest into VictoriaMetrics."""
    clinic = FakeClinic(mqtt_client(central, site), site)
    now = time.time()
    for i in range(points):
        ts = now - hours * 3600 + i * hours * 3600 / points
        rs = clinic.readings([("input.voltage", 127 + 4 * math.sin(i / 5)),
                              ("battery.charge_pct", 100), ("battery.runtime_s", 1800),
                              ("on_battery", False)], device="ups", ts=ts)
        rs += clinic.readings([("wan.latency_ms", 80 + 30 * math.cos(i / 7)),
                               ("wan.loss_pct", 5 if i % 9 == 0 else 0)], device="wan", ts=ts)
        rs += clinic.readings([("if.wan.in_bps", 200_000 + 5000 * i),
                               ("if.wan.out_bps", 50_000 + 1000 * i)], device="router", ts=ts)
        rs += clinic.readings([("buffer.depth", 0)], device="agent", ts=ts)
        clinic.publish(rs)
    return clinic


def first_row(driver):
    """The table's top row, read at once (the page replaces its rows while we look)."""
    return driver.execute_script("""
        var rows = document.querySelectorAll('#fleet tbody tr');
        if (!rows.length) return null;
        var r = rows[0], since = r.querySelector('.since');
        return {site: r.dataset.site, status: r.dataset.status, since: r.dataset.since,
                text: r.innerText, since_text: since ? since.innerText : '', rows: rows.length};""")


def test_a_clinic_on_battery_rises_to_the_top_of_the_open_page_with_its_own_start_time(
        web, central, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sites = {s: Site(central, s) for s in ("SITE001", "SITE002", "SITE003")}
    for s in sites.values():
        s.online(version="0.1.0")
        s.config(7)
        s.active([])
    wan_start = time.time() - 1200
    sites["SITE002"].active([sites["SITE002"].raise_event("wan_down", "wan", wan_start,
                                                          {"wan.up": False})])
    clinic = feed_history(central, "SITE001")
    wait_until(lambda: pg_query(central, "SELECT count(*) FROM sites WHERE config_version = '7' "
                                         "AND status = 'online'")[0][0] == 3
               and pg_query(central, "SELECT acked_seq FROM sites WHERE site='SITE001'")[0][0]
               == clinic.next_seq - 1, timeout=30, what="the three clinics and SITE001's readings")

    browser.get(f"{web.url}/")
    assert "/login" in browser.current_url              # nothing without a login
    browser.find_element("id", "user").send_keys("luis")
    browser.find_element("id", "password").send_keys(PASSWORDS["luis"])
    browser.find_element("id", "submit").click()
    wait_until(lambda: first_row(browser) is not None, timeout=15, what="the fleet table")
    top = first_row(browser)
    assert top["site"] == "SITE002" and "Sin internet" in top["text"], top
    assert top["rows"] == 3

    # SITE001's UPS goes on battery; the agent raised it once the cut had lasted its minimum, and
    # its start is the first poll that showed it (two minutes before it reaches the centre here).
    start = time.time() - 125
    clinic.publish(clinic.readings([("input.voltage", 0), ("battery.charge_pct", 87),
                                    ("battery.runtime_s", 1320), ("on_battery", True)],
                                   device="ups"))
    sent = time.monotonic()
    sites["SITE001"].active([sites["SITE001"].raise_event(
        "mains_lost", "ups", start, {"on_battery": True, "battery.charge_pct": 88})])
    wait_until(lambda: first_row(browser)["site"] == "SITE001", timeout=15,
               interval=0.2, what="SITE001 at the top of the open page")
    took = time.monotonic() - sent
    top = first_row(browser)
    hhmm = datetime.fromtimestamp(start, TZ).strftime("%H:%M")
    assert top["status"] == "on_battery"
    assert int(top["since"]) == int(start)
    assert top["since_text"].startswith(hhmm) and "hace 2 min" in top["since_text"], top
    wait_until(lambda: "87 %" in first_row(browser)["text"], timeout=10,
               what="the charge from the newest reading")
    top = first_row(browser)
    assert "22 min restantes" in top["text"] and f"En batería desde {hhmm}" in top["text"], top
    shot = ARTIFACTS / "fleet.png"
    browser.save_screenshot(str(shot))
    print(f"\nfleet page: row at the top {took:.1f} s after the event was published; "
          f"screenshot {shot}")
    assert took < 10

    browser.find_element("css selector", "#fleet tbody tr[data-site=SITE001] a").click()
    wait_until(lambda: browser.find_elements("id", "clinic-status"), timeout=15,
               what="the clinic's page")
    assert browser.find_element("id", "clinic-status").get_attribute("data-status") == "on_battery"
    active = browser.find_element("id", "active").text
    assert "Sin red eléctrica" in active and hhmm in active
    for chart in ("input_voltage", "battery", "wan_latency", "wan_loss", "traffic"):
        fig = browser.find_element("id", f"chart-{chart}")
        assert fig.find_elements("css selector", "polyline"), f"{chart} has no line"
    assert len(browser.find_elements("css selector", "#chart-traffic polyline")) >= 2
    # the newest reading (on battery, 87 %) is on the battery chart: its line ends low
    assert "mín. 87 · máx. 100" in browser.find_element("id", "chart-battery").text
    browser.set_window_size(1280, 1800)
    shot = ARTIFACTS / "clinic.png"
    browser.save_screenshot(str(shot))
    print(f"clinic page: screenshot {shot}")

    browser.find_element("id", "lang").click()
    wait_until(lambda: "Active problems" in browser.page_source, timeout=10, what="English")
    assert "Mains lost" in browser.find_element("id", "active").text
    browser.save_screenshot(str(ARTIFACTS / "clinic-en.png"))
    for s in sites.values():
        s.close()
    os.sync()


def test_the_real_agent_reporting_a_ups_on_battery_moves_its_clinic_to_the_top(
        web, central, browser, modbus_server, agent_process, tmp_path):
    """The whole path: the Modbus UPS simulator's mains fail, the agent (a process) polls it and
    raises mains_lost, Mosquitto, the ingest, PostgreSQL, the open page."""
    from events_clinic import POLL_S, ups_toml
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "agent-state"
    agent = agent_process(f"""
site_id = "SITE001"
state_dir = "{state}"
status_interval_s = 1
[mqtt]
host = "127.0.0.1"
port = {central.broker_port}
tls = false
username = "SITE001"
password = "{central.site_password('SITE001')}"
reconnect_max_s = 1
keepalive_s = 5
[events.mains_lost]
raise_after_s = 1
clear_after_s = 1
{ups_toml(modbus_server)}""")
    for s in ("SITE002", "SITE003"):
        other = Site(central, s)
        other.online()
        if s == "SITE002":     # at the top until SITE001's mains fail
            other.active([other.raise_event("wan_down", "wan", time.time() - 60, {})])
        other.close()
    browser.get(f"{web.url}/login")
    browser.find_element("id", "user").send_keys("luis")
    browser.find_element("id", "password").send_keys(PASSWORDS["luis"])
    browser.find_element("id", "submit").click()
    wait_until(lambda: (first_row(browser) or {}).get("rows") == 3, timeout=20,
               what="three clinics on the page")

    def row(site):
        return browser.execute_script(
            "var r = document.querySelector('#fleet tbody tr[data-site=' + arguments[0] + ']');"
            "return r ? r.dataset.status : null;", site)
    wait_until(lambda: row("SITE001") == "ok", timeout=30, interval=0.3,
               what=f"the agent's clinic online and fine: {agent.log()[-2000:]}")
    assert first_row(browser)["site"] == "SITE002"

    cut = time.time()
    modbus_server.set_outage(True)
    wait_until(lambda: first_row(browser)["site"] == "SITE001", timeout=20, interval=0.2,
               what=f"SITE001 at the top: {agent.log()[-2000:]}")
    took = time.time() - cut
    top = first_row(browser)
    assert top["status"] == "on_battery", top
    since = int(top["since"])
    # the first poll that showed the cut: within a poll (and a second of slack) of it
    assert cut - 1 <= since <= cut + 1 + POLL_S, (since, cut)
    hhmm = datetime.fromtimestamp(since, TZ).strftime("%H:%M")
    assert top["since_text"].startswith(hhmm), top
    shot = ARTIFACTS / "fleet-real-agent.png"
    browser.save_screenshot(str(shot))
    print(f"\nreal agent: on the page {took:.1f} s after the mains failed "
          f"(raise_after_s = 1); screenshot {shot}")
    assert took < 15

    modbus_server.set_outage(False)
    wait_until(lambda: row("SITE001") == "ok", timeout=20, interval=0.3,
               what="SITE001 back to fine when the mains return")
