"""Settings of the ``host`` device: the mini-PC the agent runs on (read with psutil)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.config.fields import Table


@dataclass(frozen=True)
class HostSettings:
    disk_paths: tuple[str, ...]   # empty: the state directory
    temperatures: bool


def parse(t: Table) -> HostSettings:
    return HostSettings(disk_paths=t.str_list("disk_paths", ()) or (),
                        temperatures=bool(t.bool("temperatures", True)))
