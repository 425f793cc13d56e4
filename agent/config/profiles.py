"""Where device profiles are found, for both kinds that have them (one set of name rules).

A profile is a TOML file ``<family>-<name>.toml`` (``snmp-if-mib.toml``,
``modbus-eastron-sdm630.toml``): looked up first in the device's ``profiles_dir``, then among
the profiles shipped in ``agent/profiles/`` (package data), so a clinic can fix or extend a
shipped profile without waiting for a release. The prefix lets both families share a folder.
What a profile says is read by ``snmp_profiles`` and ``modbus`` (each with its own rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# A profile name, for both families: what a technician types in ``profile``/``profiles``.
NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
SUFFIX = ".toml"


def shipped_dir() -> Path:
    """The directory of the profiles that ship with the agent (package data)."""
    return Path(str(resources.files("agent") / "profiles"))


@dataclass(frozen=True)
class ProfileFamily:
    """The profiles of one device kind, told apart by their file name prefix."""

    prefix: str                    # "snmp-" or "modbus-"

    def file_name(self, name: str) -> str:
        """The file that holds profile ``name``: ``<prefix>NAME.toml``."""
        return f"{self.prefix}{name}{SUFFIX}"

    def name_of(self, file_name: str) -> str | None:
        """The profile a file holds (``<prefix>NAME.toml`` -> NAME), or None for other files."""
        if not (file_name.startswith(self.prefix) and file_name.endswith(SUFFIX)):
            return None
        name = file_name[len(self.prefix):-len(SUFFIX)]
        return name if re.fullmatch(NAME_PATTERN, name) else None

    def available(self, profiles_dir: str | None = None) -> dict[str, Path]:
        """Every profile name there is, with the file that would be used (profiles_dir wins),
        sorted by name."""
        found: dict[str, Path] = {}
        for folder in (shipped_dir(), Path(profiles_dir) if profiles_dir else None):
            if folder is None or not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir()):
                name = self.name_of(entry.name)
                if name and entry.is_file():
                    found[name] = entry
        return dict(sorted(found.items()))

    def find(self, name: str, profiles_dir: str | None = None) -> tuple[Path, bool] | None:
        """(file, shipped) of profile ``name``, or None when there is no such profile."""
        candidates: list[tuple[Path, bool]] = []
        if profiles_dir:
            candidates.append((Path(profiles_dir) / self.file_name(name), False))
        candidates.append((shipped_dir() / self.file_name(name), True))
        for path, shipped in candidates:
            if path.is_file():
                return path, shipped
        return None


SNMP_PROFILES = ProfileFamily("snmp-")
MODBUS_PROFILES = ProfileFamily("modbus-")
