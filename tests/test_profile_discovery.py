"""One profile discovery for SNMP and Modbus profiles: the same folders, the same name rules."""

from __future__ import annotations

import pytest

from agent.config import modbus_profiles, snmp_profiles
from agent.config.profiles import MODBUS_PROFILES, SNMP_PROFILES, shipped_dir


@pytest.mark.parametrize("family", [SNMP_PROFILES, MODBUS_PROFILES], ids=lambda f: f.prefix)
def test_a_clinic_folder_adds_and_replaces_profiles_with_one_name_rule(family, tmp_path):
    shipped = family.available()
    assert shipped and all(p.parent == shipped_dir() for p in shipped.values())
    replaced = next(iter(shipped))
    for name in (replaced, "my-router.v2", "Upper", "-dash", "x" * 65):
        (tmp_path / family.file_name(name)).write_text("")
    (tmp_path / f"{family.prefix}notes.txt").write_text("")
    found = family.available(str(tmp_path))
    assert found[replaced] == tmp_path / family.file_name(replaced), "the clinic's file wins"
    assert found["my-router.v2"] == tmp_path / family.file_name("my-router.v2")
    assert not {"Upper", "-dash", "x" * 65, "notes"} & set(found), "names outside the rule"
    assert family.find(replaced, str(tmp_path)) == (tmp_path / family.file_name(replaced), False)
    assert family.find(replaced) == (shipped[replaced], True)
    assert family.find("nothing-like-it", str(tmp_path)) is None


def test_both_loaders_use_the_shared_discovery(tmp_path):
    (tmp_path / "snmp-clinic.toml").write_text("")
    (tmp_path / "modbus-clinic.toml").write_text("")
    assert "clinic" in snmp_profiles.available(str(tmp_path))
    assert "clinic" in modbus_profiles.available(str(tmp_path))
    assert snmp_profiles.PROFILE_NAME_PATTERN == modbus_profiles.PROFILE_NAME_PATTERN
