#!/usr/bin/env python3
"""The fleet page's weight and time for a fleet of N clinics (docs/benchmarks.md).

    .venv/bin/python scripts/bench_web.py --clinics 3200

A throwaway PostgreSQL with N clinics (3 % offline, 5 % on battery, 4 % internet down, 2 % a
device not answering), the app in process (Starlette's TestClient, no VictoriaMetrics), one
logged-in operator; prints bytes on the wire (gzip) and server time per page: the first request,
and the median of the next ones (the live rows are rendered at most once a second per filter and
language, whatever the number of open pages).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))

from central_stack import Postgres  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clinics", type=int, default=3200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from psycopg.types.json import Jsonb
    from starlette.testclient import TestClient

    from central import fleet, pg
    from central.web import users
    from central.web.app import WebSettings, build
    db = Postgres().start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = pg.connect(db.dsn)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn:
            fleet.migrate(conn)
            users.add(conn, "bench", "bench-password-1", "operator")
            now = time.time()
            for i in range(args.clinics):
                site = f"DFSSA{i:06d}"
                offline = i % 33 == 0
                conn.execute("INSERT INTO sites (site, last_seen, status, status_at, "
                             "agent_version, config_version) VALUES (%s, now(), %s, now(), "
                             "'0.1.0', '7')", (site, "offline" if offline else "online"))
                active = []
                if i % 20 == 1:
                    active.append({"id": 1, "cond": "mains_lost", "dev": "ups",
                                   "start": now - 60 * (i % 90),
                                   "values": {"on_battery": True, "battery.charge_pct": 80}})
                if i % 25 == 2:
                    active.append({"id": 2, "cond": "wan_down", "dev": "wan",
                                   "start": now - 120 * (i % 50), "values": {"wan.up": False}})
                if i % 50 == 3:
                    active.append({"id": 3, "cond": "device_unreachable", "dev": "router",
                                   "start": now - 300, "values": {}})
                conn.execute("INSERT INTO events_active (site, at, active) VALUES "
                             "(%s, now(), %s)", (site, Jsonb(active)))
                conn.execute("INSERT INTO site_inventory (site, name, state, municipality) "
                             "VALUES (%s, %s, %s, %s)", (site, f"Clínica {i}",
                                                         ("Oaxaca", "Chiapas", "Guerrero")[i % 3],
                                                         f"Municipio {i % 70}"))
        settings = WebSettings(pg_dsn=db.dsn, vm_url=None, secret=b"b" * 32)
        with TestClient(build(settings), base_url="http://127.0.0.1",
                        follow_redirects=False) as c:
            page = c.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            assert c.post("/login", data={"user": "bench", "password": "bench-password-1",
                                          "csrf": csrf}).status_code == 303
            gz = {"Accept-Encoding": "gzip"}
            print(f"{args.clinics} clinics; bytes on the wire (gzip); server time of the first "
                  f"request and the median of {args.repeat - 1} more")
            print(f"{'request':<40} {'wire bytes':>11} {'raw bytes':>11} {'first ms':>9} "
                  f"{'again ms':>9}")
            for what, path in (("fleet page, all", "/"), ("fleet page, problems", "/?show=problems"),
                               ("live rows, all", "/fleet/rows"),
                               ("live rows, problems", "/fleet/rows?show=problems"),
                               ("API JSON, all", "/api/fleet"),
                               ("clinic page (no charts data)", "/clinic/DFSSA000001"),
                               ("app.css + fleet.js", "/static/app.css")):
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    r = c.get(path, headers=gz)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, (path, r.status_code)
                wire = r.num_bytes_downloaded
                raw = len(r.content)
                if path == "/static/app.css":
                    js = c.get("/static/fleet.js", headers=gz)
                    wire += js.num_bytes_downloaded
                    raw += len(js.content)
                print(f"{what:<40} {wire:>11} {raw:>11} {times[0]:>9.1f} "
                      f"{statistics.median(times[1:] or times):>9.1f}")
                if path.startswith("/fleet/rows"):
                    tag = r.headers["etag"]
                    t0 = time.perf_counter()
                    r = c.get(path, headers={**gz, "If-None-Match": tag})
                    ms = (time.perf_counter() - t0) * 1000
                    assert r.status_code == 304
                    print(f"{what + ', unchanged (304)':<40} {r.num_bytes_downloaded:>11} "
                          f"{0:>11} {'':>9} {ms:>9.1f}")
    finally:
        db.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
