"""MqttLink drives paho from the event loop through paho's public API, against a real Mosquitto."""

from __future__ import annotations

import asyncio
import configparser
import importlib.metadata
import threading
from pathlib import Path

import pytest

from agent.config import BrokerAddress, parse_config
from agent.errors import PublishError
from agent.publish.mqtt_link import PAHO_VERSION, LinkLost, MqttLink
from helpers import eventually, wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_the_installed_paho_is_the_release_the_adapter_was_written_for():
    # A paho upgrade must be a deliberate change to agent/publish/mqtt_link.py: its callbacks and
    # external-loop functions have changed shape between releases before.
    assert importlib.metadata.version("paho-mqtt") == PAHO_VERSION
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    requires = setup["options"]["install_requires"].split()
    assert f"paho-mqtt=={PAHO_VERSION}" in requires


def link_for(port: int, *, keepalive: int = 5) -> MqttLink:
    cfg = parse_config({"site_id": "test-site", "devices": [],
                        "mqtt": {"host": "127.0.0.1", "port": port, "tls": False,
                                 "keepalive_s": keepalive, "connect_timeout_s": 2}})
    return MqttLink(cfg.mqtt, BrokerAddress("127.0.0.1", port))


def paho_threads(link: MqttLink) -> list[str]:
    """paho's network thread for this link, if it had one (paho names it after the client id)."""
    return [t.name for t in threading.enumerate()
            if t.name == f"paho-mqtt-client-{link.cfg.client_id}"]


def test_publish_subscribe_and_close_without_a_network_thread(broker, recorder):
    # Retained, so it reaches the link whenever its subscription lands.
    recorder.client.publish("test/in", b"hello", qos=1, retain=True).wait_for_publish(5)

    async def scenario() -> tuple[list[tuple[str, bytes]], list[str], bool]:
        link = link_for(broker.port)
        await link.connect()
        got: list[tuple[str, bytes]] = []
        link.subscribe("test/in", lambda topic, payload: got.append((topic, payload)))
        # 500 QoS 1 messages in flight at once: paho's writes are paced by the socket.
        await asyncio.wait_for(asyncio.gather(*(link.publish("test/out", b"x" * 2000 + bytes([i % 256]))
                                                for i in range(500))), 20)
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.05)
        threads = paho_threads(link)
        await link.close(final=("test/final", b"bye"))
        return got, threads, link.lost.is_set()
    got, threads, lost = asyncio.run(scenario())

    assert got == [("test/in", b"hello")]
    assert threads == []
    assert lost
    # Every publish was acknowledged; the recorder may still be receiving them (CI load).
    wait_until(lambda: [m.payload for m in recorder.snapshot() if m.topic == "test/final"],
               timeout=30, what="the final message at the recorder")
    out = [m for m in recorder.snapshot() if m.topic == "test/out"]
    assert len(out) == 500
    assert [m.payload for m in recorder.snapshot() if m.topic == "test/final"] == [b"bye"]
    client_id = parse_config({"site_id": "test-site", "devices": [],
                              "mqtt": {"host": "127.0.0.1", "tls": False}}).mqtt.client_id
    assert f"Received DISCONNECT from {client_id}" in broker.log()    # a clean close: no Will


def test_an_idle_link_keeps_itself_alive_with_pings(broker):
    # keepalive 2 s: the broker drops a client silent for 3 s, unless paho pings in time.
    async def scenario() -> tuple[bool, float]:
        link = link_for(broker.port, keepalive=2)
        await link.connect()
        await asyncio.sleep(7)
        alive = not link.lost.is_set()
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(link.publish("test/alive", b"1"), 2)
        took = asyncio.get_running_loop().time() - started
        await link.close()
        return alive, took
    alive, took = asyncio.run(scenario())

    assert alive
    assert took < 1
    assert "PINGREQ" in broker.log()


def test_a_broker_that_goes_away_fails_what_is_in_flight(broker):
    async def scenario() -> tuple[str, type]:
        link = link_for(broker.port)
        await link.connect()
        await asyncio.wait_for(link.publish("test/a", b"1"), 2)
        broker.stop()
        await asyncio.wait_for(link.lost.wait(), 5)
        fut = link.publish("test/b", b"2")
        with pytest.raises(LinkLost):
            await fut
        await link.close()
        return link.lost_reason, type(fut.exception())
    reason, exc_type = asyncio.run(scenario())

    assert reason.startswith("connection lost")
    assert exc_type is LinkLost


def test_connecting_to_nothing_is_a_clear_error():
    from helpers import free_port
    port = free_port()

    async def scenario() -> str:
        link = link_for(port)
        with pytest.raises(PublishError) as caught:
            await link.connect()
        assert paho_threads(link) == []
        return str(caught.value)
    message = asyncio.run(scenario())

    assert message == f"nothing listening at broker 127.0.0.1:{port} (broker down or wrong port)"


def test_the_broker_does_not_deliver_a_message_larger_than_the_link_accepts(broker, recorder):
    """MQTT 5 Maximum Packet Size: an oversized message (a flood, a misconfigured operator
    tool) is dropped by the broker, never reaches the agent, and the connection stays up."""
    cfg = parse_config({"site_id": "test-site", "devices": [],
                        "mqtt": {"host": "127.0.0.1", "port": broker.port, "tls": False,
                                 "keepalive_s": 5, "connect_timeout_s": 2}})

    async def scenario() -> tuple[list[int], bool]:
        link = MqttLink(cfg.mqtt, BrokerAddress("127.0.0.1", broker.port), max_incoming=4096)
        await link.connect()
        got: list[int] = []
        # Retained, so it arrives as soon as the subscription is in place.
        recorder.client.publish("test/in/probe", b"p", qos=1, retain=True).wait_for_publish(5)
        link.subscribe("test/in/#", lambda topic, payload: got.append(len(payload)))
        await eventually(lambda: got, what="the subscription")
        for size in (100, 50_000, 200):   # one publisher, QoS 1: delivered in this order
            recorder.client.publish("test/in/x", b"x" * size, qos=1).wait_for_publish(5)
        await eventually(lambda: 200 in got, what="the last message")
        lost = link.lost.is_set()
        await link.close()
        return got, lost
    got, lost = asyncio.run(scenario())
    assert got == [1, 100, 200]
    assert not lost
