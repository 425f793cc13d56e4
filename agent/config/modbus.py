"""Settings of a ``modbus`` device (UPS, power meter): the bus it hangs on and its register map.

A device entry names its bus (Modbus TCP, RTU on a serial port, or RTU frames tunnelled over TCP
by a cheap serial server), its unit id, and a list of ``[[devices.registers]]``, each one metric::

    [[devices]]
    name = "ups"
    kind = "modbus"
    host = "192.168.1.50"         # transport = "tcp" is the default
    unit_id = 1
    address_base = "modicon"      # addresses as printed in the manual: 30001 = input register 0

      [[devices.registers]]
      name = "input.voltage"
      address = 30001
      type = "uint16"
      scale = 0.1
      unit = "V"

Or, for a model with a profile (agent/profiles/*.toml, see docs/modbus-profiles.md), only::

    [[devices]]
    name = "meter"
    kind = "modbus"
    transport = "rtu"
    serial_port = "/dev/ttyUSB0"
    unit_id = 1
    profile = "eastron-sdm630"    # its registers, address_base, order and read limits
    # profiles_dir = "/etc/clinic-agent/profiles"   # modbus-eastron-sdm630.toml here wins

      [[devices.registers]]       # optional: add registers, or replace the profile's by name
      name = "current.n"
      address = 30225
      type = "float32"
      unit = "A"

Everything is checked here, once, and every problem is reported with its key path (a problem in a
profile file names the device, the profile and the file). Addresses are converted to the 0-based
"wire" address sent in the request; the address as written is kept for messages, so a technician
reads the number from the manual back in the error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

from agent.config import modbus_profiles
from agent.config.fields import Table, closest, show
from agent.config.modbus_profiles import PROFILE_NAME_PATTERN, ProfileInfo, ProfileSource
from agent.config.toml_text import parse_bounded
from agent.errors import ConfigError
from agent.i18n import text

TRANSPORTS = ("tcp", "rtu", "rtu_over_tcp")
TABLES = ("holding", "input", "coil", "discrete")
BIT_TABLES = ("coil", "discrete")
TYPES = ("int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64",
         "string", "bit")
# Registers each numeric type occupies.
TYPE_WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
              "float32": 2, "float64": 4, "bit": 1}
INTEGER_TYPES = ("int16", "uint16", "int32", "uint32", "int64", "uint64")
ORDERS = {"ABCD": ("big", "big"), "CDAB": ("little", "big"),
          "BADC": ("big", "little"), "DCBA": ("little", "little")}   # -> (word_order, byte_order)

# Modbus protocol limits: one read returns at most 125 registers or 2000 bits.
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000

METRIC_NAME_PATTERN = r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*"
FLAG_NAME_PATTERN = r"[a-z0-9_]+"
RESERVED_PREFIX = "poll."   # the poller's own metrics (poll.status, ...)

# The baud rates serial devices and USB adapters use; anything else is almost always a typo.
STANDARD_BAUDRATES = (300, 600, 1200, 2400, 4800, 9600, 14400, 19200, 28800, 38400, 57600,
                      76800, 115200, 230400, 460800, 921600)

# Serial line defaults. RTU needs a silent interval between frames (3.5 characters, ~4 ms at
# 9600 baud), but USB-RS485 adapters and slow UPS firmware need much more in practice; 30 ms is
# what Home Assistant's modbus integration settled on for serial lines.
DEFAULT_RTU_FRAME_GAP_MS = 30


@dataclass(frozen=True)
class RegisterSpec:
    """One configured value: where it lives on the device and how to turn it into a metric.

    ``address`` is the 0-based address sent on the wire; ``label`` is the address as the
    technician wrote it (e.g. "40010" or "input register 9"), for messages.
    """

    name: str
    table: str                      # holding | input | coil | discrete
    address: int                    # 0-based wire address
    label: str
    type: str                       # see TYPES; coil/discrete are always "bit"
    count: int                      # registers (or bits, for coil/discrete) it occupies
    bit: int | None = None          # for type "bit" in a holding/input register
    word_order: str = "big"
    byte_order: str = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    enum: tuple[tuple[int, str], ...] = ()
    flags: tuple[tuple[int, str], ...] = ()

    @property
    def end(self) -> int:
        """One past the last address this register occupies."""
        return self.address + self.count


@dataclass(frozen=True)
class ModbusSettings:
    """A validated ``kind = "modbus"`` device: its bus, its unit and its registers."""

    transport: str                  # tcp | rtu | rtu_over_tcp
    host: str | None
    port: int | None
    serial_port: str | None
    baudrate: int
    parity: str
    stopbits: int
    bytesize: int
    unit_id: int
    frame_gap_ms: int
    max_registers_per_read: int
    max_gap: int
    address_base: int | str         # 0, 1 or "modicon"
    registers: tuple[RegisterSpec, ...]
    profile: ProfileInfo | None = None

    @property
    def where(self) -> str:
        """The bus in words, for messages: "192.168.1.50:502" or "/dev/ttyUSB0"."""
        if self.transport == "rtu":
            return str(self.serial_port)
        return f"{self.host}:{self.port}"

    @property
    def line(self) -> str:
        """Serial line settings in the usual short form, e.g. "9600 8N1"."""
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


def parse(t: Table) -> ModbusSettings:
    """Validate the modbus keys of one ``[[devices]]`` table (``t``).

    Problems are recorded on ``t``'s problem list with their key paths; the caller (devices.py)
    checks the device table for unknown keys, this function checks each register table (and
    those of the device's profile, if it has one).
    """
    transport = t.str("transport", "tcp", choices=TRANSPORTS)
    if t.has("transport") and t.raw("transport") not in TRANSPORTS:
        transport = None   # already reported; nothing that depends on it is judged
    serial = transport == "rtu"

    host = port = serial_port = None
    if serial:
        serial_port = t.str("serial_port", pattern=r"/\S+", what=text("cfg.what.serial_port"))
        for key in ("host", "port"):
            if t.has(key):
                t.raw(key)
                t.problem(key, "cfg.modbus.tcp_only")
    elif transport is not None:
        host = t.host("host")
        port = t.int("port", 502, min=1, max=65535)
        if t.has("serial_port"):
            t.raw("serial_port")
            t.problem("serial_port", "cfg.modbus.rtu_only")
    else:
        # A misspelt transport: which keys belong cannot be told, so none is judged.
        for key in ("host", "port", "serial_port"):
            t.raw(key)

    baudrate = _baudrate(t)
    parity = t.str("parity", "N", choices=("N", "E", "O"))
    stopbits = t.int("stopbits", 1, min=1, max=2)
    bytesize = t.int("bytesize", 8, min=7, max=8)
    if not serial and transport is not None:
        # Over TCP the gateway's own settings decide the serial line; saying otherwise here
        # would suggest a fix that changes nothing.
        for key in ("baudrate", "parity", "stopbits", "bytesize"):
            if t.has(key):
                t.problem(key, "cfg.modbus.serial_only")

    # TCP-native devices often answer only on unit 0 or 255; on a serial bus 1-247 are the
    # addressable units (0 is broadcast, which never answers).
    if transport == "tcp":
        unit_id = t.int("unit_id", 1, min=0, max=255)
    else:
        unit_id = t.int("unit_id", 1, min=1, max=247)
    default_gap = 0 if transport == "tcp" else DEFAULT_RTU_FRAME_GAP_MS
    frame_gap_ms = t.int("frame_gap_ms", default_gap, min=0, max=5000)

    profile = _load_profile(t)
    # A profile's settings are the device's defaults; the device's own keys still win.
    max_per_read = t.int("max_registers_per_read",
                         profile.max_registers_per_read if profile else MAX_REGISTERS_PER_READ,
                         min=1, max=MAX_REGISTERS_PER_READ)
    max_gap = t.int("max_gap", profile.max_gap if profile else 8, min=0,
                    max=MAX_REGISTERS_PER_READ)
    address_base = _address_base(t, profile.address_base if profile else 0)
    # ``order`` on the device itself: the word/byte order of its registers that do not say.
    order = _parse_order(t, profile.order if profile else ORDERS["ABCD"])

    if profile is None:
        # A profile that could not be used was reported already: no "registers missing" too.
        asked = t.has("profile")
        tables = t.tables("registers", required=not asked)
        if t.has("registers") and isinstance(t.raw("registers"), list) and not tables \
                and not asked:
            t.problem("registers", "cfg.modbus.no_registers")
        registers = _unique(_parse_registers(tables, address_base, max_per_read or 1, order))
    else:
        # The profile's addresses are numbered as in its source document, whatever numbering
        # the device entry uses for registers of its own.
        inherited = _parse_registers(profile.register_tables, profile.address_base,
                                     max_per_read or 1, profile.order)
        own = _parse_registers(t.tables("registers"), address_base, max_per_read or 1, order)
        replaced = {spec.name for spec, _ in own}
        registers = _unique([(s, rt) for s, rt in inherited if s.name not in replaced] + own)

    return ModbusSettings(
        transport=transport or "tcp", host=host, port=port, serial_port=serial_port,
        baudrate=baudrate, parity=parity, stopbits=stopbits, bytesize=bytesize,
        unit_id=unit_id, frame_gap_ms=frame_gap_ms, max_registers_per_read=max_per_read,
        max_gap=max_gap, address_base=address_base, registers=tuple(registers),
        profile=profile.info if profile else None)


def _baudrate(t: Table) -> int:
    """The serial speed, from the standard list; a typo gets the likely one suggested."""
    raw = t.raw("baudrate", 9600)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in STANDARD_BAUDRATES:
        return raw
    if not isinstance(raw, int) or isinstance(raw, bool):
        t.int("baudrate", 9600, min=300, max=1_000_000)   # says what is wrong with the value
        return 9600
    # A zero too many or too few (96000, 960) is the usual slip; otherwise the nearest.
    guess = next((b for b in (raw // 10 if raw % 10 == 0 else 0, raw * 10)
                  if b in STANDARD_BAUDRATES), None)
    if guess is None:
        guess = min(STANDARD_BAUDRATES, key=lambda b: abs(b - raw))
    t.problem("baudrate", "cfg.modbus.baudrate", got=raw, suggestion=guess)
    return 9600


def _address_base(t: Table, default: int | str = 0) -> int | str:
    raw = t.raw("address_base", default)
    if raw in (0, 1, "modicon") and not isinstance(raw, bool):
        return cast("int | str", raw)
    t.problem("address_base", "cfg.expected", what=text("cfg.what.address_base"), got=show(raw))
    return default


def _parse_registers(tables: list[Table], address_base: int | str, max_per_read: int,
                     order: tuple[str, str]) -> list[tuple[RegisterSpec, Table]]:
    """Each valid register with the table it came from (for messages about it)."""
    out: list[tuple[RegisterSpec, Table]] = []
    for rt in tables:
        spec = _parse_register(rt, address_base, max_per_read, order)
        rt.finish()
        if spec is not None:
            out.append((spec, rt))
    return out


def _unique(registers: list[tuple[RegisterSpec, Table]]) -> list[RegisterSpec]:
    """The specs, after checking that every metric (flags included) has one source."""
    specs: list[RegisterSpec] = []
    names: dict[str, str] = {}
    for spec, rt in registers:
        for metric in [spec.name] + [f"{spec.name}.{flag}" for _, flag in spec.flags]:
            if metric in names:
                rt.problem("name", "cfg.name_used", name=show(metric), other=names[metric])
            names.setdefault(metric, rt.path)
        specs.append(spec)
    return specs


# -- profiles -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Profile:
    """A profile file, read and checked except for its registers (parsed with the device's)."""

    info: ProfileInfo
    address_base: int | str
    order: tuple[str, str]
    max_registers_per_read: int
    max_gap: int
    register_tables: list[Table]


class _ProfileTable(Table):
    """A profile file's top level: its problems read ``devices[0].profile "x" (FILE): key: ...``."""

    def key_path(self, key: str) -> str:
        return f"{self.path}: {key}"


def _load_profile(t: Table) -> _Profile | None:
    """The profile named by the device's ``profile`` key, or None (none asked, or unusable)."""
    profiles_dir = None
    if t.has("profiles_dir"):
        own_dir = t.str("profiles_dir", pattern=r"/.*", what=text("cfg.what.profiles_dir"))
        why = modbus_profiles.check_profiles_dir(own_dir) if own_dir else None
        if why:
            t.problem("profiles_dir", why.id, **why.args)
        profiles_dir = own_dir if own_dir and not why else None
        if not t.has("profile"):
            t.problem("profiles_dir", "cfg.modbus.profiles_dir_alone")
    if not t.has("profile"):
        return None
    name = t.str("profile", pattern=PROFILE_NAME_PATTERN, what=text("cfg.what.profile_name"))
    if name is None:
        return None
    try:
        found = modbus_profiles.read(name, profiles_dir)
    except modbus_profiles.ProfileNotReadable as exc:
        t.problem("profile", "cfg.profile_unreadable", path=exc.path, error=exc.error)
        return None
    if found is None:
        available = modbus_profiles.available(profiles_dir)
        args = {"name": show(name), "names": ", ".join(available) or "-"}
        msg = "cfg.profile_missing"
        if profiles_dir:
            args["dir"] = profiles_dir
            msg = "cfg.profile_missing_dir"
        guess = closest(name, available)
        if guess:
            t.problem("profile", msg + "_did_you_mean", suggestion=show(guess), **args)
        else:
            t.problem("profile", msg, **args)
        return None
    body, where, shipped = found
    try:
        data = parse_bounded(body, source=where)
    except ConfigError as exc:
        t.problem("profile", "cfg.profile_not_toml", name=show(name), where=where,
                  error="; ".join(exc.problems))
        return None

    pt = _ProfileTable(t.problems, data, f"{t.key_path('profile')} {show(name)} ({where})")
    description = pt.str("description")
    kind = pt.str("kind", choices=("ups", "meter"))
    source = _parse_source(pt.table("source", required=True))
    address_base = _address_base(pt, 0)
    order = _parse_order(pt, ORDERS["ABCD"])
    max_per_read = pt.int("max_registers_per_read", MAX_REGISTERS_PER_READ, min=1,
                          max=MAX_REGISTERS_PER_READ)
    max_gap = pt.int("max_gap", 8, min=0, max=MAX_REGISTERS_PER_READ)
    register_tables = pt.tables("registers", required=True)
    pt.finish()
    info = ProfileInfo(name=name, where=where, shipped=shipped, description=description or "",
                       kind=kind or "", source=source)
    return _Profile(info=info, address_base=address_base, order=order,
                    max_registers_per_read=max_per_read or MAX_REGISTERS_PER_READ,
                    max_gap=8 if max_gap is None else max_gap,
                    register_tables=register_tables)


def _parse_source(st: Table) -> ProfileSource:
    """A profile's ``[source]``: the document its addresses were checked against."""
    title = st.str("title", what=text("cfg.what.doc_title"))
    version = st.str("version", what=text("cfg.what.doc_version"))
    url = st.str("url", "", pattern=r"https?://\S+", what=text("cfg.what.url"))
    path = st.str("path", "")
    notes = st.str("notes", "")
    if not url and not path and not st.has("url"):
        st.problem("url", "cfg.profile_source_url")
    st.finish()
    return ProfileSource(title=title or "", version=version or "", url=url or "",
                         path=path or "", notes=notes or "")


# -- one register -------------------------------------------------------------------------------

def _parse_register(rt: Table, address_base: int | str, max_per_read: int,
                    default_order: tuple[str, str] = ("big", "big")) -> RegisterSpec | None:
    ok = True
    name = rt.str("name", pattern=METRIC_NAME_PATTERN, what=text("cfg.what.metric_name"))
    if name is not None and name.startswith(RESERVED_PREFIX):
        rt.problem("name", "cfg.modbus.reserved_name", prefix=RESERVED_PREFIX, got=show(name))
        ok = False
    ok &= name is not None

    table_given = rt.has("table")
    table = rt.str("table", "holding", choices=TABLES)
    ok &= table is not None
    address, table, label = _parse_address(rt, address_base, table, table_given)
    ok &= address is not None

    is_bit_table = table in BIT_TABLES
    type_ = rt.str("type", "bit" if is_bit_table else "int16", choices=TYPES)
    if is_bit_table and type_ not in (None, "bit"):
        rt.problem("type", "cfg.modbus.bit_table_type", table=table, got=show(type_))
        type_ = None
    ok &= type_ is not None

    count = 1
    if type_ == "string":
        length = rt.int("length", min=1, max=max_per_read)
        count = length or 1
        ok &= length is not None
    elif rt.has("length"):
        rt.raw("length")
        rt.problem("length", "cfg.modbus.length_string_only", got=show(type_))

    bit = None
    if type_ == "bit" and not is_bit_table:
        bit = rt.int("bit", min=0, max=15)
        ok &= bit is not None
    elif rt.has("bit"):
        rt.raw("bit")
        rt.problem("bit", "cfg.modbus.bit_only")
    if type_ in TYPE_WIDTH:
        count = TYPE_WIDTH[type_]

    word_order, byte_order = _parse_order(rt, default_order)

    numeric = type_ in INTEGER_TYPES or type_ in ("float32", "float64")
    scale = rt.float("scale", 1.0)
    if scale is not None and scale == 0:
        rt.problem("scale", "cfg.modbus.scale_zero")
    offset = rt.float("offset", 0.0)
    if not numeric and type_ is not None:
        for key in ("scale", "offset"):
            if rt.has(key):
                rt.problem(key, "cfg.modbus.numbers_only", got=show(type_))
    unit = rt.str("unit", "")

    enum = _parse_code_table(rt, "enum", type_, value_pattern=None)
    flags = _parse_code_table(rt, "flags", type_, value_pattern=FLAG_NAME_PATTERN)
    if enum and flags:
        rt.problem("flags", "cfg.modbus.enum_and_flags")

    if address is not None and address + count > 65536:
        rt.problem("address", "cfg.modbus.past_end", count=count, label=label)
        ok = False
    if not ok:
        return None
    assert address is not None   # ok says so
    return RegisterSpec(name=name, table=table, address=address, label=label, type=type_,
                        count=count, bit=bit, word_order=word_order, byte_order=byte_order,
                        scale=scale if scale else 1.0, offset=offset or 0.0, unit=unit or "",
                        enum=enum, flags=flags)


# Modicon ("984") addresses put the table in the leading digit: 40001 is holding register 0.
_MODICON = (
    # first, last, table, first wire address
    (1, 9999, "coil"), (10001, 19999, "discrete"), (30001, 39999, "input"),
    (40001, 49999, "holding"),
    (100001, 165536, "discrete"), (300001, 365536, "input"), (400001, 465536, "holding"),
)


def _parse_address(rt: Table, address_base: int | str, table: str | None,
                   table_given: bool) -> tuple[int | None, str, str]:
    """Return (wire address, table, label) for the ``address`` key of one register."""
    table = table or "holding"
    if address_base == "modicon":
        raw = rt.int("address", min=1, max=465536)
        if raw is None:
            return None, table, ""
        for first, last, tab in _MODICON:
            if first <= raw <= last:
                if table_given and tab != table:
                    rt.problem("table", "cfg.modbus.modicon_table", address=raw, table_of=tab,
                               got=show(table))
                return raw - first, tab, str(raw)
        rt.problem("address", "cfg.modbus.modicon_address", got=raw)
        return None, table, ""
    lo = 1 if address_base == 1 else 0
    raw = rt.int("address", min=lo, max=65535 + lo)
    if raw is None:
        return None, table, ""
    return raw - lo, table, f"{table} {'bit' if table in BIT_TABLES else 'register'} {raw}"


def _parse_order(rt: Table, default: tuple[str, str] = ("big", "big")) -> tuple[str, str]:
    """Word and byte order from either ``order = "CDAB"`` or ``word_order``/``byte_order``.

    ``default`` applies where neither is given: the device's (or profile's) own ``order``.
    """
    if rt.has("order"):
        # No guess: "ACBD" is as far from "ABCD" as from "CDAB", and a wrong order reads as data.
        order = rt.str("order", choices=tuple(ORDERS), suggest=False)
        if rt.has("word_order") or rt.has("byte_order"):
            rt.raw("word_order"), rt.raw("byte_order")
            rt.problem("order", "cfg.modbus.order_both")
        return ORDERS[order] if order else default
    word = rt.str("word_order", default[0], choices=("big", "little"))
    byte = rt.str("byte_order", default[1], choices=("big", "little"))
    return word or default[0], byte or default[1]


def _parse_code_table(rt: Table, key: str, type_: str | None,
                      value_pattern: str | None) -> tuple[tuple[int, str], ...]:
    """``enum = { 0 = "online", 1 = "on battery" }`` or ``flags = { 0 = "on_battery" }``."""
    if not rt.has(key):
        return ()
    raw = rt.raw(key)
    if type_ not in INTEGER_TYPES:
        rt.problem(key, "cfg.modbus.integers_only", got=show(type_))
        return ()
    if not isinstance(raw, dict) or not raw:
        rt.problem(key, "cfg.expected", what=text("cfg.what.code_table"), got=show(raw))
        return ()
    bits = TYPE_WIDTH[type_] * 16
    out: list[tuple[int, str]] = []
    for code_text, label in raw.items():
        where = f"{key}.{code_text}"
        if not re.fullmatch(r"-?[0-9]+", code_text):
            rt.problem(where, "cfg.expected", what=text("cfg.what.integer_code"),
                       got=show(code_text))
            continue
        code = int(code_text)
        if key == "flags" and not 0 <= code < bits:
            rt.problem(where, "cfg.expected", what=text("cfg.what.bit_number", hi=bits - 1),
                       got=str(code))
            continue
        if not isinstance(label, str) or not label:
            rt.problem(where, "cfg.expected", what=text("cfg.what.non_empty"), got=show(label))
            continue
        if value_pattern and not re.fullmatch(value_pattern, label):
            rt.problem(where, "cfg.expected", what=text("cfg.what.flag_name"), got=show(label))
            continue
        out.append((code, label))
    return tuple(sorted(out))
