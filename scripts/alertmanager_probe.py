#!/usr/bin/env python3
"""Measure what Alertmanager tells a web hook when an alert's resolution follows its firing
closely: the figures behind clinic-central's ``[alerts] hold_s`` (docs/alerts.md).

    .venv/bin/python scripts/alertmanager_probe.py [--group-wait 1] [--group-interval 2]

Starts prometheus-alertmanager on loopback with conf/alertmanager.yml (timings replaced, receiver
pointed at a local web hook, the mail relay a closed port), posts one alert per delay (each its
own group), then its resolution that many seconds later, and prints what the web hook got.
``--severity critical`` takes the shipped e-mail route too: a relay that does not answer.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import find, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--group-wait", type=float, default=1)
    ap.add_argument("--group-interval", type=float, default=2)
    ap.add_argument("--delays", default="0,0.5,0.9,1.5,2.5,3.5")
    ap.add_argument("--old-start", action="store_true",
                    help="startsAt an hour ago (an event that reaches the centre late)")
    ap.add_argument("--severity", default="warning", help="critical: the e-mail route too")
    args = ap.parse_args()
    got: list[tuple[float, str, str]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            got.extend((time.time(), a["labels"]["site"], a["status"]) for a in doc["alerts"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    hook_port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", hook_port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="am-probe-"))
    conf = (ROOT / "conf" / "alertmanager.yml").read_text()
    conf = conf.replace("http://127.0.0.1:9099/clinic-alerts", f"http://127.0.0.1:{hook_port}/")
    conf = re.sub(r'smtp_smarthost: "[^"]*"', f'smtp_smarthost: "127.0.0.1:{free_port()}"', conf)
    conf = re.sub(r"group_wait: 30s", f"group_wait: {int(args.group_wait * 1000)}ms", conf)
    conf = re.sub(r"group_interval: 2m", f"group_interval: {int(args.group_interval * 1000)}ms",
                  conf)
    (work / "am.yml").write_text(conf)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    am = subprocess.Popen([find("prometheus-alertmanager"), f"--config.file={work / 'am.yml'}",
                           f"--storage.path={work}", f"--web.listen-address=127.0.0.1:{port}",
                           "--cluster.listen-address="], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("Alertmanager did not start")
            time.sleep(0.1)
        delays = [float(x) for x in args.delays.split(",")]
        t0 = time.time()
        starts = iso(t0 - 3600 if args.old_start else t0)

        def alert(i: int, ends: str) -> dict[str, Any]:
            return {"labels": {"alertname": "probe", "site": f"S{i}", "severity": args.severity},
                    "startsAt": starts, "endsAt": ends}

        httpx.post(f"{url}/api/v2/alerts", json=[alert(i, iso(t0 + 3600))
                                                 for i in range(len(delays))])

        def resolve(i: int, delay: float) -> None:
            time.sleep(delay)
            httpx.post(f"{url}/api/v2/alerts", json=[alert(i, iso(time.time()))])

        threads = [threading.Thread(target=resolve, args=(i, d)) for i, d in enumerate(delays)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(max(delays) + 2 * args.group_interval + 12)
    finally:
        am.terminate()
        am.wait()
        server.shutdown()
    print(f"group_wait {args.group_wait:g} s, group_interval {args.group_interval:g} s, "
          f"startsAt {'an hour ago' if args.old_start else 'now'}, severity {args.severity}")
    for i, d in enumerate(delays):
        seen = ", ".join(f"{s} at {t - t0:.1f} s" for t, site, s in got if site == f"S{i}")
        print(f"  resolution posted {d:4.1f} s after firing: {seen or 'NOTHING told'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
