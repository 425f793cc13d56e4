"""An overlay push for a whole fleet: what each site downloads, what the broker keeps retained,
and what checking it costs the operator and a site.

    .venv/bin/python scripts/bench_overlay.py [--sites 3200] [--chunk-size 100] [--runs 50]
                                              [--broker]

Signed twice: as one envelope listing every site (what ``fleet sign --chunk-size`` at or above the
fleet size gives), and as a bundle of envelopes of at most ``--chunk-size`` sites (the default of
``fleet sign``), each published only to its own sites. Retained bytes are the payloads the broker
keeps, one per site's ``config/set`` (topic names and per-message overhead not counted). With
``--broker``, each variant is also published, retained, to a throwaway Mosquitto on a free
loopback port: its resident memory before and after, and its persistence file after a clean stop.

The site's side is ``check_push`` (size, JSON, Ed25519 signature, site in the list, version, the
overlay merged onto the shipped example config, ``parse_config``), as the agent runs it for each
push; the operator's side is ``check_overlay`` and signing.
"""

from __future__ import annotations

import argparse
import getpass
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import paho.mqtt.client as mqtt  # noqa: E402
from loopback import find, free_port, wait_port  # noqa: E402

from agent.remote.bundle import DEFAULT_CHUNK_SIZE, Bundle, sign_bundle  # noqa: E402
from agent.remote.envelope import generate_keypair, load_private_key, load_trusted_keys  # noqa: E402
from agent.remote.fleet import overlay_payload  # noqa: E402
from agent.remote.presign import check_overlay  # noqa: E402
from agent.remote.push import Accepted, LocalBasis, PushContext, check_push  # noqa: E402

OVERLAY = "[buffer]\nbacklog_kbps = 200\n\n[[devices]]\nname = \"ups\"\ntimeout_s = 2.5\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=3200)
    ap.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    ap.add_argument("--broker", action="store_true", help="also measure a real Mosquitto")
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        key_path, pub_path, _ = generate_keypair(work / "keys", "bench")
        (work / "trusted").mkdir()
        (work / "trusted" / "bench.pub").write_bytes(pub_path.read_bytes())
        example = (ROOT / "conf/agent.example.toml").read_text()
        (work / "secrets.toml").write_text((ROOT / "conf/secrets.example.toml").read_text())
        for old, new in (("/etc/clinic-agent/trusted-keys", str(work / "trusted")),
                         ("/etc/clinic-agent/secrets.toml", str(work / "secrets.toml"))):
            example = example.replace(old, new)
        (work / "agent.toml").write_text(example)
        # The site checked (DFSSA001234) is one of the --sites distinct ids.
        sites = sorted({f"DFSSA{i:06d}" for i in range(args.sites - 1)} | {"DFSSA001234"})
        sites += [f"DFSSB{i:06d}" for i in range(args.sites - len(sites))]

        key = load_private_key(key_path)
        payload = overlay_payload(OVERLAY, sites=sites, version=5, valid_for_s=3600)
        results = {}
        for chunk in (len(sites), args.chunk_size):
            t = time.perf_counter()
            found = check_overlay(OVERLAY, sites)
            bundle = sign_bundle(payload, key, chunk_size=chunk)
            results[chunk] = (bundle, (time.perf_counter() - t) * 1000)
            assert not found.problems, found.problems

        keys, _ = load_trusted_keys(work / "trusted")
        ctx = PushContext(site_id="DFSSA001234", now=time.time(), trusted_keys=keys,
                          max_bytes=262144, highest_version=0, handled=frozenset(),
                          local=LocalBasis.read(work / "agent.toml"), confirm_timeout_s=180)
        for chunk, (bundle, operator_ms) in results.items():
            env = bundle.for_site("DFSSA001234")
            t = time.perf_counter()
            for _ in range(args.runs):
                decision = check_push(env, ctx)
            site_ms = (time.perf_counter() - t) / args.runs * 1000
            assert isinstance(decision, Accepted), decision
            retained = sum(len(bundle.for_site(s)) for s in bundle.sites)
            print(f"{args.sites} sites, envelopes of at most {chunk} site(s): "
                  f"{len(bundle.envelopes)} envelope(s), the largest {bundle.largest:,} bytes "
                  f"(what one site downloads); retained on every site's topic: "
                  f"{retained:,} bytes ({retained / 1e6:.1f} MB); bundle file "
                  f"{len(bundle.to_bytes()) + 1:,} bytes")
            print(f"  operator: check + sign {operator_ms:.1f} ms; site: check_push of its "
                  f"envelope {site_ms:.1f} ms")
            if args.broker:
                rss, db = broker_cost(bundle)
                print(f"  Mosquitto: +{rss / 1e6:.1f} MB resident with every site's push "
                      f"retained; persistence file {db / 1e6:.1f} MB")
    return 0


def broker_cost(bundle: Bundle) -> tuple[int, int]:
    """Resident memory a Mosquitto gains holding each site's envelope retained, and the size of
    its persistence file after a clean stop."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        f"persistence true\npersistence_location {tmp}/\n"
                        f"user {getpass.getuser()}\n")
        proc = subprocess.Popen([find("mosquitto"), "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            before = _rss(proc.pid)
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-overlay")
            client.connect("127.0.0.1", port)
            client.loop_start()
            sent = [client.publish(f"clinics/{site}/config/set", bundle.for_site(site), qos=1,
                                   retain=True) for site in bundle.sites]
            for info in sent:
                info.wait_for_publish(timeout=60)
            client.disconnect()
            client.loop_stop()
            grown = _rss(proc.pid) - before
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return grown, (Path(tmp) / "mosquitto.db").stat().st_size


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    sys.exit(main())
