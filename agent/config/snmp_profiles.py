"""SNMP profiles: which OIDs and tables a device is read for, and how they become metrics.

A profile is a TOML file named ``snmp-<name>.toml``. The agent ships some in ``agent/profiles/``
(``system``, ``if-mib``, ``host-resources``, ``ups-mib``, ``teltonika``); a device lists the ones
it uses, and ``profiles_dir`` names a folder whose files add profiles or replace shipped ones of
the same name, so supporting another vendor is editing a file, not the code::

    [[devices]]
    name = "ups"
    kind = "snmp"
    host = "192.168.1.30"
    profiles = ["system", "ups-mib"]
    profiles_dir = "/etc/clinic-agent/profiles"

A profile holds any of (see docs/snmp-profiles.md for the full reference)::

    [[scalars]]                       # one value: GETNEXT of its OID, expects OID.0
    metric = "battery.runtime_s"
    oid = "1.3.6.1.2.1.33.1.2.3"      # upsEstimatedMinutesRemaining
    scale = 60
    unit = "s"

    [[tables]]                        # a conceptual table, walked column by column
    prefix = "output"
    oid = "1.3.6.1.2.1.33.1.4.4.1"    # upsOutputEntry
    columns = { voltage = 2, load = 5 }
    row = "l{index}"                  # output.l1.voltage ...; one row only: output.voltage
      [[tables.metrics]]
      metric = "load_pct"
      value = "load"                  # a column, or arithmetic on columns: "used * units"
      unit = "%"
      summary = "max"                 # also output.load_pct = the highest of the rows

    [interfaces]                      # the IF-MIB engine (rates, WAN), in if-mib only

Profiles are read and checked once, when the config is parsed; every problem is reported with
the file and key path, like any other config problem.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config.fields import Problem, Problems, Table, closest, show
from agent.config.profiles import NAME_PATTERN, SNMP_PROFILES, shipped_dir
from agent.config.toml_text import parse_bounded
from agent.errors import ConfigError
from agent.i18n import text

Oid = tuple[int, ...]

BUILTIN_DIR = shipped_dir()
FILE_PREFIX = SNMP_PROFILES.prefix
PROFILE_NAME_PATTERN = NAME_PATTERN      # one rule for both kinds' profiles (config/profiles.py)
DEFAULT_PROFILES = ("system", "if-mib", "host-resources")
VALUE_TYPES = ("number", "string", "bool")
SUMMARIES = ("sum", "max", "min", "mean")
METRIC_PATTERN = r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*"
ROW_FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# Roles a scalar can play for the source beyond being reported.
SCALAR_ROLES = ("uptime",)
# The IF-MIB columns the interface engine understands, by role.
INTERFACE_ROLES = ("descr", "type", "speed", "admin", "oper", "in32", "out32", "name", "in64",
                   "out64", "high_speed", "alias", "discontinuity")
INTERFACE_REQUIRED = ("admin", "oper")
INTERFACE_METRICS = {"oper_up": "oper_up", "admin_up": "admin_up", "speed": "speed_bps",
                     "in_rate": "in_bps", "out_rate": "out_bps", "name": "name"}


# -- compiled profile objects -------------------------------------------------------------------

@dataclass(frozen=True)
class ValueSpec:
    """How one SNMP value becomes a metric value."""

    type: str = "number"                       # number | string | bool
    scale: float = 1.0
    unit: str = ""
    digits: int | None = None                  # round to this many decimals
    enum: tuple[tuple[int, str], ...] = ()     # number -> label (type becomes string)
    true_if: tuple[Any, ...] = ()              # bool: values (numbers or strings) meaning true

    def label(self, number: int) -> str | None:
        return next((text for n, text in self.enum if n == number), None)


@dataclass(frozen=True)
class ScalarSpec:
    metric: str
    oid: Oid
    value: ValueSpec
    role: str | None = None
    on_change: bool = False      # reported on the first poll and when it changes only
    profile: str = ""


@dataclass(frozen=True)
class Expr:
    """Arithmetic over a row's columns, compiled from a string such as ``"100 * used / size"``."""

    text: str
    columns: tuple[str, ...]
    evaluate: Callable[[dict[str, float]], float] = field(compare=False, repr=False)


