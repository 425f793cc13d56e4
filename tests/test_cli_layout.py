"""The command line's layout: one module per command, ``run`` loading only the runtime, no cycles."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "agent" / "cli"
TECHNICIAN_AND_OPERATOR = ("agent.cli.status", "agent.cli.poll", "agent.cli.tail", "agent.cli.buffer",
                           "agent.cli.doctor", "agent.cli.scan", "agent.cli.validate",
                           "agent.cli.config", "agent.cli.fleet", "agent.cli.common",
                           "agent.diagnose.doctor", "agent.diagnose.scan", "agent.remote.fleet",
                           "agent.term")


def test_run_loads_the_runtime_and_none_of_the_technician_or_operator_commands(tmp_path):
    bad = tmp_path / "agent.toml"
    bad.write_text('site_id = "A1"\n')   # refused at once: run exits 2 before starting anything
    probe = (
        "import sys, json\n"
        "from agent.cli import main\n"
        "import agent.runtime.daemon\n"
        f"code = main(['run', '-c', {str(bad)!r}])\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, timeout=60)
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["code"] == 2
    loaded = set(doc["modules"])
    assert "agent.runtime.daemon" in loaded and "agent.cli.run" in loaded
    assert not loaded & set(TECHNICIAN_AND_OPERATOR), sorted(loaded & set(TECHNICIAN_AND_OPERATOR))


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports at its top level (what runs when it is imported)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_the_cli_package_has_no_import_cycles():
    modules = {f"agent.cli.{p.stem}" if p.stem != "__init__" else "agent.cli": p
               for p in CLI.glob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, " -> ".join(trail + (name,))
        for nxt in graph[name]:
            visit(nxt, trail + (name,))
    for name in graph:
        visit(name, ())


def test_every_command_has_its_own_module():
    from agent.cli import COMMANDS
    assert {m for m, _ in COMMANDS.values()} == {
        "agent.cli.run", "agent.cli.validate", "agent.cli.status", "agent.cli.doctor",
        "agent.cli.poll", "agent.cli.tail", "agent.cli.buffer", "agent.cli.scan",
        "agent.cli.config", "agent.cli.fleet", "agent.cli.events"}
    assert not (CLI / "tech.py").exists()
