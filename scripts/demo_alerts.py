"""The demo's alert receivers: what the operators would be told, as ``ALERT`` lines on the screen.

    clinic-central alerts ──> Alertmanager (conf/alertmanager.yml) ──web hook──> ALERT lines
                                                                    └──e-mail──> mail.txt

Alertmanager sends a group's every alert in each notification; each alert is shown once per
status (firing, then resolved), with the clinic's own times from ``startsAt`` and ``endsAt``. The
e-mail the shipped route sends for critical alerts goes to a local sink that keeps it in a file
(nobody is mailed; a relay that does not answer would delay every notification, docs/alerts.md).

Used by scripts/demo_central.py.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from central_stack import smtp_sink

from agent.i18n import Messages, language
from agent.term import ago


def _epoch(rfc3339: str) -> float:
    """Alertmanager's time (RFC 3339, UTC, a fraction of any length) in epoch seconds."""
    return datetime.fromisoformat(rfc3339).timestamp()


def _clock(ts: float) -> str:
    # The machine's local time, as the EVENT lines show the clinic's (the same machine here).
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


class AlertScreen:
    """Alertmanager's web hook notifications as ``ALERT`` lines, each alert's status once."""

    def __init__(self) -> None:
        self.t = Messages(language(os.environ))
        self.shown: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def lines(self, doc: dict[str, Any]) -> list[str]:
        out = []
        for a in doc.get("alerts", []):
            labels: dict[str, str] = a.get("labels", {})
            key = (a.get("fingerprint") or json.dumps(labels, sort_keys=True), a.get("status", ""))
            with self.lock:
                if key in self.shown:
                    continue
                self.shown.add(key)
            what = labels.get("alertname", "?") + (f".{labels['part']}" if "part" in labels else "")
            start = _epoch(a["startsAt"])
            if a.get("status") == "resolved":
                end = _epoch(a["endsAt"])
                told = (f"ALERT    resolved {labels.get('device', '?')} {what} "
                        f"{_clock(start)}-{_clock(end)}, {ago(end - start, self.t)}")
            else:
                told = (f"ALERT    firing   {labels.get('device', '?')} {what} "
                        f"since {_clock(start)} (clinic time)")
            late = ", told late" if a.get("annotations", {}).get("reported_late") == "true" else ""
            route = f"{labels.get('severity', '?')} -> {doc.get('receiver', '?')}"
            out.append(f"{told}  [{route}{late}]")
        return out


class Receivers:
    """The web hook (``url``) and the mail relay (``smtp_port``) Alertmanager is pointed at."""

    def __init__(self, mail_file: Path) -> None:
        screen = AlertScreen()

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    lines = screen.lines(json.loads(body))
                except (ValueError, KeyError, TypeError) as exc:
                    lines = [f"ALERT    (a notification the demo could not read: {exc!r})"]
                for line in lines:
                    print(line, flush=True)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass    # no access log on the demo's screen

        mail_lock = threading.Lock()

        def keep(data: bytes) -> None:
            with mail_lock, open(mail_file, "ab") as fh:
                fh.write(data + b"\n")

        self.hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.hook.daemon_threads = True
        self.smtp = smtp_sink(keep)
        self.url = f"http://127.0.0.1:{self.hook.server_address[1]}/clinic-alerts"
        self.smtp_port: int = self.smtp.server_address[1]
        for name, server in (("alert-hook", self.hook), ("mail-sink", self.smtp)):
            threading.Thread(target=server.serve_forever, name=name, daemon=True).start()

    def close(self) -> None:
        for server in (self.hook, self.smtp):
            server.shutdown()
            server.server_close()
