"""Device profiles: register maps of known UPS and meter models, shipped as TOML data files.

A ``kind = "modbus"`` device may say ``profile = "eastron-sdm630"`` instead of listing its
registers. The profile is the file ``modbus-eastron-sdm630.toml``, looked up first in the
device's ``profiles_dir`` and then among the profiles shipped in ``agent/profiles/``, so a clinic
can fix or extend a shipped profile without waiting for a release. The ``modbus-`` prefix lets
Modbus and SNMP profiles (``snmp-*.toml``, config/snmp_profiles.py) share one directory. Every
profile maps the vendor's registers onto the common metric names of docs/modbus-profiles.md and
cites the public document it was taken from.

This module only finds and reads the files; ``config/modbus.py`` validates their content with the
same rules (and the same messages) as registers written in the config itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agent.config.profiles import MODBUS_PROFILES, NAME_PATTERN, SUFFIX, shipped_dir
from agent.i18n import Text, text

PROFILE_NAME_PATTERN = NAME_PATTERN
FILE_PREFIX = MODBUS_PROFILES.prefix
__all__ = ["FILE_PREFIX", "PROFILE_NAME_PATTERN", "SUFFIX", "ProfileInfo", "ProfileNotReadable",
           "ProfileSource", "available", "check_profiles_dir", "file_name_to_profile",
           "profile_file_name", "read", "shipped_dir"]


@dataclass(frozen=True)
class ProfileSource:
    """The public document a profile was taken from."""

    title: str
    version: str                    # document version and/or date
    url: str                        # where to get it ("" for a file of this repository)
    path: str = ""                  # a file of this repository, for profiles of our own maps
    notes: str = ""


@dataclass(frozen=True)
class ProfileInfo:
    """Which profile a device uses, where it came from, and what it was taken from."""

    name: str
    where: str                      # the file it was read from, for messages
    shipped: bool                   # False: a file of the clinic's profiles_dir
    description: str
    kind: str                       # "ups" or "meter"
    source: ProfileSource


class ProfileNotReadable(Exception):
    """A profile file exists but cannot be read; ``path`` and ``error`` say which and why."""

    def __init__(self, path: str, error: str) -> None:
        self.path = path
        self.error = error
        super().__init__(f"cannot read {path}: {error}")


def available(profiles_dir: str | None = None) -> dict[str, str]:
    """Every profile name there is, each with the file that would be used (profiles_dir wins)."""
    return {name: str(path) for name, path in MODBUS_PROFILES.available(profiles_dir).items()}


def profile_file_name(name: str) -> str:
    """The file that holds profile ``name``: ``modbus-NAME.toml``."""
    return MODBUS_PROFILES.file_name(name)


def file_name_to_profile(file_name: str) -> str | None:
    """The profile a file holds (``modbus-NAME.toml`` -> NAME), or None for other files."""
    return MODBUS_PROFILES.name_of(file_name)


def read(name: str, profiles_dir: str | None = None) -> tuple[str, str, bool] | None:
    """(text, file, shipped) of profile ``name``, or None when there is no such profile.

    Raises ``ProfileNotReadable`` for a file that exists but cannot be read as UTF-8 text.
    """
    found = MODBUS_PROFILES.find(name, profiles_dir)
    if found is None:
        return None
    path, shipped = found
    try:
        return path.read_text(encoding="utf-8"), str(path), shipped
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileNotReadable(str(path), str(exc)) from exc


def check_profiles_dir(path: str) -> Text | None:
    """Why ``path`` cannot serve as a profiles_dir, or None when it can."""
    if not os.path.isdir(path):
        return text("cfg.profiles_dir_missing", path=path)
    if not os.access(path, os.R_OK | os.X_OK):
        return text("cfg.profiles_dir_denied", path=path)
    return None
