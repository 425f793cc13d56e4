"""Starting a created rollout from the web page: operators only, with CSRF, recorded under the web
user, published by the web process itself, on the real stack (PostgreSQL, Mosquitto with its
passwords and ACL, the ingest, `clinic-central web` as a process)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.central import mqtt_client, pg_query
from helpers import wait_until
from remote_support import Operator
from web_support import Web, csrf_of, start_web, stop_web

from agent.remote.envelope import seal
from agent.remote.fleet import overlay_payload
from central import pg, rollout

SITES = ("SITE001", "SITE002", "SITE003")    # the central fixture's sites
CANARY = "SITE002"
OVERLAY = "[buffer]\nbacklog_kbps = 200\n"


@pytest.fixture
def web_ops(central: Any, tmp_path: Path) -> Iterator[Web]:
    """The page served with the broker's operator account, so operators may start rollouts."""
    central.start_ingest()
    pw = tmp_path / "operator.pw"
    pw.write_text(central.broker.passwords["operator"] + "\n")
    w = start_web(central, tmp_path, "--broker-username", "operator",
                  "--broker-password-file", str(pw))
    yield w
    stop_web(w)


def retained_pushes(stack: Any) -> dict[str, bytes]:
    """Each site's retained, non-empty config/set message on the broker."""
    got: dict[str, bytes] = {}
    done = threading.Event()
    marker = "clinics/_test/marker"
    c = mqtt_client(stack, "operator")

    def on_message(_c: Any, _u: Any, m: Any) -> None:
        if m.topic == marker:
            done.set()
        elif m.payload and m.retain:
            got[m.topic.split("/")[1]] = bytes(m.payload)
    c.on_message = on_message
    for s in SITES:
        c.subscribe(f"clinics/{s}/config/set", qos=1)
    c.subscribe(marker, qos=1)
    c.publish(marker, b"x", qos=1)     # after every retained message: the answer is complete
    wait_until(done.is_set, timeout=10, what="the marker after the retained messages")
    c.loop_stop()
    c.disconnect()
    return got


def actions(stack: Any, rid: int) -> list[tuple[str, str]]:
    return [(a, b) for a, b in pg_query(stack, "SELECT actor, action FROM operator_actions "
                                               "WHERE rollout_id = %s ORDER BY id", rid)]


def test_only_an_operator_starts_a_rollout_from_the_page_and_it_publishes_the_canary(
        web_ops: Web, central: Any, tmp_path: Path) -> None:
    op = Operator(tmp_path)
    # Signed on the operator's machine; the centre records it (as `rollout create` does).
    signed = seal(overlay_payload(OVERLAY, sites=SITES, version=7, valid_for_s=3600), op.key)
    with pg.connect(central.pg_dsn) as conn:
        rid = rollout.create(conn, signed, SITES, actor="alice", canary=[CANARY],
                             plan=rollout.Plan(stage_timeout_s=120))
    page_url, start_url = f"/rollouts/{rid}", f"/rollouts/{rid}/start"

    # A read-only user sees the rollout, no Start button, and a POST (with a valid token) is 403.
    luis = web_ops.login("luis")
    page = luis.get(page_url)
    assert page.status_code == 200 and 'id="start"' not in page.text
    assert "nunca tiene la llave privada" in luis.get("/rollouts").text
    r = luis.post(start_url, data={"csrf": csrf_of(page.text)})
    assert r.status_code == 403 and "no puede hacer esto" in r.text

    # An operator's POST without the session's CSRF token is refused.
    ana = web_ops.login("ana")
    page = ana.get(page_url)
    assert 'id="start"' in page.text and "Iniciar" in page.text
    for data in ({}, {"csrf": "not-the-token"}):
        r = ana.post(start_url, data=data)
        assert r.status_code == 403 and "caducó" in r.text
    # Nothing of the refused requests happened: not recorded, not published.
    assert actions(central, rid) == [("alice", "rollout_create")]
    assert pg_query(central, "SELECT state FROM rollouts WHERE id = %s", rid) == [("created",)]
    assert retained_pushes(central) == {}

    # The operator starts it: the web process publishes the canary stage, under her name.
    r = ana.post(start_url, data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == page_url
    wait_until(lambda: CANARY in retained_pushes(central), timeout=20,
               what="the canary's retained push")
    assert retained_pushes(central) == {CANARY: signed}, "the canary only, the signed bytes"
    assert actions(central, rid) == [("alice", "rollout_create"), ("ana", "rollout_stage")]
    page = ana.get(page_url)
    assert 'data-state="canary"' in page.text and 'data-site="SITE002" data-state="sent"' \
        in page.text and 'http-equiv="refresh"' in page.text and 'id="start"' not in page.text
    # Once started it is not started again (the CLI resumes an interrupted one).
    r = ana.post(start_url, data={"csrf": csrf_of(page.text)})
    assert r.status_code == 409
    assert actions(central, rid)[-1] == ("ana", "rollout_stage") and len(actions(central, rid)) == 2
