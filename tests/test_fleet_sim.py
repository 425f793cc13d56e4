"""A small fleet through a broker restart (scripts/fleet_sim.py, docs/fleet-sim.md).

200 simulated clinics, each with the agent's real buffer, forwarder and MQTT link, connect over
TLS to Mosquitto run from the shipped central config; the broker is stopped and started again.
Every clinic must be publishing live readings again, and none may have hammered the broker: no
clinic over 15 connection attempts in any minute (counted by each clinic's MQTT link and, for
those that reached it, by the broker's own log).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import require_binary

ROOT = Path(__file__).resolve().parents[1]
CLINICS = 200
MAX_ATTEMPTS_PER_MINUTE = 15


def run_fleet(tmp_path: Path, *args: str, timeout: float = 240) -> dict:
    require_binary("mosquitto")
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fleet_sim.py"), *args, "--json", str(out),
         "--workdir", str(tmp_path), "--per-clinic"],
        capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_every_clinic_resumes_after_a_broker_restart_without_a_connection_storm(tmp_path):
    # UPS and meter polled every 5 s (half the example config's 10 s): a resumed clinic shows
    # a live reading sooner, and the test waits less.
    figures = run_fleet(tmp_path, "restart", "--clinics", str(CLINICS), "--tls",
                        "--down-s", "2", "--connected-for-s", "0", "--interval-scale", "0.5",
                        "--start-spread-s", "2", "--timeout", "90", "--settle-timeout", "90")

    restart = figures["restart"]
    assert restart["missing"] == [] and restart["resumed"] == CLINICS, restart
    # The restart really cut every clinic off: each connected to the new broker process.
    assert figures["attempts"]["broker_mqtt_connects_since"] >= CLINICS
    clinics = figures["per_clinic"]
    assert len(clinics) == CLINICS
    assert all(c["connects"] >= 2 for c in clinics), "a clinic never reconnected"
    worst = figures["attempts"]["max_per_clinic_60s"]
    assert worst <= MAX_ATTEMPTS_PER_MINUTE, (
        f"{figures['attempts']['max_per_clinic_60s_site']} made {worst} connection attempts "
        f"in one minute")
    assert figures["attempts"]["max_per_clinic_60s_at_broker"] <= MAX_ATTEMPTS_PER_MINUTE
    assert figures["supervisor_restarts"] == 0