@dataclass(frozen=True)
class TableMetric:
    metric: str
    expr: Expr
    value: ValueSpec
    per_row: bool = True
    summary: str | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str                                  # for messages: "<profile>.tables[i]"
    prefix: str
    entry: Oid
    columns: tuple[tuple[str, int], ...]       # column name -> sub-identifier under entry
    static: frozenset[str]                     # read on discovery polls only
    where: tuple[tuple[str, tuple[Any, ...]], ...]
    row: str                                   # row key template: "{index}", "l{index}", "{descr}"
    collapse_single_row: bool
    metrics: tuple[TableMetric, ...]
    profile: str = ""

    def column_oid(self, name: str) -> Oid:
        return self.entry + (dict(self.columns)[name],)


@dataclass(frozen=True)
class DefaultRouteSpec:
    """A route table column whose first row, if its index starts with ``index_prefix``, is the
    default route and holds the ifIndex of the interface carrying it."""

    oid: Oid
    index_prefix: Oid


@dataclass(frozen=True)
class InterfaceSpec:
    prefix: str
    wan_key: str
    count: Oid | None                                # ifNumber: ends the table walk early
    columns: tuple[tuple[str, Oid], ...]             # role -> column OID
    metrics: tuple[tuple[str, str], ...]             # role -> metric name under if.<key>.
    wan_types: tuple[int, ...]
    wan_names: tuple[str, ...]                       # regular expressions, in order of trust
    default_routes: tuple[DefaultRouteSpec, ...]
    profile: str = ""

    def column(self, role: str) -> Oid | None:
        return dict(self.columns).get(role)

    def metric(self, role: str) -> str:
        return dict(self.metrics)[role]


