"""Operating-system errors reach the technician in their language, by errno, not as the C
library's English (``exc.strerror``)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.catalogue.oserrors import MESSAGES
from agent.i18n import Messages
from agent.oserror import os_error

ES, EN = Messages("es"), Messages("en")
MAIN = "import sys; from agent.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("name", sorted(k[3:] for k in MESSAGES if k[3:].isupper()))
def test_every_listed_errno_is_named_in_spanish(name):
    code = getattr(errno, name)
    shown = ES.render(os_error(OSError(code, os.strerror(code))))
    assert shown == MESSAGES[f"os.{name}"]["es"]
    assert os.strerror(code) not in shown


def test_an_unlisted_errno_keeps_the_systems_words():
    exc = OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
    assert ES.render(os_error(exc)) == os.strerror(errno.ENOTTY)
    assert ES.render(os_error(ValueError("odd"))) == "odd"


def clinic_agent(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANG", "LC_"))}
    return subprocess.run([sys.executable, "-c", MAIN, "--lang", "es", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("where", ["missing", "under_a_file"])
def test_validate_says_why_a_config_cannot_be_read_in_spanish(tmp_path: Path, where: str):
    if where == "missing":
        path, expected = tmp_path / "agent.toml", "no existe el archivo o la carpeta"
    else:
        (tmp_path / "f").write_text("x")
        path, expected = tmp_path / "f" / "agent.toml", "una parte de la ruta no es una carpeta"
    result = clinic_agent("validate", str(path))
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in out
    assert "No such file" not in out and "Not a directory" not in out



def test_the_installer_names_an_unreadable_ca_file_in_spanish(tmp_path: Path):
    from agent.install.checks import SettingError, ca_file
    (tmp_path / "f").write_text("x")
    with pytest.raises(SettingError) as caught:
        ca_file(str(tmp_path / "f" / "ca.pem"))
    shown = ES.render(caught.value.message)
    assert "Not a directory" not in shown
    assert "una parte de la ruta no es una carpeta" in shown
