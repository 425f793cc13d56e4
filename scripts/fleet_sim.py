#!/usr/bin/env python3
"""Fleet simulator: thousands of clinics, each with the agent's real outbox, forwarder and MQTT
link, against a real Mosquitto on loopback. Prints one JSON document of figures (docs/fleet-sim.md).

    .venv/bin/python scripts/fleet_sim.py restart --clinics 3180 --processes 4 [--tls]
    .venv/bin/python scripts/fleet_sim.py backlog --clinics 500 --backlog-h 1
    .venv/bin/python scripts/fleet_sim.py outage  --clinics 1000 --cut-fraction 0.2 --cut-s 60

Scenarios (each starts the fleet, waits until every clinic publishes live readings, then):

* ``restart``: the broker is stopped (SIGTERM), stays down ``--down-s``, and starts again on the
  same ports; figures: time until 99 % (and 100 %) of clinics are connected and publishing live
  again, connection attempts per second seen by the broker, attempts per clinic in any 60 s,
  broker CPU and memory.
* ``backlog``: every clinic's buffer holds ``--backlog-h`` hours of readings before it starts, and
  all clinics start at once (their link came back); figures: live latency while the backlogs
  drain, time to drain.
* ``outage``: a ``--cut-fraction`` of the clinics sit behind a regional feeder whose link drops
  for ``--cut-s`` (refused, or ``--silent``: packets vanish); figures as for ``restart``, for them.

    Driver (this process) ---spec, commands---> worker processes (fleetsim.worker)
       |  Mosquitto (fleetsim.broker)                 |  ~800 clinics each (fleetsim.clinic):
       |  observer: a subscriber (fleetsim.observer)  |  SimSource -> DevicePoller -> StoreWriter
       '  broker CPU/RSS sampler (psutil)             '  -> ReadingStore (SQLite) -> Forwarder
                                                           -> MqttLink
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fleetsim.broker import ExternalBroker, SimBroker  # noqa: E402
from fleetsim.devices import readings_per_minute  # noqa: E402
from fleetsim.metrics import (  # noqa: E402
    BrokerSampler,
    max_in_window,
    percentile,
    time_to_fraction,
)
from fleetsim.observer import Observer  # noqa: E402

CLINICS_PER_PROCESS = 800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (262_144, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
            return
        except (ValueError, OSError):
            continue


def log(msg: str) -> None:
    print(f"[fleet-sim {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Worker:
    """One worker process and the JSON lines it answers with."""

    def __init__(self, index: int, spec: dict[str, Any], workdir: Path, python: str) -> None:
        self.index = index
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'scripts'}")
        self.stderr = open(workdir / f"worker{index}.log", "wb")  # noqa: SIM115 - the child's
        self.proc = subprocess.Popen([python, "-m", "fleetsim.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env,
                                     cwd=str(ROOT))
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.send({"spec": spec})

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                continue
        self.events.put({"event": "exited"})

    def send(self, doc: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(doc) + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                doc = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise SystemExit(f"worker {self.index}: no {event!r} within {timeout:g}s") from None
            if doc.get("event") == event:
                return doc
            if doc.get("event") == "exited":
                raise SystemExit(f"worker {self.index} exited (see worker{self.index}.log)")

    def close(self) -> None:
        try:
            self.send({"cmd": "stop", "fast": True})
            self.expect("stopped", 60)
        except (SystemExit, OSError):
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stderr.close()


def wait_for(cond: Any, timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return bool(cond())


class Fleet:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        base = args.workdir or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.workdir = Path(tempfile.mkdtemp(prefix="fleet-sim-", dir=base))
        self.sites = [f"{args.site_prefix}{i:05d}" for i in range(args.clinics)]
        self.broker: SimBroker | ExternalBroker
        if args.broker:
            host, _, port = args.broker.rpartition(":")
            user, _, pw_file = args.observer.partition(":")
            self.password = Path(args.password_file).read_text().strip() \
                if args.password_file else ""
            self.broker = ExternalBroker(
                host, int(port), tls=args.tls, ca_file=args.ca_file, password=self.password,
                observer_port=args.observer_port or int(port), observer_user=user,
                observer_password=Path(pw_file).read_text().strip() if pw_file else "",
                stop_cmd=args.stop_cmd, start_cmd=args.start_cmd, log_path=args.broker_log)
        else:
            self.password = secrets.token_hex(12)
            (self.workdir / "broker").mkdir()
            self.broker = SimBroker(self.workdir / "broker", self.sites, tls=args.tls,
                                    port=free_port(), tls_port=free_port(),
                                    password=self.password,
                                    extra_ports=tuple(free_port() for _ in range(
                                        (args.listeners or -(-args.clinics // 20_000)) - 1)))
        self.observer: Observer | None = None
        self.sampler: BrokerSampler | None = None
        self.workers: list[Worker] = []
        self.cut_sites: list[str] = []
        self.prefill_last: dict[str, int] = {}
        self.central: Any = None

    # -- bring-up ------------------------------------------------------------------------------

    def start(self) -> None:
        a = self.args
        if not a.broker:
            self.broker.start()
        self.sampler = BrokerSampler(lambda: self.broker.pid).start()
        self.observer = Observer(self.broker.port, host=self.broker.host,
                                 user=self.broker.operator_user,
                                 password=self.broker.operator_password).start()
        if a.central:
            self._start_central()
        for item in a.retain:
            self._publish_retained(item)
        n_proc = a.processes or max(1, -(-len(self.sites) // CLINICS_PER_PROCESS))
        if a.scenario == "outage":
            k = round(len(self.sites) * a.cut_fraction)
            self.cut_sites = self.sites[::max(1, len(self.sites) // max(k, 1))][:k]
        ca = self.broker.ca_file
        store_dir = self.workdir / "clinics"
        for i in range(n_proc):
            mine = self.sites[i::n_proc]
            spec = {"sites": mine, "seeds": [int(s[-5:]) + 1 for s in mine],
                    "store_dir": str(store_dir), "host": self.broker.host,
                    "port": self.broker.clinic_ports[i % len(self.broker.clinic_ports)],
                    "tls": a.tls, "ca_file": ca,
                    "password": self.password, "backlog_kbps": a.backlog_kbps,
                    "interval_scale": a.interval_scale,
                    "prefill_s": a.backlog_h * 3600 if a.scenario == "backlog" else 0.0,
                    "store_threads": a.store_threads, "connect_threads": a.connect_threads,
                    "cut_sites": [s for s in self.cut_sites if s in set(mine)],
                    "release": "central" if a.central and a.release_central else "broker",
                    "mqtt": {"keepalive_s": a.keepalive_s}, "log_level": a.log_level,
                    "profile": f"{a.profile}.{i}" if a.profile else ""}
            self.workers.append(Worker(i, spec, self.workdir, a.python))
        t0 = time.monotonic()
        prefilled = 0
        for w in self.workers:
            ready = w.expect("ready", 600 + a.backlog_h * 600)
            if ready["errors"]:
                raise SystemExit(f"worker {w.index} could not open clinics: {ready['errors']}")
            prefilled += ready["prefilled"]
        log(f"{len(self.sites)} clinics ready in {len(self.workers)} processes "
            f"({time.monotonic() - t0:.1f} s; {prefilled:,} readings prefilled)")
        if a.scenario == "backlog":
            for doc in self.report():
                self.prefill_last[doc["site"]] = doc["prefill_last_seq"]
        self.prefilled = prefilled

    def _start_central(self) -> None:
        """VictoriaMetrics, PostgreSQL and ``clinic-central ingest`` on this broker: the ingest's
        load test (scripts/central_stack.py provides the pieces)."""
        from central_stack import INGEST_USER, Postgres, Proc, ingest_config, victoria_metrics
        vm = victoria_metrics(self.workdir)
        pg = Postgres()
        pg.start()
        vm.start()
        cfg = self.workdir / "ingest.toml"
        cfg.write_text(ingest_config(broker_port=self.broker.port,
                                     password=self.broker.ingest_password,
                                     vm_url=f"http://127.0.0.1:{vm.port}", pg_dsn=pg.dsn))
        cfg.chmod(0o600)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        ingest = Proc([sys.executable, "-m", "central", "ingest", "-c", str(cfg)],
                      self.workdir / "ingest.log", 0, env=env, wait=False).start()
        self.central = (vm, pg, ingest, INGEST_USER)
        log(f"central ingest started (VictoriaMetrics :{vm.port}, PostgreSQL {pg.port})")

    def _publish_retained(self, item: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        topic, _, payload = item.partition("=")
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-sim-retain",
                        protocol=mqtt.MQTTv5)
        c.username_pw_set(self.broker.operator_user, self.broker.operator_password)
        c.connect(self.broker.host, self.broker.port)
        c.loop_start()
        c.publish(topic, payload.encode(), qos=1, retain=True).wait_for_publish(10)
        c.disconnect()
        c.loop_stop()

    def launch(self, spread_s: float) -> float:
        t = time.time()
        for w in self.workers:
            w.send({"cmd": "start", "spread_s": spread_s})
        for w in self.workers:
            w.expect("started", 30)
        return t

    def all_live(self, sites: list[str], since: float) -> bool:
        """Every clinic of ``sites`` back since ``since``: a live reading polled since then, or
        with ``--until connected`` its ``online`` status (for fleets polled so rarely that a
        live reading would take minutes)."""
        obs = self.observer
        assert obs is not None
        first = obs.first_online_after if self.args.until == "connected" else obs.first_live_after
        return all(first(s, since) is not None for s in sites)

    def report(self) -> list[dict[str, Any]]:
        docs = []
        self.worker_stats: list[dict[str, Any]] = []
        for w in self.workers:
            w.send({"cmd": "report"})
        for w in self.workers:
            r = w.expect("report", 120)
            docs.extend(r["clinics"])
            self.worker_stats.append({k: r[k] for k in ("cpu_s", "maxrss_mib", "threads", "fds")}
                                     | {"lag": r["lag"]})
        return docs

    def close(self) -> None:
        for w in self.workers:
            w.close()
        if self.observer is not None:
            self.observer.stop()
        if self.sampler is not None:
            self.sampler.stop()
        if not self.args.broker:
            self.broker.stop()
        if self.central is not None:
            vm, pg, ingest, _ = self.central
            ingest.stop()
            vm.stop()
            pg.remove()
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- figures -------------------------------------------------------------------------------

    def reconnect_figures(self, sites: list[str], since: float) -> dict[str, Any]:
        assert self.observer is not None
        live = [self.observer.first_live_after(s, since) for s in sites]
        online = [self.observer.first_online_after(s, since) for s in sites]
        back = online if self.args.until == "connected" else live
        missing = [s for s, t in zip(sites, back, strict=True) if t is None]
        return {"clinics": len(sites),
                "t99_live_s": time_to_fraction(live, since, 0.99),
                "t100_live_s": time_to_fraction(live, since, 1.0),
                "t50_live_s": time_to_fraction(live, since, 0.5),
                "t99_connected_s": time_to_fraction(online, since, 0.99),
                "t100_connected_s": time_to_fraction(online, since, 1.0),
                "resumed": len(sites) - len(missing), "missing": missing[:20]}

    def attempt_figures(self, docs: list[dict[str, Any]], since: float) -> dict[str, Any]:
        per_clinic = {d["site"]: d["attempts"] for d in docs}
        after = {s: [t for t in ts if t >= since - 1] for s, ts in per_clinic.items()}
        worst_site, worst = max(((s, max_in_window(ts)) for s, ts in per_clinic.items()),
                                key=lambda x: x[1], default=("", 0))
        blog = self.broker.read_log(since=int(since))
        blog_all = self.broker.read_log()
        broker_worst = max((max_in_window([float(t) for t in ts])
                            for ts in blog_all.per_client.values()), default=0)
        counts = sorted(len(ts) for ts in after.values())
        return {
            "max_per_clinic_60s": worst, "max_per_clinic_60s_site": worst_site,
            "max_per_clinic_60s_at_broker": broker_worst,
            "per_clinic_since_p50": percentile(counts, 50),
            "per_clinic_since_max": max(counts or [0]),
            "total_since": sum(counts),
            "broker_peak_mqtt_connects_per_s": max(blog.mqtt_per_s.values(), default=0),
            "broker_peak_tcp_per_s": max(blog.tcp_per_s.values(), default=0),
            "broker_mqtt_connects_since": sum(blog.mqtt_per_s.values()),
            "broker_tcp_since": sum(blog.tcp_per_s.values()),
        }

    def load_figures(self, start: float, end: float) -> dict[str, Any]:
        lags = [lag for w in self.worker_stats for t, lag in w["lag"] if start <= t <= end]
        return {"loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
                "sim_cpu_s": round(sum(w["cpu_s"] for w in self.worker_stats), 1),
                "sim_rss_mib": round(sum(w["maxrss_mib"] for w in self.worker_stats), 1),
                "sim_threads": sum(w["threads"] for w in self.worker_stats),
                "sim_fds": sum(w["fds"] for w in self.worker_stats),
                "loop_lag_over_50ms": len(lags),
                "loop_lag_max_s": round(max(lags), 3) if lags else 0.0}


def settle(fleet: Fleet, t_start: float) -> float:
    a = fleet.args
    if not wait_for(lambda: fleet.all_live(fleet.sites, t_start), a.settle_timeout, every=1.0):
        missing = [s for s in fleet.sites if not fleet.all_live([s], t_start)]
        raise SystemExit(f"{len(missing)} clinics never got {a.until}: {missing[:10]}")
    t_live = time.time()
    log(f"all {len(fleet.sites)} clinics {a.until} after {t_live - t_start:.1f} s")
    # Connections that lasted a while: a drop is then not a "quick drop" for the forwarder.
    if a.connected_for_s > 0:
        time.sleep(max(0.0, t_live + a.connected_for_s - time.time()))
    return t_live


def scenario_restart(fleet: Fleet) -> dict[str, Any]:
    a = fleet.args
    t_start = fleet.launch(a.start_spread_s)
    t_live = settle(fleet, t_start)
    trials = []
    t_first_down = 0.0
    t_prev_live = t_up = t_live
    for n in range(a.restarts):
        if n:
            # Each restart meets connections that lasted --connected-for-s, as the first did.
            time.sleep(max(0.0, t_prev_live + a.connected_for_s - time.time()))
        t_down = time.time()
        t_first_down = t_first_down or t_down
        fleet.broker.stop()
        log(f"broker stopped; down for {a.down_s:g} s")
        time.sleep(max(0.0, t_down + a.down_s - time.time()))
        fleet.broker.start()
        t_up = time.time()
        log("broker back")
        done = wait_for(lambda t=t_up: fleet.all_live(fleet.sites, t), a.timeout)
        t_prev_live = time.time()
        assert fleet.observer is not None
        first = [fleet.observer.first_data_after(s, t_up, polled_since=t_down)
                 for s in fleet.sites]
        trials.append({"down_s": round(t_up - t_down, 2), "all_resumed": done,
                       "t_first_reading_p50_s": time_to_fraction(first, t_up, 0.5),
                       "t_first_reading_p99_s": time_to_fraction(first, t_up, 0.99),
                       **fleet.reconnect_figures(fleet.sites, t_up)})
    t_end = time.time()
    docs = fleet.report()
    assert fleet.sampler is not None
    rec = trials[-1]
    end_99 = t_up + (rec["t99_live_s"] or (t_end - t_up))
    out: dict[str, Any] = {
        "startup": {"all_live_s": round(t_live - t_start, 1),
                    "broker": fleet.sampler.summary(t_start, t_first_down)},
        "restart": rec,
        "attempts": fleet.attempt_figures(docs, t_up),
        "broker": {"reconnect": fleet.sampler.summary(t_up, end_99),
                   "until_all": fleet.sampler.summary(t_up, t_end),
                   "steady_before": fleet.sampler.summary(t_live, t_first_down)},
        "latency_after_restart": lat_figures(fleet, t_up, t_end),
        "load": fleet.load_figures(t_up, t_end), "_docs": docs}
    if a.restarts > 1:
        out["trials"] = trials
        out["median_of_trials"] = {
            k: round(statistics.median(v for t in trials if (v := t[k]) is not None), 2)
            for k in ("t_first_reading_p50_s", "t99_connected_s", "t99_live_s")
            if any(t[k] is not None for t in trials)}
    return out


def scenario_backlog(fleet: Fleet) -> dict[str, Any]:
    a = fleet.args
    assert fleet.observer is not None
    t_start = fleet.launch(a.start_spread_s)

    def drained(site: str) -> bool:
        assert fleet.observer is not None
        return fleet.observer.backlog(site)[0] >= fleet.prefill_last.get(site, 0)

    done = wait_for(lambda: all(drained(s) for s in fleet.sites)
                    and fleet.all_live(fleet.sites, t_start), a.timeout, every=0.5)
    t_end = time.time()
    docs = fleet.report()
    backlogs = [fleet.observer.backlog(s) for s in fleet.sites]
    drain_at = [b[2] if drained(s) else None for s, b in zip(fleet.sites, backlogs, strict=True)]
    t_drained = max((t for t in drain_at if t is not None), default=t_end)
    received = sum(b[1] for b in backlogs)
    assert fleet.sampler is not None
    return {"backlog": {"hours": a.backlog_h, "readings_prefilled": fleet.prefilled,
                        "readings_per_clinic": fleet.prefilled // max(len(fleet.sites), 1),
                        "backlog_readings_received": received, "all_drained": done,
                        "t50_drained_s": time_to_fraction(drain_at, t_start, 0.5),
                        "t99_drained_s": time_to_fraction(drain_at, t_start, 0.99),
                        "t100_drained_s": time_to_fraction(drain_at, t_start, 1.0),
                        "drain_readings_per_s": round(received / max(t_drained - t_start, 1e-3))},
            "returning": fleet.reconnect_figures(fleet.sites, t_start),
            "latency_while_draining": lat_figures(fleet, t_start, t_drained),
            "attempts": fleet.attempt_figures(docs, t_start),
            "broker": {"drain": fleet.sampler.summary(t_start, t_drained)},
            "load": fleet.load_figures(t_start, t_drained), "_docs": docs}


def scenario_outage(fleet: Fleet) -> dict[str, Any]:
    a = fleet.args
    t_start = fleet.launch(a.start_spread_s)
    settle(fleet, t_start)
    others = [s for s in fleet.sites if s not in set(fleet.cut_sites)]
    t_cut = time.time()
    for w in fleet.workers:
        w.send({"cmd": "cut", "silent": a.silent})
    log(f"link of {len(fleet.cut_sites)} clinics cut for {a.cut_s:g} s")
    time.sleep(max(0.0, t_cut + a.cut_s - time.time()))
    for w in fleet.workers:
        w.send({"cmd": "restore"})
    t_up = time.time()
    done = wait_for(lambda: fleet.all_live(fleet.cut_sites, t_up), a.timeout)
    t_end = time.time()
    docs = fleet.report()
    assert fleet.sampler is not None
    return {"outage": {"cut": len(fleet.cut_sites), "cut_s": a.cut_s, "silent": a.silent,
                       "all_resumed": done, **fleet.reconnect_figures(fleet.cut_sites, t_up)},
            # The other clinics kept publishing meanwhile (a live message between cut and restore).
            "others_live_during_cut": sum(
                1 for s in others if (t := fleet.observer.first_live_after(s, t_cut)) is not None
                and t <= t_up) if fleet.observer else 0,
            "others": len(others),
            "attempts": fleet.attempt_figures(
                [d for d in docs if d["site"] in set(fleet.cut_sites)], t_up),
            "broker": {"after_restore": fleet.sampler.summary(t_up, t_end)},
            "latency_after_restore": lat_figures(fleet, t_up, t_end),
            "load": fleet.load_figures(t_cut, t_end), "_docs": docs}


def lat_figures(fleet: Fleet, start: float, end: float) -> dict[str, Any]:
    assert fleet.observer is not None
    lat = fleet.observer.latencies(start, end)
    return {"polls": len(lat), "p50_s": percentile(lat, 50), "p90_s": percentile(lat, 90),
            "p99_s": percentile(lat, 99), "max_s": round(max(lat), 3) if lat else None,
            "over_5s": sum(1 for x in lat if x > 5.0)}


SCENARIOS = {"restart": scenario_restart, "backlog": scenario_backlog, "outage": scenario_outage}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--clinics", type=int, default=200)
    ap.add_argument("--processes", type=int, default=0,
                    help=f"worker processes (default: one per {CLINICS_PER_PROCESS} clinics)")
    ap.add_argument("--tls", action="store_true", help="clinics connect over TLS (port 8883 "
                    "of the shipped config, on loopback)")
    ap.add_argument("--down-s", type=float, default=5.0, help="restart: broker down this long")
    ap.add_argument("--restarts", type=int, default=1,
                    help="restart: this many restarts, each after --connected-for-s (figures "
                         "per trial and their median; e.g. --clinics 1 --restarts 20)")
    ap.add_argument("--backlog-h", type=float, default=1.0, help="backlog: hours buffered")
    ap.add_argument("--backlog-kbps", type=float, default=64.0,
                    help="each clinic's buffer.backlog_kbps (the example config's 64)")
    ap.add_argument("--cut-fraction", type=float, default=0.2)
    ap.add_argument("--cut-s", type=float, default=60.0)
    ap.add_argument("--silent", action="store_true", help="outage: packets vanish (no RST)")
    ap.add_argument("--interval-scale", type=float, default=1.0,
                    help="multiply every device's poll interval (router 30 s, UPS and meter "
                         "10 s, WAN 30 s, PC 60 s) by this")
    ap.add_argument("--keepalive-s", type=int, default=60)
    ap.add_argument("--start-spread-s", type=float, default=None,
                    help="clinics start at random moments within this (default: restart and "
                         "outage clinics/200 s, backlog 0: all at once)")
    ap.add_argument("--connected-for-s", type=float, default=35.0,
                    help="restart/outage: keep the fleet connected this long after all are "
                         "live (a drop of a younger connection is a 'quick drop')")
    ap.add_argument("--settle-timeout", type=float, default=600.0)
    ap.add_argument("--until", choices=("live", "connected"), default="live",
                    help="restart/outage: a clinic is back when a live reading arrives "
                         "(default), or its online status (broker-side runs of huge fleets "
                         "polled rarely)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="longest wait for the fleet to resume (or drain)")
    ap.add_argument("--store-threads", type=int, default=8,
                    help="store threads per process, shared by its clinics (0: one per clinic, "
                         "as the agent does)")
    ap.add_argument("--connect-threads", type=int, default=64,
                    help="threads per process for TCP connects and TLS handshakes")
    ap.add_argument("--retain", action="append", default=[], metavar="TOPIC=PAYLOAD",
                    help="publish this retained message (as the operator) before the fleet "
                         "starts, e.g. a centre-published drain budget")
    ap.add_argument("--central", action="store_true",
                    help="also run VictoriaMetrics, PostgreSQL and clinic-central ingest on the "
                         "broker (the ingest's load test)")
    ap.add_argument("--release-central", action="store_true",
                    help="with --central: clinics keep readings until the ingest's ack")
    ap.add_argument("--broker", default="", metavar="HOST:PORT",
                    help="use this broker instead of starting Mosquitto: clinics log in as "
                         "their site id (SIM00000, ...) with the password in --password-file")
    ap.add_argument("--password-file", default="", help="with --broker: the clinics' password")
    ap.add_argument("--ca-file", default=None, help="with --broker --tls: the CA to trust")
    ap.add_argument("--observer", default="", metavar="USER:PASSWORD_FILE",
                    help="with --broker: the subscriber's account (read access to clinics/#)")
    ap.add_argument("--observer-port", type=int, default=0,
                    help="with --broker: plain port for the subscriber (default: the same)")
    ap.add_argument("--stop-cmd", default="", help="with --broker: shell command that stops it")
    ap.add_argument("--start-cmd", default="", help="with --broker: shell command that starts it")
    ap.add_argument("--broker-log", default="", help="with --broker: its log file (Mosquitto "
                    "format, log_type information) for the per-second connection counts")
    ap.add_argument("--listeners", type=int, default=0,
                    help="broker ports for the clinics, each process's clinics on one (default: "
                         "one per 20,000 clinics: one loopback address reaches a port from "
                         "~28,000 ephemeral ports only)")
    ap.add_argument("--site-prefix", default="SIM")
    ap.add_argument("--workdir", default=None, help="where the clinics' buffers go (default: "
                    "a new directory in /dev/shm)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--per-clinic", action="store_true", help="include every clinic's record")
    ap.add_argument("--python", default=sys.executable, help="Python of the worker processes")
    ap.add_argument("--log-level", default="error")
    ap.add_argument("--profile", default="", metavar="PATH",
                    help="cProfile each worker into PATH.<n> (pstats files)")
    args = ap.parse_args(argv)
    if args.central and args.broker:
        ap.error("--central runs the ingest on the simulator's own broker; not with --broker")
    if args.start_spread_s is None:
        args.start_spread_s = 0.0 if args.scenario == "backlog" else args.clinics / 200
    return args


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile()
    fleet = Fleet(args)
    started = time.time()
    try:
        fleet.start()
        figures = SCENARIOS[args.scenario](fleet)
        if fleet.central is not None:
            sent = sum(d["sent_readings"] for d in figures["_docs"])
            figures["central"] = central_figures(fleet, sent)
    finally:
        fleet.close()
    docs = figures.pop("_docs")
    result = {"scenario": args.scenario, "clinics": args.clinics,
              "processes": len(fleet.workers), "tls": args.tls, "commit": git_commit(),
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
              "readings_per_clinic_per_min": readings_per_minute(args.interval_scale),
              "interval_scale": args.interval_scale, "backlog_kbps": args.backlog_kbps,
              "store_threads": args.store_threads, "supervisor_restarts":
                  sum(d["restarts"] for d in docs),
              **figures, "argv": sys.argv[1:]}
    if args.per_clinic:
        result["per_clinic"] = docs
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


def central_figures(fleet: Fleet, sent: int, timeout: float = 120.0) -> dict[str, Any]:
    """What the ingest stored of the readings the clinics had sent (acknowledged by the broker),
    and how long after the scenario it caught up with them."""
    import psycopg
    _, pg, _, _ = fleet.central
    t0 = time.monotonic()
    stored = -1
    try:
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            while True:
                row = c.execute("SELECT coalesce(sum(stored_total), 0), count(*) FROM sites"
                                ).fetchone()
                assert row is not None
                stored, sites = int(row[0]), int(row[1])
                if stored >= sent or time.monotonic() - t0 > timeout:
                    break
                time.sleep(0.5)
    except Exception as exc:   # noqa: BLE001 - a figure missing, not a failed run
        return {"error": str(exc)}
    return {"clinic_sent_readings": sent, "stored_total": stored, "sites": sites,
            "caught_up": stored >= sent, "catch_up_s": round(time.monotonic() - t0, 1)}


if __name__ == "__main__":
    sys.exit(main())
