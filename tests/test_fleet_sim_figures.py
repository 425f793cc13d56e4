"""The fleet simulator's figures (scripts/fleetsim): what the benchmark tables are computed from."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from fleetsim.broker import mosquitto_hash, parse_log  # noqa: E402
from fleetsim.metrics import max_in_window, time_to_fraction  # noqa: E402


def _connected(t: int, port: int, site: str) -> str:
    return (f"{t}: New client connected from 127.0.0.1:{port} as clinic-agent-{site} "
            f"(p5, c1, k60, u'{site}').")


# Lines as Mosquitto 2.0 writes them with the simulator's log settings.
LOG = f"""\
1796198874: mosquitto version 2.0.11 starting
1796198874: New connection from 127.0.0.1:41892 on port 37541.
1796198875: New connection from 127.0.0.1:58637 on port 37541.
{_connected(1796198875, 58637, "SIM00001")}
1796198876: New connection from 127.0.0.1:58640 on port 37541.
1796198876: Client <unknown> closed its connection.
1796198876: New connection from 127.0.0.1:58641 on port 37541.
{_connected(1796198876, 58641, "SIM00001")}
1796198877: New connection from 127.0.0.1:58642 on port 37541.
{_connected(1796198877, 58642, "SIM00002")}
"""


def test_the_broker_log_gives_tcp_connections_and_mqtt_connects_per_second_and_per_clinic():
    seen = parse_log(LOG.splitlines())
    # A reachability probe (TCP, no CONNECT) counts as a TCP connection, not an MQTT attempt.
    assert seen.tcp_per_s == {1796198874: 1, 1796198875: 1, 1796198876: 2, 1796198877: 1}
    assert seen.mqtt_per_s == {1796198875: 1, 1796198876: 1, 1796198877: 1}
    assert seen.per_client == {"clinic-agent-SIM00001": [1796198875, 1796198876],
                               "clinic-agent-SIM00002": [1796198877]}
    assert sum(parse_log(LOG.splitlines(), since=1796198876).mqtt_per_s.values()) == 2


def test_attempts_per_minute_are_counted_in_a_sliding_window_not_per_calendar_minute():
    # 16 attempts within 59 s, straddling a minute boundary: 8 in each calendar minute, so a
    # per-minute count would say 8; a flapping detector with a sliding window sees 16.
    attempts = [50.0 + i * 59 / 15 for i in range(16)]
    assert max_in_window(attempts, 60) == 16
    assert max_in_window([0.0, 60.0, 120.0], 60) == 1
    assert max_in_window([], 60) == 0


def test_time_to_99_percent_waits_for_the_slowest_of_the_first_99_percent():
    arrivals: list[float | None] = [100.0 + i for i in range(99)] + [None]
    assert time_to_fraction(arrivals, 100.0, 0.99) == 98.0
    assert time_to_fraction(arrivals, 100.0, 1.0) is None      # one never came back
    assert time_to_fraction([None, None], 0.0, 0.5) is None


def test_the_password_hash_is_mosquittos_pbkdf2_format():
    # A hash mosquitto_passwd 2.0.11 wrote for the password "secret".
    salt = base64.b64decode("0uVg8XeUhBu3j5X1")
    assert mosquitto_hash("secret", salt) == (
        "$7$101$0uVg8XeUhBu3j5X1$xk1GV4ismSDF5bzZRJIMUGxo6gr9OzTbLQCsFwhwyLPYhulbF7d8x3cWAK/"
        "hubBTpbadarttueLKw3EzeIKfyA==")
