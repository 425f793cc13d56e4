"""Turns SNMP values into metric values the way a profile says (pure functions, no I/O).

``convert`` applies a ``ValueSpec`` to one ``VarBind``; ``table_samples`` turns the walked rows
of one profile table into samples, per row and summarised. Both return what they could not use
as ``{metric: reason}`` so the source can report skipped metrics once (``snmp.skipped``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from agent.config.snmp_profiles import ROW_FIELD, TableMetric, TableSpec, ValueSpec
from agent.readings import Sample, Value
from agent.sources.snmp_client import (
    END_OF_MIB,
    IPADDRESS,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NULL,
    OBJECT_ID,
    STRING,
    Oid,
    VarBind,
)

NOT_OFFERED = "not offered by the device"
# snmp.skipped is a status line, not a dump: past this many characters it says "and N more".
SKIPPED_MAX_CHARS = 1500
_KIND_WORDS = {NULL: "NULL", NO_SUCH_INSTANCE: "noSuchInstance", NO_SUCH_OBJECT: "noSuchObject",
               END_OF_MIB: "endOfMibView", STRING: "a string", OBJECT_ID: "an OID",
               IPADDRESS: "an IP address"}
_NUMBER_TEXT = re.compile(r"\s*-?\d+(\.\d+)?\s*")


def kind_words(kind: str) -> str:
    """How a technician reads a value kind in a reason: "NULL", "a string" ..."""
    return _KIND_WORDS.get(kind, kind)


def clean_text(raw: bytes) -> str:
    """Decode an SNMP string, dropping the NUL padding some agents add."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "").strip()


def dotted(oid: Iterable[int]) -> str:
    return ".".join(map(str, oid))


def raw_value(vb: VarBind) -> int | str | None:
    """An integer for numeric kinds, text for strings, OIDs and addresses; None for exceptions."""
    if vb.is_number and isinstance(vb.value, int):
        return vb.value
    if vb.kind == STRING and isinstance(vb.value, bytes):
        return clean_text(vb.value)
    if vb.kind == OBJECT_ID and isinstance(vb.value, tuple):
        return dotted(vb.value)
    if vb.kind == IPADDRESS and isinstance(vb.value, bytes) and len(vb.value) == 4:
        return dotted(vb.value)
    return None


def number(vb: VarBind) -> tuple[float | int | None, str | None]:
    """The numeric value of ``vb`` (numeric strings too: some vendors send "-97"), or a reason."""
    raw = raw_value(vb)
    if isinstance(raw, int):
        return raw, None
    if isinstance(raw, str) and _NUMBER_TEXT.fullmatch(raw):
        value = float(raw)
        return (int(value) if value.is_integer() else value), None
    if vb.is_exception:
        return None, f"the device sent {kind_words(vb.kind)}"
    return None, f"expected a number, the device sent {kind_words(vb.kind)}"


def scaled(value: float | int, spec: ValueSpec) -> float | int:
    """Apply scale and rounding; integers stay integers when nothing changes them."""
    if spec.digits is None and isinstance(value, int) and float(spec.scale).is_integer():
        return value * int(spec.scale)
    result = value * spec.scale
    # round() also removes binary noise such as 59.900000000000006 from 599 * 0.1.
    return round(result, spec.digits if spec.digits is not None else 6)


def convert(vb: VarBind | None, spec: ValueSpec) -> tuple[Value, str | None]:
    """(metric value, None), or (None, why it cannot be used)."""
    if vb is None:
        return None, NOT_OFFERED
    if vb.is_exception:
        return None, f"the device sent {kind_words(vb.kind)}"
    if spec.type == "bool":
        raw: float | str | None = raw_value(vb)
        if raw is None:
            return None, f"expected a number or a string, the device sent {kind_words(vb.kind)}"
        if isinstance(raw, str) and any(isinstance(t, int) for t in spec.true_if):
            raw_num, _ = number(vb)
            raw = raw_num if raw_num is not None else raw
        return raw in spec.true_if, None
    if spec.enum:
        raw, why = number(vb)
        if raw is None or not isinstance(raw, int):
            return None, why or "expected an integer"
        return spec.label(raw) or f"unknown({raw})", None
    if spec.type == "string":
        raw = raw_value(vb)
        if raw is None:
            return None, f"expected a string, the device sent {kind_words(vb.kind)}"
        return str(raw), None
    value, why = number(vb)
    if value is None:
        return None, why
    return scaled(value, spec), None


