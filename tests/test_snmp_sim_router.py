"""scripts/sim_router.py: the demo's router answers the agent over v2c and v3, on loopback only."""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from pathlib import Path

from agent.config import parse_config
from agent.sources.snmp import SnmpSource
from fixtures.snmp import v2c_probe
from helpers import free_port, require_binary, run, wait_until

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "sim_router.py"
V3_KEYS = ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key")


def printed_device(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(SCRIPT), *args, "--print-config"],
                         capture_output=True, text=True, check=True).stdout
    return tomllib.loads(out)["devices"][0]


def test_sim_router_serves_v2c_and_v3_on_loopback(tmp_path):
    require_binary("snmpd")
    port = free_port(socket.SOCK_DGRAM)
    args = ["--port", str(port), "--community", "demo-clinic", "--v3-user", "agent",
            "--v3-auth-key", "auth-pass-123", "--v3-priv-key", "priv-pass-123"]
    v3 = printed_device(*args)
    v2c = {**{k: v for k, v in v3.items() if k not in V3_KEYS},
           "name": "router-v2c", "version": "2c", "community": "demo-clinic"}
    devices = parse_config({"site_id": "demo-site", "mqtt": {"host": "127.0.0.1"},
                            "devices": [v3, v2c]}).devices

    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args, "--workdir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is None and v2c_probe(port, "demo-clinic"), timeout=10,
                   what="sim_router to answer")

        async def poll_each():
            results = []
            for d in devices:
                source = SnmpSource(d)
                try:
                    results.append({s.metric: s.value for s in await source.read()})
                finally:
                    await source.close()
            return results
        results = run(poll_each())
    finally:
        proc.terminate()
        proc.wait(5)

    assert f"agentAddress udp:127.0.0.1:{port}\n" in (tmp_path / "snmpd.conf").read_text()
    for samples in results:
        assert samples["system.name"] == "clinic-router"
        assert samples["if.lo.oper_up"] is True
