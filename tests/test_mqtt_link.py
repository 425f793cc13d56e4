"""MqttLink's use of paho, where a paho upgrade could silently change it (pure unit tests)."""

from __future__ import annotations

import pytest

from agent.config import BrokerAddress, parse_config
from agent.publish.mqtt_link import MqttLink, _PahoClient


@pytest.mark.parametrize("keepalive, timeout", [(60, 15.0), (40, 10.0), (2, 1.0)])
def test_pahos_network_thread_wakes_at_a_quarter_keepalive_not_every_second(
        monkeypatch, keepalive, timeout):
    # An idle agent's paho thread woke 60 times a minute, a tenth of its CPU budget. This fails
    # if paho stops starting its thread through _thread_main (the method MqttLink overrides).
    seen = {}

    def loop_forever(self, timeout=1.0, retry_first_connection=False):
        seen.update(timeout=timeout, retry=retry_first_connection)
    monkeypatch.setattr(_PahoClient, "loop_forever", loop_forever)
    cfg = parse_config({"site_id": "test-site", "devices": [],
                        "mqtt": {"host": "127.0.0.1", "tls": False, "keepalive_s": keepalive}})
    link = MqttLink(cfg.mqtt, BrokerAddress("127.0.0.1", 1883))
    link.client.loop_start()
    link.client.loop_stop()
    assert seen == {"timeout": timeout, "retry": True}
