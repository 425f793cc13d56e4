"""What the demo and the benchmarks share: free loopback ports, waiting for a peer, finding binaries."""

from __future__ import annotations

import os
import random
import shutil
import socket
import time
from collections import deque


# Below Linux's ephemeral range (32768-60999): a port the kernel hands to the system's outgoing
# connections meanwhile cannot be one chosen here. A port the kernel chose (bind to 0) could be,
# and a server started on it a moment later failed with "Address already in use" under load.
_PORTS = range(20000, 32768)
_recent: deque[int] = deque(maxlen=2000)   # handed out lately: a server may not be up yet


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 nobody listens on right now, not one handed out lately."""
    for _ in range(500):
        port = random.choice(_PORTS)
        if port in _recent:
            continue
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _recent.append(port)
        return port
    raise RuntimeError("no free loopback port in 20000-32767")


def wait_port(port: int, timeout: float = 15) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def find(binary: str) -> str:
    """Path of a peer binary (also in sbin, which a non-root PATH may lack)."""
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/sbin/{binary}") if os.access(p, os.X_OK)), None)
    if not path:
        raise SystemExit(f"{binary} not found: run scripts/setup.sh first")
    return path
