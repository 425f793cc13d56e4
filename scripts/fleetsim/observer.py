"""The centre's view: one subscriber on the broker that notes, per clinic, when its status, live
readings and backlog arrive, and how late each live poll arrives (arrival time minus the poll's
own timestamp: both clocks are this machine's).

It subscribes with a persistent session (clean session off) and reconnects within half a
second, so that a broker restart does not make it miss what clinics publish right after it.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.publish.wire import decode_payload


@dataclass
class SiteView:
    live: list[float] = field(default_factory=list)        # arrival times of live messages
    live_polled: list[float] = field(default_factory=list)  # newest poll time in each of them
    online: list[float] = field(default_factory=list)      # arrivals of non-retained "online"
    data: list[tuple[float, float]] = field(default_factory=list)  # (arrival, newest poll)
    backlog_max_seq: int = 0
    backlog_readings: int = 0
    backlog_last: float = 0.0


class Observer:
    def __init__(self, port: int, *, user: str, password: str, host: str = "127.0.0.1",
                 prefix: str = "clinics") -> None:
        self.prefix = prefix
        self.sites: dict[str, SiteView] = {}
        self.latency: list[tuple[float, float]] = []    # (poll time, arrival - poll time)
        self.messages = 0
        self.bad = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-sim-observer",
                                  protocol=mqtt.MQTTv311, clean_session=False)
        if user:
            self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]  # floats work
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.port = port
        self.host = host

    def start(self) -> Observer:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(15):
            raise SystemExit("the observer could not connect to the broker")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: object,
                    props: object = None) -> None:
        client.subscribe([(f"{self.prefix}/+/readings", 1), (f"{self.prefix}/+/backlog", 1),
                          (f"{self.prefix}/+/status", 1)])
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        parts = msg.topic.split("/")
        if len(parts) != 3:
            return
        site, leaf = parts[1], parts[2]
        try:
            if leaf == "status":
                if msg.retain or b'"online"' not in msg.payload:
                    return
                with self._lock:
                    self._site(site).online.append(now)
                return
            doc = decode_payload(bytes(msg.payload))
            groups = doc["g"]
        except Exception:   # noqa: BLE001 - counted; a load tool must not stop on one payload
            self.bad += 1
            return
        with self._lock:
            self.messages += 1
            view = self._site(site)
            view.data.append((now, max(g["t"] for g in groups)))
            if leaf == "readings":
                view.live.append(now)
                view.live_polled.append(max(g["t"] for g in groups))
                for g in groups:
                    self.latency.append((g["t"], now - g["t"]))
            elif leaf == "backlog":
                last = groups[-1]
                view.backlog_max_seq = max(view.backlog_max_seq, last["s"] + len(last["m"]) - 1)
                view.backlog_readings += sum(len(g["m"]) for g in groups)
                view.backlog_last = now

    def _site(self, site: str) -> SiteView:
        view = self.sites.get(site)
        if view is None:
            view = self.sites[site] = SiteView()
        return view

    # -- questions the driver asks ---------------------------------------------------------------

    def first_live_after(self, site: str, t: float) -> float | None:
        """Arrival of the first live message after ``t`` carrying a poll made after ``t`` (a
        message queued for the observer before a broker restart does not count)."""
        with self._lock:
            view = self.sites.get(site)
            if view is None:
                return None
            for i in range(bisect.bisect_right(view.live, t), len(view.live)):
                if view.live_polled[i] >= t:
                    return view.live[i]
            return None

    def first_data_after(self, site: str, t: float, *, polled_since: float) -> float | None:
        """Arrival of the first readings (live or backlog) after ``t`` carrying a poll made
        since ``polled_since``: the first reading of a clinic after its broker came back."""
        with self._lock:
            view = self.sites.get(site)
            if view is None:
                return None
            for arrival, polled in view.data[bisect.bisect_right(view.data, (t, float("inf"))):]:
                if polled >= polled_since:
                    return arrival
            return None

    def first_online_after(self, site: str, t: float) -> float | None:
        with self._lock:
            view = self.sites.get(site)
            if view is None:
                return None
            i = bisect.bisect_right(view.online, t)
            return view.online[i] if i < len(view.online) else None

    def count_live_after(self, sites: list[str], t: float) -> int:
        return sum(1 for s in sites if self.first_live_after(s, t) is not None)

    def backlog(self, site: str) -> tuple[int, int, float]:
        with self._lock:
            view = self.sites.get(site)
            return (view.backlog_max_seq, view.backlog_readings, view.backlog_last) if view \
                else (0, 0, 0.0)

    def latencies(self, polled_from: float, polled_to: float = float("inf")) -> list[float]:
        with self._lock:
            return [lat for t, lat in self.latency if polled_from <= t < polled_to]
