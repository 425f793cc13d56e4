"""The central broker's ACL template: each clinic's credentials reach its own topics only."""

from __future__ import annotations

from fixtures.secure_broker import OPERATOR
from helpers import wait_until

NOT_AUTHORIZED = 0x87


def test_a_clinic_cannot_publish_as_another_clinic(secure_broker):
    watcher = secure_broker.client(OPERATOR)
    watcher.subscribe("clinics/#")
    site1 = secure_broker.client("SITE001")
    try:
        assert site1.publish("clinics/SITE002/readings", b'{"forged":1}') == NOT_AUTHORIZED
        # Published after the refused one on the same connection, so it arrives after it would have.
        assert site1.publish("clinics/SITE001/readings", b'{"own":1}') < 0x80
        wait_until(lambda: watcher.on("clinics/SITE001/readings"), what="the clinic's own reading")
        assert watcher.on("clinics/SITE002/readings") == []
    finally:
        site1.close()
        watcher.close()


def test_a_clinic_cannot_push_configs_or_commands_not_even_to_itself(secure_broker):
    site1 = secure_broker.client("SITE001")
    try:
        for topic in ("clinics/SITE001/config/set", "clinics/SITE001/cmd",
                      "clinics/SITE002/config/set", "clinics/SITE002/cmd"):
            assert site1.publish(topic, b"x", retain=True) == NOT_AUTHORIZED, topic
    finally:
        site1.close()


def test_a_clinic_cannot_read_another_clinics_topics(secure_broker):
    site1 = secure_broker.client("SITE001")
    op = secure_broker.client(OPERATOR)
    try:
        # Mosquitto grants any subscription and applies the ACL to each message it would deliver.
        site1.subscribe("clinics/#")
        assert op.publish("clinics/SITE002/config/set", b"for site 2") < 0x80
        assert op.publish("clinics/SITE001/config/set", b"for site 1") < 0x80
        wait_until(lambda: site1.on("clinics/SITE001/config/set"), what="site 1's own push")
        assert [m.topic for m in site1.messages] == ["clinics/SITE001/config/set"]
    finally:
        site1.close()
        op.close()


def test_the_operator_can_push_to_every_clinic(secure_broker):
    op = secure_broker.client(OPERATOR)
    try:
        assert op.publish("clinics/SITE001/config/set", b"x") < 0x80
        assert op.publish("clinics/SITE002/cmd", b"x") < 0x80
    finally:
        op.close()


def test_every_clinic_reads_the_fleet_budget_but_no_clinic_can_set_a_budget(secure_broker):
    site1 = secure_broker.client("SITE001")
    op = secure_broker.client(OPERATOR)
    try:
        site1.subscribe("clinics/_fleet/budget")
        site1.subscribe("clinics/SITE001/budget")
        assert op.publish("clinics/_fleet/budget", b'{"v":1,"kbps":64}', retain=True) < 0x80
        assert op.publish("clinics/SITE001/budget", b'{"v":1,"kbps":32}', retain=True) < 0x80
        wait_until(lambda: site1.on("clinics/_fleet/budget") and site1.on("clinics/SITE001/budget"),
                   what="both budgets at the clinic")
        # Last: Mosquitto drops the connection after a refused retained message.
        for topic in ("clinics/_fleet/budget", "clinics/SITE001/budget", "clinics/SITE002/budget"):
            assert site1.publish(topic, b'{"v":1,"kbps":1000000}', retain=True) == NOT_AUTHORIZED
    finally:
        site1.close()
        op.close()
