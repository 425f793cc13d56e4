"""Keys, configs and envelopes shared by the remote management tests."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.remote.envelope import generate_keypair, load_private_key, seal
from agent.remote.fleet import command_payload, config_payload


class Operator:
    """An operator key pair, the public half installed in ``keys_dir`` like on a site."""

    def __init__(self, workdir: Path, name: str = "operator", *, trusted: bool = True) -> None:
        self.key_path, self.pub_path, self.key_id = generate_keypair(workdir / f"{name}-keys", name)
        self.key = load_private_key(self.key_path)
        self.keys_dir = workdir / "trusted-keys"
        self.keys_dir.mkdir(exist_ok=True)
        if trusted:
            (self.keys_dir / self.pub_path.name).write_bytes(self.pub_path.read_bytes())

    def push(self, text: str, *, sites=("SITE001",), version: int = 1, valid_for_s: float = 3600,
             now: float | None = None) -> bytes:
        return seal(config_payload(text, sites=sites, version=version, valid_for_s=valid_for_s,
                                   now=now), self.key)

    def command(self, name: str, args: dict | None = None, *, sites=("SITE001",),
                valid_for_s: float = 300, now: float | None = None) -> bytes:
        return seal(command_payload(name, args or {}, sites=sites, valid_for_s=valid_for_s, now=now),
                    self.key)


def stranger_key() -> Ed25519PrivateKey:
    """A valid key that no site trusts."""
    return Ed25519PrivateKey.generate()


def site_config(*, site: str = "SITE001", state_dir, port: int, password: str | None = None,
                keys_dir, confirm_timeout_s: float = 5, interval: float = 0.2,
                extra_devices: str = "", status_interval_s: float | None = None) -> str:
    """A site's local file: host device ``pc``, the broker on loopback, remote management on."""
    creds = f'username = "{site}"\npassword = "{password}"\n' if password else ""
    status = f"status_interval_s = {status_interval_s}\n" if status_interval_s else ""
    return f"""
site_id = "{site}"
state_dir = "{state_dir}"
{status}[mqtt]
host = "127.0.0.1"
port = {port}
tls = false
keepalive_s = 5
reconnect_max_s = 1
connect_timeout_s = 1
{creds}
[remote]
trusted_keys_dir = "{keys_dir}"
confirm_timeout_s = {confirm_timeout_s}

[[devices]]
name = "pc"
kind = "host"
interval_s = {interval}
{extra_devices}
"""


def pushed_config(*, port: int, interval: float = 0.2, extra: str = "", mqtt_extra: str = "",
                  status_interval_s: float | None = None) -> str:
    """A fleet-wide config as an operator writes it: no site id, state dir or credentials."""
    status = f"status_interval_s = {status_interval_s}\n" if status_interval_s else ""
    return f"""{status}
[mqtt]
host = "127.0.0.1"
port = {port}
tls = false
keepalive_s = 5
reconnect_max_s = 1
connect_timeout_s = 1
{mqtt_extra}
[[devices]]
name = "pc"
kind = "host"
interval_s = {interval}
{extra}
"""