@dataclass(frozen=True)
class ProfileSet:
    """The profiles of one device, merged: what one poll reads and reports."""

    names: tuple[str, ...]
    scalars: tuple[ScalarSpec, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    interfaces: InterfaceSpec | None = None


# -- loading ------------------------------------------------------------------------------------

def available(profiles_dir: str | None) -> dict[str, Path]:
    """Profile name -> file: the shipped ones, replaced or extended by ``profiles_dir``."""
    return SNMP_PROFILES.available(profiles_dir)


def load(t: Table, key: str, names: tuple[str, ...], profiles_dir: str | None) -> ProfileSet:
    """Read and merge the named profiles, recording problems on ``t`` under ``key``."""
    files = available(profiles_dir)
    scalars: list[ScalarSpec] = []
    tables: list[TableSpec] = []
    interfaces: InterfaceSpec | None = None
    metrics_seen: dict[str, str] = {}
    for i, name in enumerate(names):
        where = f"{key}[{i}]"
        if name in names[:i]:
            t.problem(where, "cfg.listed_twice", got=show(name))
            continue
        path = files.get(name)
        if path is None:
            guess = closest(name, files)
            args = {"got": show(name), "names": ", ".join(sorted(files)),
                    "suggestion": show(guess) if guess else ""}
            if profiles_dir:
                t.problem(where, "cfg.snmp.no_profile_dir", builtin=str(BUILTIN_DIR),
                          dir=profiles_dir, **args)
            else:
                t.problem(where, "cfg.snmp.no_profile", prefix=FILE_PREFIX, **args)
            continue
        problems = Problems()
        profile = _parse_file(path, name, problems)
        for problem in problems.items:
            if problem.path:
                t.problem(where, "cfg.in_file_key", file=str(path), key=problem.path,
                          message=problem.text)
            else:
                t.problem(where, "cfg.in_file", file=str(path), message=problem.text)
        if profile is None:
            continue
        for metric in [s.metric for s in profile.scalars] + \
                [f"{tb.prefix}.*.{m.metric}" for tb in profile.tables for m in tb.metrics]:
            if metric in metrics_seen and metrics_seen[metric] != name:
                t.problem(where, "cfg.snmp.metric_twice", file=str(path), metric=metric,
                          other=show(metrics_seen[metric]))
            metrics_seen[metric] = name
        scalars += profile.scalars
        tables += profile.tables
        if profile.interfaces is not None:
            if interfaces is not None:
                t.problem(where, "cfg.snmp.interfaces_twice", file=str(path),
                          other=show(interfaces.profile))
            else:
                interfaces = profile.interfaces
    return ProfileSet(names=tuple(names), scalars=tuple(scalars), tables=tuple(tables),
                      interfaces=interfaces)


def _parse_file(path: Path, name: str, problems: Problems) -> ProfileSet | None:
    try:
        data = parse_bounded(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        problems.add("", text("cfg.profile_cannot_read", error=str(exc)))
        return None
    except ConfigError as exc:
        for problem in exc.details:
            if isinstance(problem, Problem):
                problems.add(problem.path, problem.text)
            else:
                problems.add("", text("cfg.not_toml", error=str(problem)))
        return None
    root = problems.root(data)
    root.str("description", "")
    scalars = tuple(s for s in (_scalar(t, name) for t in root.tables("scalars")) if s)
    tables = tuple(s for s in (_table(t, name, i) for i, t in enumerate(root.tables("tables")))
                   if s)
    interfaces = _interfaces(root.table("interfaces"), name) if root.has("interfaces") else None
    root.finish()
    return ProfileSet(names=(name,), scalars=scalars, tables=tables, interfaces=interfaces)


def parse_oid(t: Table, key: str, default: Any = ...) -> Oid | None:
    """A dotted numeric OID ("1.3.6.1.2.1.1.3", a leading dot allowed)."""
    written = t.str(key) if default is ... else t.str(key, default)
    if written is None:
        return None
    if not re.fullmatch(r"\.?\d+(\.\d+)+", written):
        t.problem(key, "cfg.expected", what=text("cfg.what.oid"), got=show(written))
        return None
    oid = tuple(int(x) for x in written.strip(".").split("."))
    if any(x >= 2**32 for x in oid):
        t.problem(key, "cfg.snmp.oid_too_big", got=show(written))
        return None
    return oid


def _value_spec(t: Table, *, default_type: str = "number") -> ValueSpec:
    kind = t.str("type", default_type, choices=VALUE_TYPES)
    scale = t.float("scale", 1.0)
    unit = t.str("unit", "")
    digits = t.int("digits", None, min=0, max=12)
    enum: list[tuple[int, str]] = []
    raw_enum = t.raw("enum")
    if raw_enum is not None:
        if not isinstance(raw_enum, dict):
            t.problem("enum", "cfg.snmp.enum_table")
        else:
            for k, v in raw_enum.items():
                if not re.fullmatch(r"-?\d+", k) or not isinstance(v, str):
                    t.problem(f"enum.{k}", "cfg.snmp.enum_entry", key=k, got=show(v))
                else:
                    enum.append((int(k), v))
        if kind != "number" or t.has("scale"):
            t.problem("enum", "cfg.snmp.enum_raw")
        kind = "string"
    true_if: list[Any] = []
    raw_true = t.raw("true_if")
    if raw_true is not None:
        if not isinstance(raw_true, list) or not raw_true or not all(
                isinstance(x, (int, str)) and not isinstance(x, bool) for x in raw_true):
            t.problem("true_if", "cfg.snmp.true_if_list")
        else:
            true_if = list(raw_true)
        if t.has("type") and kind != "bool":
            t.problem("true_if", "cfg.snmp.true_if_bool")
        kind = "bool"
    elif kind == "bool":
        true_if = [1]      # TruthValue: true(1), false(2)
    return ValueSpec(type=kind or "number", scale=1.0 if scale is None else scale,
                     unit=unit or "", digits=digits, enum=tuple(enum), true_if=tuple(true_if))


def _scalar(t: Table, profile: str) -> ScalarSpec | None:
    metric = t.str("metric", pattern=METRIC_PATTERN, what=text("cfg.what.metric_dotted"))
    oid = parse_oid(t, "oid")
    role = t.str("role", None, choices=SCALAR_ROLES)
    on_change = t.bool("on_change", False)
    value = _value_spec(t)
    t.finish()
    if metric is None or oid is None:
        return None
    if oid[-1] == 0 and len(oid) > 2:
        t.problem("oid", "cfg.snmp.oid_instance")
        return None
    return ScalarSpec(metric, oid, value, role, bool(on_change), profile)


def _table(t: Table, profile: str, i: int) -> TableSpec | None:
    prefix = t.str("prefix", pattern=METRIC_PATTERN, what=text("cfg.what.metric_prefix"))
    entry = parse_oid(t, "oid")
    columns: dict[str, int] = {}
    raw = t.raw("columns")
    if not isinstance(raw, dict) or not raw:
        t.problem("columns", "cfg.snmp.columns_table")
    else:
        for name, sub in raw.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                t.problem(f"columns.{name}", "cfg.snmp.column_name")
            elif isinstance(sub, bool) or not isinstance(sub, int) or not 1 <= sub < 2**32:
                t.problem(f"columns.{name}", "cfg.expected", what=text("cfg.what.column_number"),
                          got=show(sub))
            else:
                columns[name] = sub
    static = t.str_list("static", ()) or ()
    for name in static:
        if name not in columns:
            t.problem("static", "cfg.snmp.not_a_column", got=show(name))
    where: list[tuple[str, tuple[Any, ...]]] = []
    raw_where = t.raw("where")
    if raw_where is not None:
        if not isinstance(raw_where, dict):
            t.problem("where", "cfg.snmp.where_table")
        else:
            for name, wanted in raw_where.items():
                values = wanted if isinstance(wanted, list) else [wanted]
                if name not in columns:
                    t.problem(f"where.{name}", "cfg.snmp.key_not_a_column")
                elif not values or not all(isinstance(v, (int, str)) and not isinstance(v, bool)
                                           for v in values):
                    t.problem(f"where.{name}", "cfg.snmp.where_value")
                else:
                    where.append((name, tuple(values)))
    row = t.str("row", "{index}")
    for name in ROW_FIELD.findall(row or ""):
        if name != "index" and name not in columns:
            t.problem("row", "cfg.snmp.row_field", field="{" + name + "}")
    collapse = t.bool("collapse_single_row", False)
    metrics = []
    for mt in t.tables("metrics", required=True):
        metric = mt.str("metric", pattern=METRIC_PATTERN, what=text("cfg.what.metric_dotted"))
        expr = _expr(mt, "value", tuple(columns))
        per_row = mt.bool("per_row", True)
        summary = mt.str("summary", None, choices=SUMMARIES)
        if not per_row and summary is None:
            mt.problem("per_row", "cfg.snmp.per_row")
        value = _value_spec(mt)
        mt.finish()
        if metric and expr:
            metrics.append(TableMetric(metric, expr, value, bool(per_row), summary))
    t.finish()
    if prefix is None or entry is None or not columns:
        return None
    return TableSpec(name=f"{profile}.tables[{i}]", prefix=prefix, entry=entry,
                     columns=tuple(columns.items()), static=frozenset(static), where=tuple(where),
                     row=row or "{index}", collapse_single_row=bool(collapse),
                     metrics=tuple(metrics), profile=profile)


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.Load,
                  ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)


def _expr(t: Table, key: str, columns: tuple[str, ...]) -> Expr | None:
    """A column name or + - * / arithmetic over columns and numbers; nothing else parses."""
    written = t.str(key)
    if written is None:
        return None
    try:
        tree = ast.parse(written, mode="eval")
    except SyntaxError:
        t.problem(key, "cfg.expected", what=text("cfg.what.expression"), got=show(written))
        return None
    names: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES) or (
                isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                                    or not isinstance(node.value, (int, float)))):
            t.problem(key, "cfg.snmp.expr_allowed", got=show(written))
            return None
        if isinstance(node, ast.Name):
            if node.id not in columns:
                t.problem(key, "cfg.snmp.expr_column", got=show(node.id),
                          columns=", ".join(columns))
                return None
            names.append(node.id)
    code = compile(tree, f"<{written}>", "eval")

    def evaluate(row: dict[str, float]) -> float:
        return float(eval(code, {"__builtins__": {}}, row))   # noqa: S307 - checked AST above
    return Expr(written, tuple(dict.fromkeys(names)), evaluate)


