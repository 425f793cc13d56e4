#!/usr/bin/env python3
"""Requests and time per poll of a Modbus device profile, over TCP on loopback and over RTU.

    .venv/bin/python scripts/bench_modbus.py                       # eastron-sdm630, both links
    .venv/bin/python scripts/bench_modbus.py --profile apc-smart-ups --polls 500 --no-rtu

A register image server (scripts/sim_registers.py) plays the device: every register of the
profile holds a value, so each poll must return every one of them. The agent's real
``ModbusSource`` polls it:

* over Modbus TCP on 127.0.0.1, ``--polls`` times;
* over Modbus RTU on a socat pty pair at ``--baud`` 8N1, ``--rtu-polls`` times. A pty moves bytes
  at memory speed whatever the baud rate, so this measures the agent's own side (pymodbus framing,
  the agent's frame gap); the time the frames take on a real 8N1 line is *computed* from their
  sizes: 10 bits per byte, a request of 8 bytes and an answer of 5 + 2 x registers bytes per
  read, and the 3.5-character silence RTU requires after each frame. Device turnaround (how long
  the meter thinks before answering) is not in either figure: manuals do not give it.

Prints a Markdown report (for docs/benchmarks.md). Talks only to 127.0.0.1 and ptys; stops by
itself after the given number of polls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pymodbus

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim_registers  # noqa: E402  (scripts/ is not a package)

from agent.config import parse_config  # noqa: E402
from agent.sources.modbus import BusPool, ModbusSource  # noqa: E402
from agent.sources.modbus_plan import compile_plan  # noqa: E402

HEADER = 'site_id = "bench"\n[mqtt]\nhost = "127.0.0.1"\ntls = false\n'
BITS_PER_CHAR = 10          # 8N1: start + 8 data + stop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def device(profile: str, link: str, timeout_s: float) -> object:
    """The agent's DeviceConfig for ``profile`` on ``link`` (TOML lines for the bus)."""
    toml = (HEADER + f'[[devices]]\nname = "dev"\nkind = "modbus"\nunit_id = 1\n'
                     f'profile = "{profile}"\ntimeout_s = {timeout_s}\n{link}\n')
    return parse_config(tomllib.loads(toml), source="bench").devices[0]


def image_for(settings) -> tuple[sim_registers.RegisterImage, int]:
    """Every register of the profile holding a distinct plausible value; and how many."""
    orders = {("big", "big"): "ABCD", ("little", "big"): "CDAB", ("big", "little"): "BADC",
              ("little", "little"): "DCBA"}
    image = sim_registers.RegisterImage()
    for i, spec in enumerate(settings.registers, start=1):
        order = orders[(spec.word_order, spec.byte_order)]
        if spec.type == "bit":
            image.set_bit(1, spec.table, spec.address, spec.bit or 0, bool(i % 2))
        elif spec.type == "string":
            image.put_value(1, spec.table, spec.address, "string", "BENCH", length=spec.count)
        elif spec.type.startswith("float"):
            image.put_value(1, spec.table, spec.address, spec.type, 200.0 + i, order=order)
        else:
            image.put_value(1, spec.table, spec.address, spec.type, i, order=order)
    return image, len(settings.registers)


async def poll_many(dev, polls: int, expected: int) -> list[float]:
    """Seconds per poll; fails unless every poll returned every value."""
    pool = BusPool()
    source = ModbusSource(dev, pool)
    times = []
    try:
        for _ in range(polls):
            t0 = time.perf_counter()
            samples = await source.read()
            times.append(time.perf_counter() - t0)
            metrics = {s.metric for s in samples}
            if len(metrics) < expected:
                raise SystemExit(f"a poll returned {len(metrics)} values, expected {expected}")
    finally:
        await source.close()
    return times


