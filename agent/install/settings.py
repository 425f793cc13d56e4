"""The clinic's settings as the installer collected them, staged between checking and writing.

They are checked in the installer's first steps and written in a later one, so they wait in a
private directory (mode 0700, removed by install.sh when it ends): ``settings.json`` with every
value but the password, and ``password`` (0600) alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from agent.config.secret import Secret

SETTINGS_FILE = "settings.json"
PASSWORD_FILE = "password"


@dataclass(frozen=True)
class SiteSettings:
    """What the installer writes; None = not given (an existing file keeps its own value)."""

    site_id: str | None = None
    broker_host: str | None = None
    broker_port: int | None = None
    ca_file: str | None = None        # the technician's copy; installed as <etc>/ca.crt
    client_cert: str | None = None    # installed as <etc>/client.crt
    client_key: str | None = None     # installed as <etc>/client.key
    mqtt_user: str | None = None
    trusted_keys: str | None = None   # a directory of *.pub; installed as <etc>/trusted-keys
    timezone: str | None = None
    language: str | None = None       # only when given (--lang or asked): "es" or "en"
    password: Secret | None = None

    def given(self) -> bool:
        """Whether any setting of the clinic was given (the language alone is not one)."""
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name != "language")

    def save(self, stage: Path) -> None:
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "password"}
        (stage / SETTINGS_FILE).write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        if self.password is not None:
            fd = os.open(stage / PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.password.reveal())

    @classmethod
    def load(cls, stage: Path) -> SiteSettings:
        path = stage / SETTINGS_FILE
        if not path.exists():
            return cls()
        doc: dict[str, Any] = json.loads(path.read_text())
        secret_path = stage / PASSWORD_FILE
        secret = Secret(secret_path.read_text(encoding="utf-8")) if secret_path.exists() else None
        names = {f.name for f in fields(cls)} - {"password"}
        return cls(**{k: v for k, v in doc.items() if k in names}, password=secret)