# -- tables -------------------------------------------------------------------------------------

Rows = dict[Oid, dict[str, VarBind]]      # row index suffix -> column name -> value


def row_matches(spec: TableSpec, row: dict[str, VarBind]) -> bool:
    """Whether a row passes the table's ``where`` filter."""
    for column, wanted in spec.where:
        vb = row.get(column)
        raw = raw_value(vb) if vb is not None else None
        if raw is None:
            return False
        if not any(raw == w or (isinstance(w, str) and str(raw).strip(".") == w.strip("."))
                   for w in wanted):
            return False
    return True


def row_key(spec: TableSpec, index: Oid, row: dict[str, VarBind]) -> str:
    """The row's metric segment from the ``row`` template: "l{index}" -> "l1"."""
    def field(m: re.Match[str]) -> str:
        if m[1] == "index":
            return dotted(index)
        vb = row.get(m[1])
        raw = raw_value(vb) if vb is not None else None
        return str(raw) if raw not in (None, "") else dotted(index)
    key = ROW_FIELD.sub(field, spec.row).lower()
    key = re.sub(r"[^a-z0-9_]+", "_", key).strip("_")
    return key or "row" + "_".join(map(str, index))


def table_samples(spec: TableSpec, rows: Rows) -> tuple[list[Sample], dict[str, str]]:
    """Samples of one table from its walked rows, and the metrics skipped with their reasons."""
    samples: list[Sample] = []
    skipped: dict[str, str] = {}
    selected = [(index, row) for index, row in sorted(rows.items()) if row_matches(spec, row)]
    if not selected:
        for m in spec.metrics:
            skipped[f"{spec.prefix}.{m.metric}"] = NOT_OFFERED
        return samples, skipped
    single = len(selected) == 1 and spec.collapse_single_row
    keys = {index: row_key(spec, index, row) for index, row in selected}
    for m in spec.metrics:
        values: list[float] = []
        for index, row in selected:
            name = f"{spec.prefix}.{m.metric}" if single \
                else f"{spec.prefix}.{keys[index]}.{m.metric}"
            value, why = _row_value(m, row)
            if why is not None:
                if m.per_row or single:
                    skipped[name] = why
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.append(value)
            if m.per_row or single:
                samples.append(Sample(name, value, m.value.unit))
        if m.summary and not single and (len(selected) > 1 or not m.per_row):
            name = f"{spec.prefix}.{m.metric}"
            if values:
                samples.append(Sample(name, _summary(m.summary, values, m.value), m.value.unit))
            else:
                skipped[name] = "no row had a usable value"
    return samples, skipped


def _row_value(m: TableMetric, row: dict[str, VarBind]) -> tuple[Value, str | None]:
    if m.expr.columns == (m.expr.text.strip(),):
        # A plain column: every value type applies (strings, enums, bools).
        return convert(row.get(m.expr.text.strip()), m.value)
    args: dict[str, float] = {}
    for column in m.expr.columns:
        vb = row.get(column)
        if vb is None:
            return None, NOT_OFFERED
        value, why = number(vb)
        if value is None:
            return None, why
        args[column] = value
    try:
        result = m.expr.evaluate(args)
    except ZeroDivisionError:
        return None, f"{m.expr.text}: division by zero"
    if not math.isfinite(result):
        return None, f"{m.expr.text}: not a finite number"
    return scaled(int(result) if result.is_integer() else result, m.value), None


def _summary(kind: str, values: list[float], spec: ValueSpec) -> float | int:
    if kind == "sum":
        result = sum(values)
    elif kind == "max":
        result = max(values)
    elif kind == "min":
        result = min(values)
    else:
        result = sum(values) / len(values)
    if isinstance(result, float):
        result = round(result, spec.digits if spec.digits is not None else 6)
    return result


def format_skipped(skipped: dict[str, str], limit: int = SKIPPED_MAX_CHARS) -> str:
    """``{metric: reason}`` as "metric: reason; ..." sorted by metric, at most ``limit`` chars."""
    parts = [f"{metric}: {reason}" for metric, reason in sorted(skipped.items())]
    out: list[str] = []
    used = 0
    for n, part in enumerate(parts):
        if used + len(part) + 2 > limit and out:
            out.append(f"and {len(parts) - n} more")
            break
        out.append(part)
        used += len(part) + 2
    return "; ".join(out)