def summary(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return (f"median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms, "
            f"mean {statistics.fmean(ms):.2f} ms")


def wire_time_ms(plan, baud: int, frame_gap_ms: float) -> tuple[int, float, float]:
    """(bytes on the line, their time, the poll's time on the line) for one poll.

    A poll is: request, at least 3.5 characters of silence (the device's turnaround, really),
    answer, then the agent's frame gap (or the 3.5-character silence, whichever is longer)
    before the next request. The silence after the last answer belongs to the next poll.
    """
    char_ms = BITS_PER_CHAR * 1000 / baud
    n = len(plan.requests)
    nbytes = sum(8 + 5 + 2 * r.count for r in plan.requests)
    line = nbytes * char_ms
    silence = 3.5 * char_ms
    return nbytes, line, line + n * silence + max(0, n - 1) * max(silence, frame_gap_ms)


def bench_tcp(args, profile_settings) -> list[str]:
    image, expected = image_for(profile_settings)
    server = sim_registers.ImageServer(image, port=free_port())
    server.start()
    try:
        dev = device(args.profile, f'host = "127.0.0.1"\nport = {server.port}', 2.0)
        asyncio.run(poll_many(dev, 3, expected))                 # connect, warm up
        server.clear_requests()
        times = asyncio.run(poll_many(dev, args.polls, expected))
        requests = server.request_count()
    finally:
        server.stop()
    # Each poll_many run opens one connection; its first read pays the TCP connect.
    return [f"| Modbus TCP, 127.0.0.1 | {args.polls} | {requests / args.polls:g} | "
            f"{summary(times)} | measured |"]


def bench_rtu(args, profile_settings) -> list[str]:
    socat = shutil.which("socat")
    if socat is None:
        return ["| Modbus RTU | - | - | socat not installed: skipped | - |"]
    image, expected = image_for(profile_settings)
    with tempfile.TemporaryDirectory() as tmp:
        server_end, client_end = os.path.join(tmp, "meter"), os.path.join(tmp, "agent")
        proc = subprocess.Popen([socat, f"pty,raw,echo=0,link={server_end}",
                                 f"pty,raw,echo=0,link={client_end}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not (os.path.exists(server_end) and os.path.exists(client_end)):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("socat did not create the pty pair")
                time.sleep(0.01)
            server = sim_registers.ImageServer(image, serial_port=server_end,
                                               baudrate=args.baud)
            server.start()
            try:
                dev = device(args.profile, f'transport = "rtu"\nserial_port = "{client_end}"\n'
                                           f'baudrate = {args.baud}', 2.0)
                asyncio.run(poll_many(dev, 2, expected))
                server.clear_requests()
                times = asyncio.run(poll_many(dev, args.rtu_polls, expected))
                requests = server.request_count()
            finally:
                server.stop()
        finally:
            proc.terminate()
            proc.wait(10)
    plan = ModbusSource(dev, BusPool()).plan
    nbytes, line, total = wire_time_ms(plan, args.baud, dev.settings.frame_gap_ms)
    return [f"| Modbus RTU, socat pty pair, {args.baud} 8N1 | {args.rtu_polls} | "
            f"{requests / args.rtu_polls:g} | {summary(times)} | measured (agent side; a pty "
            f"has no baud rate) |",
            f"| Modbus RTU on a real {args.baud} 8N1 line | - | {len(plan)} | "
            f"{nbytes} bytes: {line:.0f} ms on the wire, {total:.0f} ms with RTU silences and "
            f"the agent's {dev.settings.frame_gap_ms} ms frame gap | computed from frame sizes "
            f"|"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="eastron-sdm630")
    parser.add_argument("--polls", type=int, default=500, help="polls over TCP")
    parser.add_argument("--rtu-polls", type=int, default=50, help="polls over RTU")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--no-rtu", action="store_true")
    args = parser.parse_args(argv)

    settings = device(args.profile, 'host = "127.0.0.1"', 2.0).settings
    plan = compile_plan(settings.registers, max_registers_per_read=settings.max_registers_per_read,
                        max_gap=settings.max_gap)
    reads = ", ".join(f"{r.table} {r.address}+{r.count}" for r in plan.requests)
    rows = bench_tcp(args, settings)
    if not args.no_rtu:
        rows += bench_rtu(args, settings)
    print(f"Profile `{args.profile}`: {len(settings.registers)} values in {len(plan)} reads "
          f"({reads}; wire addresses).\n")
    print("| link | polls | requests per poll | time per poll | how |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nPython {platform.python_version()}, pymodbus {pymodbus.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} "
          f"{platform.release()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