def _interfaces(t: Table, profile: str) -> InterfaceSpec | None:
    prefix = t.str("prefix", "if", pattern=METRIC_PATTERN, what=text("cfg.what.metric_prefix"))
    wan_key = t.str("wan_key", "wan", pattern=r"[a-z0-9_]+", what=text("cfg.what.lower_word"))
    count = parse_oid(t, "count", None)
    ct = t.table("columns", required=True)
    columns: list[tuple[str, Oid]] = []
    for role in INTERFACE_ROLES:
        oid = parse_oid(ct, role, None)
        if oid is not None:
            columns.append((role, oid))
        elif role in INTERFACE_REQUIRED and not ct.has(role):
            ct.problem(role, "cfg.snmp.status_column")
    ct.finish()
    mt = t.table("metrics")
    metrics = [(role, mt.str(role, default, pattern=r"[a-z0-9_]+",
                             what=text("cfg.what.lower_word"))
                or default) for role, default in INTERFACE_METRICS.items()]
    mt.finish()
    wt = t.table("wan")
    wan_types = []
    raw_types = wt.raw("types", [])
    if not isinstance(raw_types, list):
        wt.problem("types", "cfg.expected", what=text("cfg.what.iftype_list"), got=show(raw_types))
        raw_types = []
    for n, v in enumerate(raw_types):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            wt.problem(f"types[{n}]", "cfg.expected", what=text("cfg.what.iftype"), got=show(v))
        else:
            wan_types.append(v)
    wan_names = wt.str_list("names", ()) or ()
    for n, pattern in enumerate(wan_names):
        try:
            re.compile(pattern)
        except re.error as exc:
            wt.problem(f"names[{n}]", "cfg.bad_regex", error=str(exc))
    routes = []
    for rt in wt.tables("default_route"):
        oid = parse_oid(rt, "oid")
        index_prefix = rt.str("index_prefix", "")
        if index_prefix and not re.fullmatch(r"\d+(\.\d+)*", index_prefix):
            rt.problem("index_prefix", "cfg.expected", what=text("cfg.what.dotted_numbers"),
                       got=show(index_prefix))
            index_prefix = ""
        rt.finish()
        if oid is not None:
            routes.append(DefaultRouteSpec(oid, tuple(int(x) for x in index_prefix.split(".")
                                                      if x)))
    wt.finish()
    t.finish()
    if not any(role == "admin" for role, _ in columns) \
            or not any(role == "oper" for role, _ in columns):
        return None
    return InterfaceSpec(prefix=prefix or "if", wan_key=wan_key or "wan", count=count,
                         columns=tuple(columns), metrics=tuple(metrics),
                         wan_types=tuple(wan_types), wan_names=tuple(wan_names),
                         default_routes=tuple(routes), profile=profile)


def check_dir(t: Table, key: str, path: str | None) -> str | None:
    """``profiles_dir``: an absolute path to an existing folder (the agent runs from /)."""
    if path is None:
        return None
    if not os.path.isabs(path):
        t.problem(key, "cfg.expected_absolute", got=show(path))
        return None
    if not os.path.isdir(path):
        t.problem(key, "cfg.not_a_folder", got=show(path))
        return None
    return path
