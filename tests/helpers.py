"""Small helpers shared by tests and fixtures: free ports, waiting on conditions, peer binaries."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Coroutine, TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import loopback as _loopback  # noqa: E402

T = TypeVar("T")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nobody listens on right now (scripts/loopback.py: below the
    kernel's ephemeral range, not one handed out lately)."""
    return _loopback.free_port(kind)


def wait_until(condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05,
               what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def require_binary(name: str, *candidates: str) -> str:
    """Path of a peer binary. Missing: skip locally, but fail in CI, where setup must install it."""
    for cand in (name, *candidates):
        path = shutil.which(cand) or (cand if os.path.isabs(cand) and os.access(cand, os.X_OK) else None)
        if path:
            return path
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed; scripts/setup.sh should have installed it")
    pytest.skip(f"{name} is not installed (run scripts/setup.sh)")
    raise AssertionError("unreachable")


def stop_process(proc: "subprocess.Popen | None", *, grace: float = 5.0) -> None:
    """SIGTERM (so a peer can save its state, as a real one would), then SIGKILL after ``grace``."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    def accepting() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False
    wait_until(accepting, timeout=timeout, what=f"{host}:{port} to accept connections")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run an async test body in a fresh loop, failing (not hanging) after ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def eventually(condition: Callable[[], Any], *, timeout: float = 5.0,
                     what: str = "condition") -> Any:
    """Async ``wait_until``: poll ``condition`` without blocking the loop, up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.01)


def buffer_summary(state_dir: "str | os.PathLike[str]", op: str = "summary") -> dict[str, Any] | None:
    """The agent's buffer as ``clinic-agent buffer`` sees it: asked of the running agent (it holds
    the file exclusively) over ``<state_dir>/control.sock``, else read from the stopped agent's
    file; None while neither exists yet. ``op="buffer"`` asks the live status instead (running
    agent only)."""
    import dataclasses

    from agent.control.server import ControlClient, ControlError, NotRunning
    from agent.errors import StoreError
    from agent.store.outbox import summarize
    try:
        client = ControlClient.connect(os.path.join(state_dir, "control.sock"), timeout=10)
    except (NotRunning, OSError):
        client = None
    if client is not None:
        with client:
            try:
                return client.request(op)
            except (ControlError, OSError):
                pass
    if op != "summary":
        return None
    try:
        return dataclasses.asdict(summarize(os.path.join(state_dir, "buffer.sqlite")))
    except StoreError:
        return None
